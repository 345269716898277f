import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { AbortError, DialFailedError, InvalidParametersError, NodeNotStartedError, type HomecloudNode } from '../src/index.js'
import { addressOf, startDevice, useDevices, waitFor } from './helpers.js'
import type { Ping } from '@libp2p/ping'

describe('three devices on loopback', () => {
  const { devices } = useDevices()
  let a: HomecloudNode, b: HomecloudNode, c: HomecloudNode

  before(async () => {
    a = await startDevice(devices, 'a')
    b = await startDevice(devices, 'b')
    c = await startDevice(devices, 'c')
  })


  it('connect: each returns a direct outbound row for the peer it dialled', async () => {
    for (const [from, to] of [[a, b], [b, c], [c, a]]) {
      const row = await from.connect(addressOf(to))
      assert.equal(row.peerId, to.peerId.toString())
      assert.equal(row.address, addressOf(to))
      assert.equal(row.path, 'direct')
      assert.equal(row.direction, 'outbound')
      assert.ok(row.latencyMs != null && row.latencyMs >= 0 && row.latencyMs < 2_000, `latency ${row.latencyMs}`)
    }
  })

  it('identify: every device stores the others\' protocols and certified addresses', async () => {
    for (const device of [a, b, c]) {
      for (const other of [a, b, c].filter(d => d !== device)) {
        const peer = await waitFor(async () => {
          const p = await device.libp2p.peerStore.get(other.peerId)
          return p.peerRecordEnvelope != null && other.libp2p.getProtocols().every(x => p.protocols.includes(x)) ? p : undefined
        }, { what: `${device.name} to identify ${other.name}` })

        assert.ok(peer.protocols.includes('/ipfs/ping/1.0.0'))
        assert.ok(peer.protocols.includes('/ipfs/id/1.0.0'))
        assert.ok(peer.protocols.includes('/ipfs/id/push/1.0.0'))
        const expected = addressOf(other).replace(`/p2p/${other.peerId.toString()}`, '')
        assert.deepEqual(peer.addresses.map(x => [x.multiaddr.toString(), x.isCertified]), [[expected, true]])
      }
    }
  })

  it('ping works between every pair', async () => {
    for (const [from, to] of [[a, b], [b, c], [c, a]]) {
      const rtt = await (from.libp2p.services.ping as Ping).ping(to.peerId, { signal: AbortSignal.timeout(5_000) })
      assert.ok(rtt >= 0 && rtt < 2_000)
    }
  })

  it('peers() shows each other, one row per connection, with directions that match', async () => {
    const rowsA = await a.peers()
    const rowsB = await b.peers()
    assert.deepEqual(rowsA.map(r => r.peerId).sort(), [b.peerId.toString(), c.peerId.toString()].sort())
    assert.deepEqual(rowsB.map(r => r.peerId).sort(), [a.peerId.toString(), c.peerId.toString()].sort())

    const aToB = rowsA.find(r => r.peerId === b.peerId.toString())
    const bToA = rowsB.find(r => r.peerId === a.peerId.toString())
    assert.equal(aToB?.direction, 'outbound')
    assert.equal(bToA?.direction, 'inbound')
    assert.equal(bToA?.path, 'direct')
    assert.match(bToA?.address ?? '', new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/\\d+/p2p/${a.peerId.toString()}$`))
    for (const row of [...rowsA, ...rowsB]) {
      assert.ok(row.latencyMs != null && row.latencyMs >= 0, `latency of ${row.peerId}`)
    }
  })

  it('identity() and status() agree with each other and with peers()', async () => {
    for (const device of [a, b, c]) {
      const id = device.identity()
      const status = device.status()
      const rows = await device.peers()
      assert.equal(status.peerId, id.peerId)
      assert.equal(status.name, id.name)
      assert.equal(status.reachability, id.reachability)
      assert.equal(status.reachability, 'private')
      assert.equal(status.connections, rows.length)
      assert.equal(status.peers, new Set(rows.map(r => r.peerId)).size)
      assert.equal(status.peers, 2)
      assert.equal(status.dhtMode, 'off')
      assert.deepEqual(status.relayReservations, [])
      assert.ok(status.uptimeMs > 0)
      assert.ok(Object.values(status.rejectedPeerRecords).every(n => n === 0), 'honest peers: nothing rejected')
    }
  })

  it('handle() bounds a Home Cloud protocol by maxStreamsPerProtocol', async () => {
    const limits = { maxStreamsPerProtocol: 2 }
    const x = await startDevice(devices, 'x', { limits })
    const y = await startDevice(devices, 'y', { limits })
    const protocol = '/homecloud/test/1.0.0'
    const keepOpen = (): void => {}

    await assert.rejects(x.handle(protocol, keepOpen, { maxInboundStreams: 3 }), { code: InvalidParametersError.code })
    assert.equal(x.libp2p.getProtocols().includes(protocol), false, 'a refused registration registers nothing')

    await x.handle(protocol, keepOpen)
    await y.handle(protocol, keepOpen)
    await x.connect(addressOf(y))
    const open = [await x.libp2p.dialProtocol(y.peerId, protocol), await x.libp2p.dialProtocol(y.peerId, protocol)]
    // the third is refused by y (libp2p resets it), whether before or after x's dial returns
    const third = await x.libp2p.dialProtocol(y.peerId, protocol).catch((err: Error) => err)
    if (!(third instanceof Error)) {
      await waitFor(() => third.status !== 'open', { what: 'y to reset the third stream' })
    }
    const inbound = y.libp2p.getConnections(x.peerId).flatMap(c => c.streams).filter(st => st.protocol === protocol && st.direction === 'inbound')
    assert.equal(inbound.length, 2)
    assert.deepEqual(open.map(st => st.status), ['open', 'open'])
    open.forEach(stream => { stream.abort(new Error('test done')) })
  })

  it('dials its bootstrap peers at start', async () => {
    const joiner = await startDevice(devices, 'joiner', { bootstrap: [addressOf(c)] })
    await waitFor(() => joiner.libp2p.getConnections(c.peerId).length > 0, { what: 'the bootstrap dial' })
    assert.deepEqual((await joiner.peers()).map(r => [r.peerId, r.direction]), [[c.peerId.toString(), 'outbound']])
  })

  describe('connect() with bad input changes nothing', () => {
    it('rejects garbage, a missing /p2p/, a bad peer id and the device itself', async () => {
      const before = a.status().connections
      await assert.rejects(a.connect('hello'), { code: InvalidParametersError.code, message: /not a valid multiaddr/ })
      await assert.rejects(a.connect('/ip4/127.0.0.1/tcp/1'), { code: InvalidParametersError.code, message: /must end with \/p2p\// })
      await assert.rejects(a.connect('/ip4/127.0.0.1/tcp/1/p2p/QmNotAPeer'), { code: InvalidParametersError.code })
      await assert.rejects(a.connect(addressOf(a)), { code: InvalidParametersError.code, message: /own address/ })
      assert.equal(a.status().connections, before)
    })

    it('reports a dial to the wrong PeerId as DialFailedError (Noise checks who answers)', async () => {
      const stranger = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
      const forged = addressOf(b).replace(b.peerId.toString(), stranger.toString())
      await assert.rejects(a.connect(forged, { signal: AbortSignal.timeout(5_000) }), (err: Error & { code?: string }) => {
        assert.equal(err.code, DialFailedError.code)
        assert.ok(err.message.includes(forged))
        return true
      })
      assert.equal(a.libp2p.getConnections(stranger).length, 0)
    })

    it('honours an aborted signal', async () => {
      const stranger = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
      await assert.rejects(a.connect(`/ip4/127.0.0.1/tcp/1/p2p/${stranger.toString()}`, { signal: AbortSignal.abort() }), { code: AbortError.code })
    })

    it('refuses to dial while stopped', async () => {
      const d = await startDevice(devices, 'd')
      await d.stop()
      await assert.rejects(d.connect(addressOf(a)), { code: NodeNotStartedError.code })
    })
  })
})
