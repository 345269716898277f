import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { loopbackNode } from '@homecloud/test-support'
import { createChunkExchange, NoPeersError, type ChunkExchange, type ChunkSink } from '@homecloud/exchange'
import { fetchAvailable, ONE_BY_ONE_CONCURRENCY } from '../src/fetch-available.js'
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
describe('fetchAvailable: a chunk no member has fails alone', () => {
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

  it('fetches the chunk a member has although the exchange gave up on the first fetch for the one nobody has', async () => {
    const nobody = await chunk(false)
    const slow = await chunk(true)
    // the served chunk is held back until the first fetch failed: its "missing" answer for the other always wins, as it often does for real
    const release = Promise.withResolvers<void>()
    gates.set(slow.cid.toString(), release.promise)
    const outcomes: string[] = []
    const sink = memorySink()
    const result = await fetchAvailable(async (cids, options) => {
      try {
        const r = await client.exchange.fetch(cids, { ...options, peers: [server.peerId] })
        outcomes.push(`ok ${cids.length}`)
        return r
      } catch (err) {
        outcomes.push(`${(err as { code?: string }).code} ${cids.length}`)
        release.resolve()
        throw err
      }
    }, [nobody.cid, slow.cid], sink)
    assert.equal(outcomes[0], 'ERR_NOT_FOUND 2', 'the whole first fetch failed')
    assert.deepEqual(outcomes.slice(1).sort(), ['ERR_NOT_FOUND 1', 'ok 1'], 'then each chunk alone: only the one nobody has failed')
    assert.deepEqual(result.unavailable.map(String), [nobody.cid.toString()])
    assert.deepEqual(sink.blocks.get(slow.cid.toString()), new Uint8Array(slow.bytes))
    assert.equal(sink.blocks.has(nobody.cid.toString()), false)
  })

  it('after such a failure each chunk goes alone: every one a member has arrives, every one nobody has is named; what arrived is not asked again', async () => {
    const missing = await Promise.all(Array.from({ length: 20 }, async () => chunk(false)))
    const served = await Promise.all(Array.from({ length: 20 }, async () => chunk(true)))
    const asked: CID[][] = []
    const sink = memorySink()
    const all = [...served, ...missing].map(c => c.cid)
    const result = await fetchAvailable(async (cids, options) => {
      asked.push(cids)
      return client.exchange.fetch(cids, { ...options, peers: [server.peerId] })
    }, all, sink)
    assert.equal(asked[0].length, all.length, 'one fetch for all first')
    const alone = asked.slice(1)
    assert.ok(alone.every(c => c.length === 1), 'then one chunk per fetch')
    const askedAlone = new Set(alone.map(c => c[0].toString()))
    assert.equal(askedAlone.size, alone.length, 'each at most once')
    for (const m of missing) assert.ok(askedAlone.has(m.cid.toString()), 'every chunk that did not arrive is asked alone')
    for (const s of served) assert.deepEqual(sink.blocks.get(s.cid.toString()), new Uint8Array(s.bytes), 'every served chunk arrived')
    assert.deepEqual(result.unavailable.map(String).sort(), missing.map(m => m.cid.toString()).sort())
  })

  it('other failures are thrown as they are and end the one-by-one fetches', async () => {
    const { cid } = await chunk(true)
    await assert.rejects(fetchAvailable(async (cids, options) => client.exchange.fetch(cids, { ...options, peers: [] }), [cid], memorySink()),
      (err: Error) => err instanceof NoPeersError)
    const missing = await Promise.all(Array.from({ length: 40 }, async () => chunk(false)))
    let calls = 0
    await assert.rejects(fetchAvailable(async (cids, options) => {
      // the first fetch meets a missing chunk; then every peer is gone
      if (calls++ === 0) return client.exchange.fetch(cids, { ...options, peers: [server.peerId] })
      return client.exchange.fetch(cids, { ...options, peers: [] })
    }, missing.map(m => m.cid), memorySink()), (err: Error) => err instanceof NoPeersError)
    assert.ok(calls <= 1 + ONE_BY_ONE_CONCURRENCY, `the rest was not asked once a fetch failed otherwise: ${calls} calls`)
  })

  it('an abort is not taken for a missing chunk', async () => {
    const { cid } = await chunk(false)
    const controller = new AbortController()
    await assert.rejects(fetchAvailable(async (cids, options) => {
      controller.abort()
      return client.exchange.fetch(cids, { ...options, peers: [server.peerId] })
    }, [cid], memorySink(), { signal: controller.signal }), (err: Error) => err.name === 'AbortError')
  })
})
