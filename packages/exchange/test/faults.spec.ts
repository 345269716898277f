import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, beforeEach, describe, it } from 'node:test'
import { waitFor } from '@homecloud/test-support'
import type { Libp2p, Stream, StreamMessageEvent } from '@libp2p/interface'
import { encodeMessage, FrameReader, decodeMessage, NoPeersError, PeersFailedError, PROTOCOL } from '../src/index.js'
import type { FetchProgressEvents, WireLimits } from '../src/index.js'
import { connect, createBareNode, createNode, handleRaw, holdsAll, makeChunks, MemoryBlocks, stopAll } from './helpers.js'
import type { Chunk, ExchangeNode } from './helpers.js'

const allow = (): boolean => true
const generous: WireLimits = { maxMessageBytes: 8 * 1024 * 1024, maxBlockBytes: 8 * 1024 * 1024, maxEntries: 4096 }

function dropped (events: FetchProgressEvents[]): Map<string, string> {
  const out = new Map<string, string>()
  for (const evt of events) {
    if (evt.type === 'exchange:fetch:peer-dropped') out.set(evt.detail.peer, evt.detail.code)
  }
  return out
}

describe('misbehaving providers (real libp2p on loopback)', () => {
  const chunks = makeChunks(32, 16 * 1024)
  const byCid = new Map(chunks.map(c => [c.cid.toString(), c]))
  const honestSource = new MemoryBlocks(chunks)
  let honest: ExchangeNode
  let fetcher: ExchangeNode
  let fetchers = 0
  const nodes: Libp2p[] = []

  async function evil (answer: (stream: Stream, chunk: Chunk) => void): Promise<Libp2p> {
    const node = await createBareNode()
    nodes.push(node)
    await handleRaw(node, (stream, cid) => {
      const chunk = byCid.get(cid.toString())
      if (chunk !== undefined) answer(stream, chunk)
    })
    await connect(fetcher, node)
    return node
  }

  async function fetchAll (peers: Libp2p[]): Promise<{ sink: MemoryBlocks, events: FetchProgressEvents[] }> {
    const sink = new MemoryBlocks()
    const events: FetchProgressEvents[] = []
    await fetcher.services.chunks.fetch(chunks.map(c => c.cid), {
      peers: [honest.peerId, ...peers.map(p => p.peerId)], sink, onProgress: evt => { events.push(evt) }
    })
    return { sink, events }
  }

  before(async () => {
    honest = await createNode({ serve: { source: honestSource, policy: allow } })
  })

  // a fetch starts from the window the last one learned of a peer: with a warm honest peer
  // taking every want, the misbehaving one would get none. Each case starts cold.
  beforeEach(async () => {
    if (fetchers++ > 0) await stopAll([fetcher])
    fetcher = await createNode({ stallTimeout: 300, maxStalls: 2 })
    await connect(fetcher, honest)
  })

  after(async () => {
    await stopAll([fetcher, honest, ...nodes])
  })

  it('wrong bytes: completes from the honest peer, stores nothing bad, penalises the liar', async () => {
    const liar = await evil((stream, chunk) => {
      stream.send(encodeMessage([{ type: 'block', cid: chunk.cid, bytes: randomBytes(chunk.bytes.length) }]))
    })
    const wrongBefore = fetcher.services.chunks.stats().wrongBlocks
    const { sink, events } = await fetchAll([liar])
    assert.ok(holdsAll(sink, chunks), 'every stored block is the right one')
    assert.equal(sink.blocks.size, chunks.length)
    assert.equal(dropped(events).get(liar.peerId.toString()), 'ERR_INTEGRITY')
    assert.ok(fetcher.services.chunks.stats().wrongBlocks > wrongBefore)
    const penalty = fetcher.services.chunks.penalty(liar.peerId)
    assert.equal(penalty?.totalFaults, 1)
    assert.equal(penalty?.lastReason, 'ERR_INTEGRITY')
  })

  it('blocks never asked for are discarded and the sender penalised', async () => {
    const extra = makeChunks(1, 1000)[0]
    const pusher = await evil((stream, chunk) => {
      // the right block, then a valid block nobody wanted
      stream.send(encodeMessage([{ type: 'block', cid: chunk.cid, bytes: chunk.bytes }, { type: 'block', cid: extra.cid, bytes: extra.bytes }]))
    })
    const before = fetcher.services.chunks.stats().unrequestedBlocks
    const { sink, events } = await fetchAll([pusher])
    assert.ok(holdsAll(sink, chunks))
    assert.equal(sink.blocks.has(extra.cid.toString()), false, 'the unrequested block was not stored')
    assert.equal(sink.blocks.size, chunks.length)
    assert.ok(fetcher.services.chunks.stats().unrequestedBlocks > before)
    assert.equal(dropped(events).get(pusher.peerId.toString()), 'ERR_PROTOCOL_VIOLATION')
    assert.equal(fetcher.services.chunks.penalty(pusher.peerId)?.lastReason, 'ERR_PROTOCOL_VIOLATION')
  })

  it('an oversize block (2 MiB + 1) and an oversize message (declared 5 MiB) are refused', async () => {
    const big = randomBytes(2 * 1024 * 1024 + 1)
    const bigBlock = await evil((stream, chunk) => {
      stream.send(encodeMessage([{ type: 'block', cid: chunk.cid, bytes: big }], generous))
    })
    const bigMessage = await evil((stream) => {
      // a length prefix of 5 MiB, then the start of a body that never fits
      stream.send(Uint8Array.from([0x80, 0x80, 0xc0, 0x02, 1, 2, 3]))
    })
    const before = fetcher.services.chunks.stats().badMessages
    const { sink } = await fetchAll([bigBlock, bigMessage])
    assert.ok(holdsAll(sink, chunks))
    assert.equal(sink.blocks.size, chunks.length)
    // the 2 MiB block may arrive after the honest peer has finished: wait for both refusals
    await waitFor(() => fetcher.services.chunks.stats().badMessages >= before + 2, { what: 'both oversize answers to be refused', interval: 10 })
    assert.equal(fetcher.services.chunks.penalty(bigBlock.peerId)?.lastReason, 'ERR_BAD_MESSAGE')
    assert.equal(fetcher.services.chunks.penalty(bigMessage.peerId)?.lastReason, 'ERR_BAD_MESSAGE')
    assert.equal(sink.blocks.size, chunks.length, 'still nothing extra stored')
  })

  it('a slow-drip provider does not stall the fetch: its wants move to the honest peer', async () => {
    const drip = await evil((stream, chunk) => {
      const bytes = encodeMessage([{ type: 'block', cid: chunk.cid, bytes: chunk.bytes }]).subarray()
      let offset = 0
      const timer = setInterval(() => {
        if (stream.status !== 'open' || offset >= bytes.length) {
          clearInterval(timer)
          return
        }
        stream.send(bytes.subarray(offset, offset + 32))
        offset += 32
      }, 20)
    })
    const honestBefore = honestSource.getCalls
    const started = Date.now()
    const { sink } = await fetchAll([drip])
    const elapsed = Date.now() - started
    assert.ok(holdsAll(sink, chunks))
    assert.ok(elapsed < 3000, `fetch took ${elapsed} ms; one dripped block alone takes ~10 s`)
    assert.ok(honestSource.getCalls - honestBefore >= chunks.length, 'the honest peer served every chunk')
  })

  it('a provider that disconnects mid-fetch: the rest is fetched from the others', async () => {
    const many = makeChunks(96, 16 * 1024)
    const sources = [new MemoryBlocks(many), new MemoryBlocks(many)]
    const providers = await Promise.all(sources.map(async source => createNode({ serve: { source, policy: allow } })))
    nodes.push(...providers)
    await Promise.all(providers.map(async p => connect(fetcher, p)))
    let stopping: Promise<void> | undefined
    sources[1].onGet = () => {
      if (sources[1].getCalls === 6) stopping = Promise.resolve(providers[1].stop())
    }
    const sink = new MemoryBlocks()
    const events: FetchProgressEvents[] = []
    await fetcher.services.chunks.fetch(many.map(c => c.cid), {
      peers: providers.map(p => p.peerId), sink, onProgress: evt => { events.push(evt) }
    })
    await stopping
    assert.ok(stopping !== undefined, 'the provider went away during the fetch')
    assert.ok(holdsAll(sink, many))
    assert.ok(dropped(events).has(providers[1].peerId.toString()))
    assert.equal(fetcher.services.chunks.penalty(providers[1].peerId), undefined, 'going away is not a fault')
  })
})

