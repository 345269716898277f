/**
 * Test parts: real libp2p nodes on loopback, an in-memory block map standing
 * in for the store (the exchange only needs get/has/put), chunk makers, and
 * raw protocol handlers that play misbehaving providers.
 */
import { createHash, randomBytes } from 'node:crypto'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import type { Libp2p, Stream, StreamMessageEvent } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import type { AbortOptions } from '@homecloud/interface'
import { chunkExchange, decodeMessage, FrameReader, PROTOCOL } from '../src/index.js'
import type { ChunkExchange, ChunkExchangeInit, ChunkSink, ChunkSource, Entry } from '../src/index.js'

export type ExchangeNode = Libp2p<{ chunks: ChunkExchange }>

/** A libp2p node on 127.0.0.1 (tcp + noise + yamux) with the exchange as a service. */
export async function createNode (init: ChunkExchangeInit = {}): Promise<ExchangeNode> {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { chunks: chunkExchange(init) }
  })
}

/** A libp2p node without the exchange, for hand-written misbehaving providers. */
export async function createBareNode (): Promise<Libp2p> {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()]
  })
}

export async function connect (from: Libp2p, to: Libp2p): Promise<void> {
  await from.dial(to.getMultiaddrs())
}

export async function stopAll (nodes: Libp2p[]): Promise<void> {
  await Promise.all(nodes.map(async node => node.stop()))
}

export const RAW = 0x55

export function cidOf (bytes: Uint8Array): CID {
  return CID.createV1(RAW, Digest.create(0x12, createHash('sha256').update(bytes).digest()))
}

export interface Chunk { cid: CID, bytes: Uint8Array }

export function makeChunks (count: number, size: number): Chunk[] {
  return Array.from({ length: count }, () => {
    const bytes = randomBytes(size)
    return { cid: cidOf(bytes), bytes }
  })
}

/** In-memory blocks with call counts: the source and sink double. */
export class MemoryBlocks implements ChunkSource, ChunkSink {
  readonly blocks = new Map<string, Uint8Array>()
  readonly gets = new Map<string, number>()
  getCalls = 0
  putCalls = 0
  /** Called on every get, before the answer; lets a test stall or stop a provider. */
  onGet?: (cid: CID, options?: AbortOptions) => Promise<void> | void

  constructor (chunks: Chunk[] = []) {
    for (const { cid, bytes } of chunks) {
      this.blocks.set(cid.toString(), bytes)
    }
  }

  async get (cid: CID, options?: AbortOptions): Promise<Uint8Array | undefined> {
    this.getCalls++
    this.gets.set(cid.toString(), (this.gets.get(cid.toString()) ?? 0) + 1)
    await this.onGet?.(cid, options)
    return this.blocks.get(cid.toString())
  }

  async has (cid: CID): Promise<boolean> {
    return this.blocks.has(cid.toString())
  }

  async put (cid: CID, bytes: Uint8Array): Promise<void> {
    this.putCalls++
    this.blocks.set(cid.toString(), Uint8Array.from(bytes))
  }
}

/** Every chunk is in `blocks` with exactly its bytes. */
export function holdsAll (blocks: MemoryBlocks, chunks: Chunk[]): boolean {
  return chunks.every(({ cid, bytes }) => Buffer.from(blocks.blocks.get(cid.toString()) ?? []).equals(bytes))
}

/**
 * Registers a hand-written provider: `answer` is called for every want and
 * writes whatever it likes on the stream (the test decides how to misbehave).
 */
export async function handleRaw (node: Libp2p, answer: (stream: Stream, want: CID) => void): Promise<void> {
  await node.handle(PROTOCOL, (stream) => {
    const reader = new FrameReader()
    stream.addEventListener('message', (evt: StreamMessageEvent) => {
      let entries: Entry[]
      try {
        entries = reader.push(evt.data).flatMap(body => decodeMessage(body))
      } catch (err) {
        stream.abort(err as Error)
        return
      }
      for (const entry of entries) {
        if (entry.type === 'want' && stream.status === 'open') {
          answer(stream, entry.cid)
        }
      }
    })
  })
}
