import assert from 'node:assert/strict'
import { after, before, beforeEach, describe, it } from 'node:test'
import { InvalidParametersError, NotFoundError } from '@homecloud/interface'
import type { CID } from 'multiformats/cid'
import { PeersFailedError } from '../src/index.js'
import type { FetchProgressEvents } from '../src/index.js'
import { connect, createNode, holdsAll, makeChunks, MemoryBlocks, stopAll } from './helpers.js'
import type { ExchangeNode } from './helpers.js'

const allow = (): boolean => true

// `holder` serves some chunks, `empty` none: every chunk the holder lacks is at no peer
describe("missing: 'report' (real libp2p on loopback)", () => {
  const held = makeChunks(8, 16 * 1024)
  const nobody = makeChunks(4, 16 * 1024)
  const holderBlocks = new MemoryBlocks(held)
  let holder: ExchangeNode
  let empty: ExchangeNode
  let fetcher: ExchangeNode
  /** Gets of these CIDs at the holder wait until the test releases them. */
  let gates = new Map<string, Promise<void>>()

  before(async () => {
    holder = await createNode({ serve: { source: holderBlocks, policy: allow } })
    empty = await createNode({ serve: { source: new MemoryBlocks(), policy: allow } })
    holderBlocks.onGet = async (cid) => { await gates.get(cid.toString()) }
    // one fetcher for every case: libp2p limits inbound connections per host and second
    fetcher = await createNode()
    await connect(fetcher, holder)
    await connect(fetcher, empty)
  })

  beforeEach(() => { gates = new Map() })
  /** The holder serves `chunk` only once the returned gate is resolved. */
  const hold = (chunk: { cid: CID }): PromiseWithResolvers<void> => {
    const release = Promise.withResolvers<void>()
    gates.set(chunk.cid.toString(), release.promise)
    return release
  }

  after(async () => {
    await stopAll([fetcher, holder, empty])
  })

  const keys = (cids: CID[]): string[] => cids.map(String).sort()

  it('delivers every chunk some peer has and names the others with the peers asked', async () => {
    const sink = new MemoryBlocks()
    const events: FetchProgressEvents[] = []
    const all = [...held, ...nobody].map(c => c.cid)
    const result = await fetcher.services.chunks.fetch(all, {
      peers: [empty.peerId, holder.peerId], sink, missing: 'report', onProgress: evt => { events.push(evt) }
    })
    assert.ok(holdsAll(sink, held), 'every held chunk arrived, verified')
    assert.equal(result.chunks, held.length)
    assert.equal(sink.blocks.size, held.length, 'nothing else was put')
    assert.deepEqual(keys(result.missing.map(m => m.cid)), keys(nobody.map(c => c.cid)))
    for (const m of result.missing) {
      assert.deepEqual(m.peers.sort(), [empty.peerId.toString(), holder.peerId.toString()].sort(), 'both peers answered "missing"')
    }
    assert.equal(events.filter(e => e.type === 'exchange:fetch:missing').length, nobody.length, 'one event per missing chunk')
  })

  it('a chunk only at a slow peer still arrives after the other peer answered "missing" and another chunk was given up', async () => {
    const [slow] = held
    const [gone] = nobody
    const release = hold(slow)
    const sink = new MemoryBlocks()
    const order: string[] = []
    const result = await fetcher.services.chunks.fetch([slow.cid, gone.cid], {
      // the empty peer first: it is asked (and answers "missing") before the holder
      peers: [empty.peerId, holder.peerId],
      sink,
      missing: 'report',
      onProgress: evt => {
        if (evt.type === 'exchange:fetch:missing') {
          order.push(`missing ${evt.detail.cid.toString()}`)
          release.resolve()
        } else if (evt.type === 'exchange:fetch:chunk') {
          order.push(`chunk ${evt.detail.cid.toString()}`)
        }
      }
    })
    assert.deepEqual(order, [`missing ${gone.cid.toString()}`, `chunk ${slow.cid.toString()}`], 'given up first, the slow block still came')
    assert.ok(holdsAll(sink, [slow]))
    assert.deepEqual(keys(result.missing.map(m => m.cid)), keys([gone.cid]))
    assert.equal(result.chunks, 1)
  })

  it('the default still ends the whole fetch and drops the slow block', async () => {
    // a chunk of its own: a block released after an earlier case ended may still be on its way
    const slow = held[1]
    const [gone] = nobody
    const release = hold(slow)
    const sink = new MemoryBlocks()
    try {
      await assert.rejects(fetcher.services.chunks.fetch([slow.cid, gone.cid], { peers: [empty.peerId, holder.peerId], sink }), NotFoundError)
      assert.equal(sink.putCalls, 0, 'the slow block was dropped with the fetch')
    } finally {
      release.resolve()
    }
  })

  it('an abort still aborts a reporting fetch', async () => {
    const slow = held[2]
    const [gone] = nobody
    const release = hold(slow)
    const controller = new AbortController()
    const sink = new MemoryBlocks()
    try {
      await assert.rejects(fetcher.services.chunks.fetch([slow.cid, gone.cid], {
        peers: [empty.peerId, holder.peerId],
        sink,
        missing: 'report',
        signal: controller.signal,
        // the missing chunk is given up; the fetch still waits for the slow one, then is aborted
        onProgress: evt => { if (evt.type === 'exchange:fetch:missing') controller.abort() }
      }), (err: Error) => err.name === 'AbortError')
      assert.equal(sink.putCalls, 0)
    } finally {
      release.resolve()
    }
  })

  it('a reporting fetch whose every peer fails is a failure, not a list of missing chunks', async () => {
    const lonely = await createNode({ stallTimeout: 100, maxStalls: 1 })
    try {
      await connect(lonely, holder)
      const release = hold(held[3])
      try {
        await assert.rejects(lonely.services.chunks.fetch([held[3].cid, nobody[0].cid], { peers: [holder.peerId], sink: new MemoryBlocks(), missing: 'report' }),
          PeersFailedError)
      } finally {
        release.resolve()
      }
    } finally {
      await stopAll([lonely])
    }
  })

  it('rejects an unknown missing mode before fetching anything', async () => {
    const sink = new MemoryBlocks()
    const gets = holderBlocks.getCalls
    await assert.rejects(fetcher.services.chunks.fetch([held[0].cid], { peers: [holder.peerId], sink, missing: 'skip' as 'report' }),
      (err: Error) => err instanceof InvalidParametersError && /'fail' or 'report'/.test(err.message))
    assert.equal(sink.putCalls, 0)
    assert.equal(holderBlocks.getCalls, gets, 'no want was sent')
  })
})