describe('bans', () => {
  it('a peer that keeps sending wrong blocks is banned; a fetch with only it fails clearly', async () => {
    // 128 KiB blocks arrive as bodies of their own (FrameReader copies them out), the 16 KiB ones above as views: both are checked
    const chunks = makeChunks(4, 128 * 1024)
    const liar = await createBareNode()
    const fetcher = await createNode({ banAfterFaults: 2 })
    try {
      await handleRaw(liar, (stream, cid) => {
        stream.send(encodeMessage([{ type: 'block', cid, bytes: randomBytes(128 * 1024) }]))
      })
      await connect(fetcher, liar)
      const sink = new MemoryBlocks()
      for (let i = 0; i < 2; i++) {
        await assert.rejects(fetcher.services.chunks.fetch(chunks.map(c => c.cid), { peers: [liar.peerId], sink }), PeersFailedError)
      }
      assert.equal(sink.putCalls, 0, 'nothing was stored')
      assert.ok((fetcher.services.chunks.penalty(liar.peerId)?.bannedUntil ?? 0) > Date.now())
      await assert.rejects(fetcher.services.chunks.fetch(chunks.map(c => c.cid), { peers: [liar.peerId], sink }), NoPeersError)
    } finally {
      await stopAll([fetcher, liar])
    }
  })
})

