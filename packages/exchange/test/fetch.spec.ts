import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { AbortError, InvalidParametersError, NotFoundError } from '@homecloud/interface'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { NoPeersError } from '../src/index.js'
import type { FetchProgressEvents } from '../src/index.js'
import { cidOf, connect, createNode, holdsAll, makeChunks, MemoryBlocks, stopAll } from './helpers.js'
import type { ExchangeNode } from './helpers.js'

const allow = (): boolean => true

describe('fetch from honest providers (real libp2p on loopback)', () => {
  const chunks = makeChunks(96, 64 * 1024)
  const sources = [new MemoryBlocks(chunks), new MemoryBlocks(chunks), new MemoryBlocks(chunks)]
  let providers: ExchangeNode[]
  let fetcher: ExchangeNode

  before(async () => {
    providers = await Promise.all(sources.map(async source => createNode({ serve: { source, policy: allow } })))
    fetcher = await createNode()
    await Promise.all(providers.map(async p => connect(fetcher, p)))
  })

  after(async () => {
    await stopAll([fetcher, ...providers])
  })

  it('fetches many chunks from one provider, all bytes correct, with progress', async () => {
    const sink = new MemoryBlocks()
    const events: FetchProgressEvents[] = []
    const result = await fetcher.services.chunks.fetch(chunks.slice(0, 48).map(c => c.cid), {
      peers: [providers[0].peerId], sink, onProgress: evt => { events.push(evt) }
    })
    assert.ok(holdsAll(sink, chunks.slice(0, 48)))
    assert.equal(sink.blocks.size, 48)
    assert.equal(result.chunks, 48)
    assert.equal(result.bytes, 48 * 64 * 1024)
    const done = events.filter(e => e.type === 'exchange:fetch:chunk').map(e => e.detail.progress.chunksDone)
    assert.deepEqual(done, Array.from({ length: 48 }, (_, i) => i + 1))
    const last = events.at(-1)
    assert.ok(last?.type === 'exchange:fetch:chunk')
    assert.equal(last.detail.progress.chunksTotal, 48)
    assert.equal(last.detail.progress.peers[0].peer, providers[0].peerId.toString())
    assert.equal(last.detail.progress.peers[0].chunks, 48)
  })

  it('spreads the load over three providers and stores every chunk once', async () => {
    const sink = new MemoryBlocks()
    const before = sources.map(s => s.getCalls)
    const result = await fetcher.services.chunks.fetch(chunks.map(c => c.cid), { peers: providers.map(p => p.peerId), sink })
    assert.ok(holdsAll(sink, chunks))
    assert.equal(sink.putCalls, chunks.length, 'each chunk stored exactly once')
    const served = sources.map((s, i) => s.getCalls - before[i])
    for (const count of served) {
      assert.ok(count >= chunks.length / 10, `every provider served a share: ${served.join(', ')}`)
    }
    assert.equal(result.peers.reduce((n, p) => n + p.chunks, 0), chunks.length)
  })

  it('resumes: a sink already holding half asks only for the rest', async () => {
    // its own provider, so reads left over from earlier end-games cannot blur the count
    const source = new MemoryBlocks(chunks)
    const provider = await createNode({ serve: { source, policy: allow } })
    try {
      await connect(fetcher, provider)
      const sink = new MemoryBlocks(chunks.slice(0, 48))
      const result = await fetcher.services.chunks.fetch(chunks.map(c => c.cid), { peers: [provider.peerId], sink })
      assert.equal(source.getCalls, 48, 'only the missing half was requested')
      assert.ok(chunks.slice(0, 48).every(c => !source.gets.has(c.cid.toString())), 'no held chunk was requested')
      assert.equal(result.skipped, 48)
      assert.equal(result.chunks, 48)
      assert.ok(holdsAll(sink, chunks))
    } finally {
      await provider.stop()
    }
  })

  it('walks a DAG from its root with a link resolver', async () => {
    // a root block listing the chunk CIDs; a real caller would pass a dag-pb resolver
    const children = chunks.slice(0, 10)
    const rootBytes = Buffer.concat(children.map(c => c.cid.bytes))
    const root = { cid: cidOf(rootBytes), bytes: rootBytes }
    const source = new MemoryBlocks([root, ...children])
    const provider = await createNode({ serve: { source, policy: allow } })
    try {
      await connect(fetcher, provider)
      const links = (cid: CID, bytes: Uint8Array): CID[] => {
        if (!cid.equals(root.cid)) return []
        const out: CID[] = []
        for (let rest = bytes; rest.length > 0;) {
          const [child, remainder] = CID.decodeFirst(rest)
          out.push(child)
          rest = remainder
        }
        return out
      }
      const sink = new MemoryBlocks([children[0]])
      const result = await fetcher.services.chunks.fetch(root.cid, { peers: [provider.peerId], sink, links })
      assert.ok(holdsAll(sink, [root, ...children]))
      assert.equal(result.chunks, 10)
      assert.equal(result.skipped, 1)
    } finally {
      await provider.stop()
    }
  })

  it('an unknown CID fails with NotFoundError naming it', async () => {
    const unknown = makeChunks(1, 10)[0].cid
    const sink = new MemoryBlocks()
    await assert.rejects(
      fetcher.services.chunks.fetch([chunks[0].cid, unknown], { peers: providers.map(p => p.peerId), sink }),
      (err: Error) => err instanceof NotFoundError && err.message.includes(unknown.toString())
    )
    assert.equal(sink.blocks.has(unknown.toString()), false)
  })

  it('refuses bad calls with clear errors and changes nothing', async () => {
    const sink = new MemoryBlocks()
    await assert.rejects(fetcher.services.chunks.fetch(chunks[0].cid, { peers: [], sink }), NoPeersError)
    const sha512 = CID.createV1(0x55, Digest.create(0x13, new Uint8Array(64)))
    await assert.rejects(fetcher.services.chunks.fetch(sha512, { peers: [providers[0].peerId], sink }), InvalidParametersError)
    await assert.rejects(fetcher.services.chunks.fetch(chunks[0].cid, { peers: [providers[0].peerId] }), InvalidParametersError)
    assert.equal(sink.putCalls, 0)
  })

  it('an aborted fetch rejects with AbortError', async () => {
    const controller = new AbortController()
    const sink = new MemoryBlocks()
    const fetching = fetcher.services.chunks.fetch(chunks.map(c => c.cid), {
      peers: [providers[2].peerId],
      sink,
      signal: controller.signal,
      onProgress: evt => { if (evt.type === 'exchange:fetch:chunk' && evt.detail.progress.chunksDone === 5) controller.abort() }
    })
    await assert.rejects(fetching, AbortError)
    assert.ok(sink.blocks.size < chunks.length)
  })
})

describe('serving policy', () => {
  it('a denied CID is answered as not found and the source is never read', async () => {
    const [open, secret] = makeChunks(2, 4096)
    const source = new MemoryBlocks([open, secret])
    const asked: string[] = []
    const provider = await createNode({
      serve: {
        source,
        policy: (peer, cid) => { asked.push(peer.toString()); return !cid.equals(secret.cid) }
      }
    })
    const fetcher = await createNode()
    try {
      await connect(fetcher, provider)
      const sink = new MemoryBlocks()
      await fetcher.services.chunks.fetch(open.cid, { peers: [provider.peerId], sink })
      assert.ok(holdsAll(sink, [open]))
      await assert.rejects(fetcher.services.chunks.fetch(secret.cid, { peers: [provider.peerId], sink }), NotFoundError)
      assert.equal(source.gets.get(secret.cid.toString()), undefined, 'the secret block was never read')
      assert.equal(sink.blocks.has(secret.cid.toString()), false)
      assert.deepEqual([...new Set(asked)], [fetcher.peerId.toString()], 'the policy saw the authenticated remote peer')
      assert.equal(provider.services.chunks.stats().denied, 1)
    } finally {
      await stopAll([fetcher, provider])
    }
  })
})
