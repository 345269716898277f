/**
 * The serving side: answers wants on inbound `/homecloud/chunks/1.0.0`
 * streams from the chunk source, gated by the serving policy. A denied or
 * absent CID gets the same `missing` answer. Each stream reads a few blocks at
 * once and writes one message at a time, waiting for drain whenever the stream
 * asks, so its write buffer never holds more than one message.
 */
import { LimitExceededError } from '@homecloud/interface'
import type { Logger } from '@libp2p/logger'
import type { Connection, PeerId, Stream, StreamMessageEvent } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import type { Uint8ArrayList } from 'uint8arraylist'
import { MAX_BLOCK_BYTES, MAX_WANTS_PER_PEER, SERVE_CONCURRENCY } from './constants.js'
import type { Counters } from './counters.js'
import { MessageDecodeError, ProtocolViolationError } from './errors.js'
import { errorMessage } from './session.js'
import type { ChunkSource, ServePolicy } from './types.js'
import { decodeMessage, encodeMessage, FrameReader } from './wire.js'
import type { Entry } from './wire.js'
import { bytesKey } from './keys.js'

export interface ChunkServerInit {
  source: ChunkSource
  policy: ServePolicy
  counters: Counters
  log: Logger
}

export class ChunkServer {
  readonly init: ChunkServerInit
  private readonly streams = new Set<ServedStream>()
  /** Wants queued per peer over all its streams: the 1024 bound is per peer, not per stream. */
  private readonly wantsPerPeer = new Map<string, number>()

  constructor (init: ChunkServerInit) {
    this.init = init
  }

  get openStreams (): number {
    return this.streams.size
  }

  readonly handle = (stream: Stream, connection: Connection): void => {
    const served = new ServedStream(stream, connection.remotePeer, this)
    this.streams.add(served)
    served.start()
  }

  stop (): void {
    for (const served of [...this.streams]) {
      served.abort(new Error('the chunk exchange is stopping'))
    }
  }

  /** Reserves room for one more want of `peer`; false when it is at the bound. */
  reserveWant (peer: string): boolean {
    const count = this.wantsPerPeer.get(peer) ?? 0
    if (count >= MAX_WANTS_PER_PEER) {
      return false
    }
    this.wantsPerPeer.set(peer, count + 1)
    return true
  }

  releaseWants (peer: string, n: number): void {
    const count = (this.wantsPerPeer.get(peer) ?? 0) - n
    if (count <= 0) {
      this.wantsPerPeer.delete(peer)
    } else {
      this.wantsPerPeer.set(peer, count)
    }
  }

  forget (served: ServedStream): void {
    this.streams.delete(served)
  }
}

class ServedStream {
  private readonly stream: Stream
  private readonly peer: PeerId
  private readonly peerKey: string
  private readonly server: ChunkServer
  private readonly queue = new Map<string, CID>()
  private readonly reader = new FrameReader()
  private readonly controller = new AbortController()
  private active = 0
  private writing: Promise<void> = Promise.resolve()
  private remoteDone = false
  private ended = false

  constructor (stream: Stream, peer: PeerId, server: ChunkServer) {
    this.stream = stream
    this.peer = peer
    this.peerKey = peer.toString()
    this.server = server
  }

  start (): void {
    this.stream.addEventListener('message', (evt: StreamMessageEvent) => { this.onData(evt.data) })
    this.stream.addEventListener('close', () => { this.end() })
    this.stream.addEventListener('remoteCloseWrite', () => {
      this.remoteDone = true
      this.maybeClose()
    })
  }

  abort (err: Error): void {
    this.stream.abort(err)
    this.end()
  }

  private onData (data: Uint8Array | Uint8ArrayList): void {
    try {
      for (const body of this.reader.push(data)) {
        for (const entry of decodeMessage(body)) {
          this.onEntry(entry)
        }
      }
    } catch (err) {
      if (err instanceof MessageDecodeError) {
        this.server.init.counters.badMessages++
      }
      this.server.init.log('resetting stream from %s - %s', this.peerKey, errorMessage(err))
      this.abort(err instanceof Error ? err : new Error(String(err)))
      return
    }
    this.pump()
  }

  private onEntry (entry: Entry): void {
    const key = bytesKey(entry.cid.bytes)
    if (entry.type === 'want') {
      if (this.queue.has(key)) {
        return
      }
      if (!this.server.reserveWant(this.peerKey)) {
        throw new LimitExceededError(`${this.peerKey} wanted more than ${MAX_WANTS_PER_PEER} CIDs at once`)
      }
      this.queue.set(key, entry.cid)
    } else if (entry.type === 'cancel') {
      if (this.queue.delete(key)) {
        this.server.releaseWants(this.peerKey, 1)
      }
    } else {
      throw new ProtocolViolationError(`${this.peerKey} sent a ${entry.type} entry to a serving stream`)
    }
  }

  private pump (): void {
    while (!this.ended && this.active < SERVE_CONCURRENCY && this.queue.size > 0) {
      const [key, cid] = this.queue.entries().next().value as [string, CID]
      this.queue.delete(key)
      this.server.releaseWants(this.peerKey, 1)
      this.active++
      this.serve(cid)
        .catch(err => {
          if (!this.ended) {
            this.server.init.log('serving %s to %s failed - %s', cid, this.peerKey, errorMessage(err))
            this.abort(err instanceof Error ? err : new Error(String(err)))
          }
        })
        .finally(() => {
          this.active--
          this.pump()
          this.maybeClose()
        })
    }
  }

  private async serve (cid: CID): Promise<void> {
    const { source, policy, counters, log } = this.server.init
    const signal = this.controller.signal
    let bytes: Uint8Array | undefined
    let allowed = false
    try {
      allowed = await policy(this.peer, cid)
    } catch (err) {
      log.error('serving policy failed for %s - %e', cid, err)
    }
    if (!allowed) {
      counters.denied++
    } else {
      try {
        bytes = await source.get(cid, { signal })
      } catch (err) {
        if (signal.aborted) {
          return
        }
        log('source could not read %s - %s', cid, errorMessage(err))
      }
      if (bytes !== undefined && bytes.byteLength > MAX_BLOCK_BYTES) {
        log('not serving %s: %d bytes is over the block limit', cid, bytes.byteLength)
        bytes = undefined
      }
    }
    if (bytes === undefined) {
      counters.missingServed++
      await this.write(encodeMessage([{ type: 'missing', cid }]))
    } else {
      await this.write(encodeMessage([{ type: 'block', cid, bytes }]))
      counters.blocksServed++
      counters.bytesServed += bytes.byteLength
    }
  }

  /** Writes one message after the previous one, waiting for drain when the stream asked for it. */
  private async write (message: Uint8ArrayList): Promise<void> {
    const next = this.writing.then(async () => {
      if (this.stream.writableNeedsDrain) {
        await this.stream.onDrain({ signal: this.controller.signal })
      }
      if (!this.ended) {
        this.stream.send(message)
      }
    })
    this.writing = next.catch(() => {})
    await next
  }

  /** The fetcher closed its side and everything it asked for is answered: close ours. */
  private maybeClose (): void {
    if (!this.remoteDone || this.ended || this.active > 0 || this.queue.size > 0) {
      return
    }
    this.stream.close().catch(err => { this.stream.abort(err instanceof Error ? err : new Error(String(err))) })
    this.end()
  }

  private end (): void {
    if (this.ended) {
      return
    }
    this.ended = true
    this.controller.abort()
    this.server.releaseWants(this.peerKey, this.queue.size)
    this.queue.clear()
    this.server.forget(this)
  }
}
