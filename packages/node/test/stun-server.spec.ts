import assert from 'node:assert/strict'
import { createSocket, type Socket } from 'node:dgram'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import {
  bindingResponse, InvalidParametersError, MAX_STUN_REQUEST_BYTES, parseBindingRequest, parseStunServers,
  readXorMappedAddress, StunServer
} from '../src/index.js'
import { waitFor } from './helpers.js'

function bindingRequest (transactionId = randomBytes(12), extra = new Uint8Array(0)): Uint8Array {
  const msg = new Uint8Array(20 + extra.byteLength)
  const view = new DataView(msg.buffer)
  view.setUint16(0, 0x0001)
  view.setUint16(2, extra.byteLength)
  view.setUint32(4, 0x2112A442)
  msg.set(transactionId, 8)
  msg.set(extra, 20)
  return msg
}

/** A loopback UDP client that collects every reply. */
async function client (): Promise<{ socket: Socket, replies: Buffer[], port: number }> {
  const socket = createSocket('udp4')
  const replies: Buffer[] = []
  socket.on('message', (msg) => { replies.push(msg) })
  socket.bind(0, '127.0.0.1')
  await once(socket, 'listening')
  return { socket, replies, port: socket.address().port }
}

describe('STUN server (RFC 5389 Binding, UDP)', () => {
  describe('messages', () => {
    it('parses a Binding request and refuses anything else', () => {
      const id = randomBytes(12)
      assert.deepEqual(parseBindingRequest(bindingRequest(id)), new Uint8Array(id))
      // with an attribute (a FINGERPRINT-sized one): still a Binding request
      assert.ok(parseBindingRequest(bindingRequest(id, new Uint8Array(8))) !== undefined)
      const wrongCookie = bindingRequest(id)
      wrongCookie[4] ^= 0xff
      const response = bindingResponse(id, '10.0.0.1', 1)
      const badLength = bindingRequest(id, new Uint8Array(8)).subarray(0, 24)
      const tooLarge = bindingRequest(id, new Uint8Array(MAX_STUN_REQUEST_BYTES))
      for (const bad of [wrongCookie, response, badLength, tooLarge, new Uint8Array(19)]) {
        assert.equal(parseBindingRequest(bad), undefined)
      }
    })

    it('encodes XOR-MAPPED-ADDRESS for IPv4 and IPv6, in at most 44 bytes', () => {
      const id = randomBytes(12)
      const v4 = bindingResponse(id, '203.0.113.7', 54321)
      assert.equal(v4.byteLength, 32)
      assert.deepEqual(readXorMappedAddress(v4), { address: '203.0.113.7', port: 54321 })
      const v6 = bindingResponse(id, '2001:db8::1', 443)
      assert.equal(v6.byteLength, 44)
      assert.deepEqual(readXorMappedAddress(v6), { address: '2001:db8:0:0:0:0:0:1', port: 443 })
      // a dual-stack socket's IPv4-mapped source is answered as IPv4
      assert.deepEqual(readXorMappedAddress(bindingResponse(id, '::ffff:10.1.2.3', 9)), { address: '10.1.2.3', port: 9 })
    })

    it('refuses a bad configuration with a stable code', () => {
      for (const init of [{ port: 70_000 }, { port: -1 }, { ratePerSecond: 0 }, { burst: 1.5 }, { maxSources: 0 }, { host: 'example.org' }]) {
        assert.throws(() => new StunServer(init), (err: Error & { code?: string }) => err instanceof InvalidParametersError && err.code === 'ERR_INVALID_PARAMETERS', JSON.stringify(init))
      }
    })
  })

  describe('on loopback', () => {
    let server: StunServer
    let c: Awaited<ReturnType<typeof client>>

    before(async () => {
      server = new StunServer({ port: 0, host: '127.0.0.1', ratePerSecond: 1, burst: 3, maxSources: 2 })
      await server.start()
      c = await client()
    })

    after(async () => {
      c.socket.close()
      await server.stop()
    })

    it('answers a Binding request with the address and port it came from', async () => {
      const id = randomBytes(12)
      c.socket.send(bindingRequest(id), server.port, '127.0.0.1')
      const reply = await waitFor(() => c.replies.at(-1), { what: 'a STUN reply' })
      assert.deepEqual(reply.subarray(8, 20), id)
      assert.deepEqual(readXorMappedAddress(reply), { address: '127.0.0.1', port: c.port })
      assert.equal(server.stats.answered, 1)
    })

    it('drops malformed requests without answering', async () => {
      const before = { ...server.stats }
      c.socket.send(new Uint8Array(20), server.port, '127.0.0.1')
      c.socket.send(bindingResponse(randomBytes(12), '127.0.0.1', 1), server.port, '127.0.0.1')
      await waitFor(() => server.stats.invalid === before.invalid + 2, { what: 'two invalid requests counted' })
      assert.equal(server.stats.answered, before.answered)
      assert.equal(c.replies.length, before.answered)
    })

    it('limits replies per source address (burst 3, 1 per second) and tracks a bounded number of sources', async () => {
      // the first test used one token of the burst of 3
      for (let i = 0; i < 10; i++) c.socket.send(bindingRequest(), server.port, '127.0.0.1')
      await waitFor(() => server.stats.answered + server.stats.limited >= 11, { what: 'ten more requests handled' })
      assert.ok(server.stats.answered <= 4, `answered ${server.stats.answered}`)
      assert.ok(server.stats.limited >= 7, `limited ${server.stats.limited}`)
      assert.equal(server.trackedSources, 1)
      await waitFor(() => c.replies.length === server.stats.answered, { what: 'replies' })
    })
  })

  describe('parseStunServers', () => {
    it('normalises HOST, HOST:PORT and stun: URLs', () => {
      assert.deepEqual(parseStunServers(['10.77.0.10', '10.77.0.10:5000', 'stun:stun.home.arpa:3479', '[fd00::1]:3478']),
        ['stun:10.77.0.10:3478', 'stun:10.77.0.10:5000', 'stun:stun.home.arpa:3479', 'stun:[fd00::1]:3478'])
    })

    it('refuses bad entries with a clear message', () => {
      for (const bad of [['10.0.0.1:70000'], ['stun:'], ['turn:x:1'], ['[nothost]:1'], [''], [42], 'x:1', new Array(9).fill('h:1')]) {
        assert.throws(() => parseStunServers(bad, '--stun'), (err: Error) => err instanceof InvalidParametersError && err.message.startsWith('--stun'), JSON.stringify(bad))
      }
    })
  })
})