describe('server bounds', () => {
  let provider: ExchangeNode
  let client: Libp2p
  const chunks = makeChunks(200, 64 * 1024)
  const source = new MemoryBlocks(chunks)

  before(async () => {
    provider = await createNode({ serve: { source, policy: allow } })
    client = await createBareNode()
    await connect(client, provider)
  })

  after(async () => {
    source.onGet = undefined
    await stopAll([client, provider])
  })

  async function open (): Promise<{ stream: Stream, received: () => number }> {
    const stream = await client.dialProtocol(provider.peerId, PROTOCOL)
    const reader = new FrameReader()
    let blocks = 0
    stream.addEventListener('message', (evt: StreamMessageEvent) => {
      blocks += reader.push(evt.data).flatMap(body => decodeMessage(body)).filter(e => e.type === 'block').length
    })
    return { stream, received: () => blocks }
  }

  it('more than 1024 outstanding wants from one peer resets that stream only', async () => {
    // the source holds every read, so wants pile up in the server's queue
    const held: Array<() => void> = []
    source.onGet = async () => new Promise(resolve => { held.push(resolve) })
    const unknown = makeChunks(1100, 8).map(c => ({ type: 'want' as const, cid: c.cid }))
    const flood = await open()
    const calm = await open()
    calm.stream.send(encodeMessage([{ type: 'want', cid: chunks[0].cid }]))
    flood.stream.send(encodeMessage(unknown.slice(0, 1000)))
    flood.stream.send(encodeMessage(unknown.slice(1000)))
    await waitFor(() => flood.stream.status !== 'open', { what: 'the flooding stream to be reset', interval: 10 })
    assert.equal(flood.stream.status, 'reset')
    source.onGet = undefined
    held.forEach(release => { release() })
    await waitFor(() => calm.received() === 1, { what: 'the other stream to be served', interval: 10 })
    assert.equal(calm.stream.status, 'open')
    calm.stream.abort(new Error('done'))
  })

  it('a malformed message resets that stream', async () => {
    const { stream } = await open()
    stream.send(Uint8Array.from([3, 9, 9, 9]))
    await waitFor(() => stream.status !== 'open', { what: 'the stream to be reset', interval: 10 })
    assert.equal(stream.status, 'reset')
    assert.ok(provider.services.chunks.stats().badMessages >= 1)
  })

  it('respects backpressure: a fetcher that stops reading stops the server reading blocks', async () => {
    const { stream, received } = await open()
    stream.pause()
    const before = source.getCalls
    stream.send(encodeMessage(chunks.map(c => ({ type: 'want' as const, cid: c.cid }))))
    await waitFor(() => source.getCalls - before >= 4, { what: 'serving to start', interval: 10 })
    // an observation window, not synchronisation: absence can only be watched for a while
    for (let i = 0; i < 20; i++) {
      await new Promise(resolve => setTimeout(resolve, 20))
      assert.ok(source.getCalls - before <= 40, `server read ${source.getCalls - before} of 200 blocks for a paused reader`)
    }
    stream.resume()
    await waitFor(() => received() === chunks.length, { what: 'all blocks after resume', timeout: 10_000, interval: 10 })
    stream.abort(new Error('done'))
  })
})
