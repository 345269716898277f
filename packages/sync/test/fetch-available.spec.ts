import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { loopbackNode } from '@homecloud/test-support'
import { createChunkExchange, NoPeersError, PeersFailedError, type ChunkExchange, type ChunkSink } from '@homecloud/exchange'
import { fetchAvailable } from '../src/fetch-available.js'
import { rawCid } from './helpers.js'
import type { Libp2p, PeerId } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

/** A sink that keeps what arrives. */
function memorySink (): ChunkSink & { blocks: Map<string, Uint8Array> } {
  const blocks = new Map<string, Uint8Array>()
  return {
    blocks,
    has: async (cid) => blocks.has(cid.toString()),
    put: async (cid, bytes) => { blocks.set(cid.toString(), bytes) }
  }
}

// a real exchange on loopback: `server` holds some chunks and answers "missing" for the rest
describe('fetchAvailable: a chunk no member has fails alone, in one fetch', () => {
  let client: { node: Libp2p, exchange: ChunkExchange }
  let server: { node: Libp2p, exchange: ChunkExchange, peerId: PeerId }
  const held = new Map<string, Uint8Array>()
  /** Chunks whose serving waits until the test lets it go (the first ask only). */
  const gates = new Map<string, Promise<void>>()

  before(async () => {
    const started = await Promise.all([0, 1].map(async () => {
      const node = await loopbackNode()
      return { node, peerId: node.peerId }
    }))
    const exchangeOf = (node: Libp2p, serve: boolean): ChunkExchange => createChunkExchange({
      registrar: node,
      connectionManager: { openStream: async (peer, protocol, options) => node.dialProtocol(peer, protocol, options) }
    }, serve
      ? {
          serve: {
            source: {
              get: async (cid) => {
                const gate = gates.get(cid.toString())
                gates.delete(cid.toString())
                await gate
                return held.get(cid.toString())
              }
            },
            policy: () => true
          }
        }
      : {})
    client = { node: started[0].node, exchange: exchangeOf(started[0].node, false) }
    server = { ...started[1], exchange: exchangeOf(started[1].node, true) }
    await client.exchange.start()
    await server.exchange.start()
    await client.node.dial(server.node.getMultiaddrs()[0])
  })

  after(async () => {
    for (const side of [client, server]) {
      await side?.exchange.stop()
      await side?.node.stop()
    }
  })

  async function chunk (serve: boolean): Promise<{ cid: CID, bytes: Uint8Array }> {
    const bytes = randomBytes(64 * 1024)
    const cid = await rawCid(bytes)
    if (serve) held.set(cid.toString(), bytes)
    return { cid, bytes }
  }

  /** The exchange, counting its fetches: the pull must take one. */
  function counted (): Pick<ChunkExchange, 'fetch'> & { calls: number } {
    const wrapper = {
      calls: 0,
      fetch: async (...args: Parameters<ChunkExchange['fetch']>) => {
        wrapper.calls++
        return client.exchange.fetch(...args)
      }
    }
    return wrapper
  }

  it('fetches the chunk a member has although the one nobody has was given up first', async () => {
    const nobody = await chunk(false)
    const slow = await chunk(true)
    // the served chunk is held back until the other was given up: its "missing" answer always wins, as it often does for real
    const release = Promise.withResolvers<void>()
    gates.set(slow.cid.toString(), release.promise)
    const sink = memorySink()
    const exchange = counted()
    const order: string[] = []
    const result = await fetchAvailable(exchange, [nobody.cid, slow.cid], {
      peers: [server.peerId],
      sink,
      onProgress: evt => {
        if (evt.type === 'exchange:fetch:missing') release.resolve()
        if (evt.type !== 'exchange:fetch:peer-dropped') order.push(`${evt.type} ${evt.detail.cid.toString()}`)
      }
    })
    assert.equal(exchange.calls, 1, 'one fetch')
    assert.deepEqual(order, [`exchange:fetch:missing ${nobody.cid.toString()}`, `exchange:fetch:chunk ${slow.cid.toString()}`])
    assert.deepEqual(result.missing.map(m => m.cid.toString()), [nobody.cid.toString()])
    assert.deepEqual(result.missing[0].peers, [server.peerId.toString()], 'names the peer asked')
    assert.deepEqual(sink.blocks.get(slow.cid.toString()), new Uint8Array(slow.bytes))
    assert.equal(sink.blocks.has(nobody.cid.toString()), false)
  })

  it('in one fetch every chunk a member has arrives and every one nobody has is named, once', async () => {
    const missing = await Promise.all(Array.from({ length: 20 }, async () => chunk(false)))
    const served = await Promise.all(Array.from({ length: 20 }, async () => chunk(true)))
    const sink = memorySink()
    const exchange = counted()
    const all = [...served, ...missing].map(c => c.cid)
    const result = await fetchAvailable(exchange, all, { peers: [server.peerId], sink })
    assert.equal(exchange.calls, 1, 'one fetch for all')
    for (const s of served) assert.deepEqual(sink.blocks.get(s.cid.toString()), new Uint8Array(s.bytes), 'every served chunk arrived')
    assert.equal(result.chunks, served.length)
    const named = result.missing.map(m => m.cid.toString())
    assert.equal(new Set(named).size, named.length, 'each named once')
    assert.deepEqual(named.sort(), missing.map(m => m.cid.toString()).sort())
  })

  it('other failures are thrown as they are', async () => {
    const { cid } = await chunk(true)
    await assert.rejects(fetchAvailable(client.exchange, [cid], { peers: [], sink: memorySink() }), (err: Error) => err instanceof NoPeersError)
    // a peer that cannot be reached (stopped, its address never known): every peer failed, which is not "missing"
    const gone = await loopbackNode()
    await gone.stop()
    const nobody = await chunk(false)
    await assert.rejects(fetchAvailable(client.exchange, [cid, nobody.cid], { peers: [gone.peerId], sink: memorySink() }),
      (err: Error) => err instanceof PeersFailedError)
    // the sink's own failure
    const broken: ChunkSink = { has: async () => false, put: async () => { throw new Error('disk on fire') } }
    await assert.rejects(fetchAvailable(client.exchange, [cid, nobody.cid], { peers: [server.peerId], sink: broken }), /disk on fire/)
  })

  it('an abort is not taken for a missing chunk', async () => {
    const nobody = await chunk(false)
    const slow = await chunk(true)
    const release = Promise.withResolvers<void>()
    gates.set(slow.cid.toString(), release.promise)
    const controller = new AbortController()
    try {
      await assert.rejects(fetchAvailable(client.exchange, [nobody.cid, slow.cid], {
        peers: [server.peerId],
        sink: memorySink(),
        signal: controller.signal,
        onProgress: evt => { if (evt.type === 'exchange:fetch:missing') controller.abort() }
      }), (err: Error) => err.name === 'AbortError')
    } finally {
      release.resolve()
    }
  })
})
