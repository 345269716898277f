/**
 * One multi-source fetch. Work is pulled, not pushed: each peer holds a window
 * of wants sized to about a second of its measured rate, and gets the next CID
 * whenever a block it sent is stored, so faster peers serve proportionally
 * more. Wants of a peer that delivers nothing for `stallTimeout` are moved to
 * others; when nothing is left to hand out, idle peers duplicate the oldest
 * outstanding wants (end-game) and the first copy to arrive cancels the rest.
 */
import { AbortError, CustomProgressEvent, InvalidParametersError, NotFoundError } from '@homecloud/interface'
import type { Logger } from '@libp2p/logger'
import type { PeerId } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { CHECK_CONCURRENCY, MAX_BUFFERED_BYTES, MAX_WINDOW_BYTES, WINDOW_SECONDS } from './constants.js'
import { PeersFailedError, PeerStalledError } from './errors.js'
import type { PeerSession, SessionListener } from './session.js'
import { errorMessage } from './session.js'
import type { ChunkSink, FetchOptions, FetchProgress, FetchResult, LinkResolver, MissingBlock, PeerRate } from './types.js'
import type { Block } from './wire.js'
import { bytesKey } from './keys.js'

export interface FetchConfig {
  stallTimeout: number
  maxStalls: number
  endGameCopies: number
  initialWindow: number
  maxWindow: number
}

export interface FetchContext {
  config: FetchConfig
  log: Logger
  session(peer: PeerId): PeerSession
}

type ChunkStateName = 'checking' | 'queued' | 'requested' | 'storing' | 'done' | 'missing'

interface Chunk {
  cid: CID
  key: string
  state: ChunkStateName
  /** Peers with an outstanding want for it (more than one only in the end-game). */
  holders: Set<FetchPeer>
  /** Peers that answered "missing". */
  missingFrom: Set<string>
}

interface FetchPeer {
  key: string
  session: PeerSession
  /** Outstanding wants: chunk key → when it was sent. */
  outstanding: Map<string, number>
  /** Blocks received from it and not yet stored; they still count against its window. */
  storing: number
  window: number
  bytes: number
  chunks: number
  rate: number
  sampleBytes: number
  sampleAt: number
  /** Since when it holds wants without delivering anything. */
  waitingSince: number
  stalls: number
  dropped?: string
}

interface Checked {
  chunk: Chunk
  held: boolean
  bytes?: Uint8Array
  error?: unknown
}

/** How long what a fetch learned of a peer's rate stays a fetch's starting point. */
const LEARNED_MS = 10_000

/** Assumed block size until blocks are seen (the store's average chunk). */
const ASSUMED_BLOCK_BYTES = 256 * 1024

export class Fetch implements SessionListener {
  private readonly ctx: FetchContext
  private readonly sink: ChunkSink
  private readonly links?: LinkResolver
  private readonly options: FetchOptions
  private readonly controller = new AbortController()
  private readonly signal: AbortSignal
  private readonly chunks = new Map<string, Chunk>()
  private readonly peers = new Map<string, FetchPeer>()
  private readonly toCheck: Chunk[] = []
  private readonly queued: Chunk[] = []
  private queuedHead = 0
  private retry: Chunk[] = []
  /** Requested chunks, oldest first: the end-game duplicates from the front. */
  private readonly requested = new Set<Chunk>()
  /** Why each dropped peer was dropped. */
  private readonly reasons: Record<string, string> = {}
  /** Blocks no peer had (`missing: 'report'`); each chunk enters once, so at most the fetch's size. */
  private readonly missing: MissingBlock[] = []
  private readonly result = Promise.withResolvers<FetchResult>()
  private checking = false
  private storing = 0
  private bufferedBytes = 0
  private done = 0
  private skipped = 0
  private bytes = 0
  private finished = false
  private ticker?: ReturnType<typeof setInterval>
  private readonly onAbort = (): void => { this.fail(new AbortError('the fetch was aborted')) }

  constructor (ctx: FetchContext, sink: ChunkSink, options: FetchOptions) {
    this.ctx = ctx
    this.sink = sink
    this.links = options.links
    this.options = options
    this.signal = options.signal === undefined ? this.controller.signal : AbortSignal.any([options.signal, this.controller.signal])
  }

  /** Starts the fetch; `peers` are already de-duplicated and unbanned. */
  run (roots: CID[], peers: PeerId[]): Promise<FetchResult> {
    if (this.options.signal?.aborted === true) {
      return Promise.reject(new AbortError('the fetch was aborted'))
    }
    this.options.signal?.addEventListener('abort', this.onAbort)
    const now = Date.now()
    const { initialWindow, maxWindow } = this.ctx.config
    for (const peerId of peers) {
      const session = this.ctx.session(peerId)
      // a rate measured moments ago by another fetch is a better start than the initial window
      const learned = session.learned !== undefined && now - session.learned.at < LEARNED_MS ? session.learned : undefined
      const peer: FetchPeer = {
        key: session.key, session, outstanding: new Map(), storing: 0,
        window: Math.min(maxWindow, Math.max(initialWindow, learned?.window ?? 0)),
        bytes: 0, chunks: 0, rate: learned?.rate ?? 0, sampleBytes: 0, sampleAt: now, waitingSince: now, stalls: 0
      }
      this.peers.set(peer.key, peer)
      session.attach(this)
    }
    const tick = Math.max(20, Math.min(250, Math.floor(this.ctx.config.stallTimeout / 4)))
    this.ticker = setInterval(() => { this.onTick() }, tick)
    this.ticker.unref()
    for (const cid of roots) {
      this.discover(cid)
    }
    this.maybeFinish()
    return this.result.promise
  }

  /** Stops the fetch from outside (the exchange is stopping). */
  abort (err: Error): void {
    this.fail(err)
  }

  onBlock (session: PeerSession, cid: CID, bytes: Block): void {
    const peer = this.peers.get(session.key)
    const chunk = this.chunks.get(bytesKey(cid.bytes))
    if (this.finished || peer === undefined || chunk === undefined || chunk.state !== 'requested') {
      return
    }
    const now = Date.now()
    peer.outstanding.delete(chunk.key)
    peer.storing++
    peer.bytes += bytes.byteLength
    peer.chunks++
    peer.waitingSince = now
    chunk.holders.delete(peer)
    for (const other of chunk.holders) {
      other.outstanding.delete(chunk.key)
      other.session.cancel(chunk.cid, this)
    }
    chunk.holders.clear()
    this.requested.delete(chunk)
    chunk.state = 'storing'
    this.bytes += bytes.byteLength
    this.bufferedBytes += bytes.byteLength
    this.storing++
    void this.store(peer, chunk, bytes)
    this.pump()
  }

  onMissing (session: PeerSession, cid: CID): void {
    const peer = this.peers.get(session.key)
    const chunk = this.chunks.get(bytesKey(cid.bytes))
    if (this.finished || peer === undefined || chunk === undefined || chunk.state !== 'requested') {
      return
    }
    peer.outstanding.delete(chunk.key)
    peer.waitingSince = Date.now()
    chunk.holders.delete(peer)
    chunk.missingFrom.add(peer.key)
    if (chunk.holders.size === 0) {
      this.requeue(chunk)
    }
    this.checkFindable()
    this.pump()
  }

  onSessionClosed (session: PeerSession, err: Error): void {
    const peer = this.peers.get(session.key)
    if (peer !== undefined) {
      this.drop(peer, err)
    }
  }

  private discover (cid: CID): void {
    const key = bytesKey(cid.bytes)
    if (this.chunks.has(key)) {
      return
    }
    const chunk: Chunk = { cid, key, state: 'checking', holders: new Set(), missingFrom: new Set() }
    this.chunks.set(key, chunk)
    this.toCheck.push(chunk)
    if (!this.checking) {
      this.checking = true
      this.checkLoop().catch(err => { this.fail(err) })
    }
  }

  /**
   * Skips what the sink already holds (a resumed fetch moves only what is
   * missing). Several checks run at once (each may be a few disk or index
   * lookups), their results are taken in order, so chunks are still asked for
   * in the order they were found.
   */
  private async checkLoop (): Promise<void> {
    const running: Array<Promise<Checked>> = []
    try {
      let next = 0
      while (!this.finished && (next < this.toCheck.length || running.length > 0)) {
        while (running.length < CHECK_CONCURRENCY && next < this.toCheck.length) {
          running.push(this.check(this.toCheck[next++]))
        }
        const { chunk, held, bytes, error } = await (running.shift() as Promise<Checked>)
        if (error !== undefined) {
          throw error instanceof Error ? error : new Error(String(error))
        }
        if (this.finished) {
          return
        }
        if (held) {
          chunk.state = 'done'
          this.done++
          this.skipped++
          this.emit(() => new CustomProgressEvent('exchange:fetch:skipped', { cid: chunk.cid, progress: this.progress() }))
          if (bytes !== undefined) {
            this.follow(chunk.cid, bytes)
          }
        } else {
          chunk.state = 'queued'
          this.queued.push(chunk)
          this.pump()
        }
      }
      this.toCheck.length = 0
    } finally {
      this.checking = false
      // checks still running after a failure settle on their own (check() never rejects)
      running.length = 0
    }
    this.pump()
    this.maybeFinish()
  }

  /** Does the sink hold `chunk` (and, when links are walked, its bytes)? Never rejects. */
  private async check (chunk: Chunk): Promise<Checked> {
    try {
      let held = await this.sink.has(chunk.cid, { signal: this.signal })
      let bytes: Uint8Array | undefined
      if (held && this.links !== undefined) {
        // its links are needed: read it back (a DAG node already held may link to missing chunks)
        bytes = await this.sink.get?.(chunk.cid, { signal: this.signal })
        held = bytes !== undefined
      }
      return { chunk, held, bytes }
    } catch (error) {
      return { chunk, held: false, error }
    }
  }

  private follow (cid: CID, bytes: Uint8Array): void {
    if (this.links === undefined) {
      return
    }
    let children: Iterable<CID>
    try {
      children = this.links(cid, bytes)
      for (const child of children) {
        this.discover(child)
      }
    } catch (err) {
      throw new InvalidParametersError(`the link resolver failed on ${cid}: ${errorMessage(err)}`, { cause: err })
    }
  }

  private async store (peer: FetchPeer, chunk: Chunk, bytes: Block): Promise<void> {
    try {
      if (bytes instanceof Uint8Array) {
        await this.sink.put(chunk.cid, bytes, { signal: this.signal })
      } else if (this.sink.putPieces !== undefined) {
        await this.sink.putPieces(chunk.cid, bytes, { signal: this.signal })
      } else {
        await this.sink.put(chunk.cid, bytes.subarray(), { signal: this.signal })
      }
      if (this.finished) {
        return
      }
      if (this.links !== undefined) {
        this.follow(chunk.cid, bytes instanceof Uint8Array ? bytes : bytes.subarray())
      }
      chunk.state = 'done'
      this.done++
      this.emit(() => new CustomProgressEvent('exchange:fetch:chunk', { cid: chunk.cid, peer: peer.key, bytes: bytes.byteLength, progress: this.progress() }))
    } catch (err) {
      this.fail(err)
      return
    } finally {
      peer.storing--
      this.storing--
      this.bufferedBytes -= bytes.byteLength
    }
    this.pump()
    this.maybeFinish()
  }

  private requeue (chunk: Chunk): void {
    chunk.state = 'queued'
    this.requested.delete(chunk)
    this.retry.push(chunk)
  }

  private active (): FetchPeer[] {
    const active = [...this.peers.values()].filter(peer => peer.dropped === undefined)
    // fastest first, so it picks before slower peers take the queue's head
    return active.sort((a, b) => b.rate - a.rate)
  }

  private pump (): void {
    if (this.finished) {
      return
    }
    const active = this.active()
    for (const peer of active) {
      // refill in batches of a quarter window: one want message per several blocks, not one per block
      const load = peer.outstanding.size + peer.storing
      if (load > 0 && peer.window - load < Math.floor(peer.window / 4)) {
        continue
      }
      while (this.hasRoom(peer)) {
        const chunk = this.next(peer)
        if (chunk === undefined) {
          break
        }
        this.assign(peer, chunk)
      }
    }
    if (this.queuedHead < this.queued.length || this.retry.length > 0 || this.checking) {
      return
    }
    // end-game: nothing left to hand out, so idle room duplicates the oldest outstanding wants
    for (const peer of active) {
      for (const chunk of this.requested) {
        if (!this.hasRoom(peer)) {
          break
        }
        if (chunk.holders.size < this.ctx.config.endGameCopies && !chunk.holders.has(peer) && !chunk.missingFrom.has(peer.key)) {
          this.assign(peer, chunk)
        }
      }
    }
  }

  private hasRoom (peer: FetchPeer): boolean {
    return peer.dropped === undefined &&
      !peer.session.closed &&
      peer.outstanding.size + peer.storing < peer.window &&
      peer.session.capacity > 0 &&
      this.bufferedBytes < MAX_BUFFERED_BYTES
  }

  private next (peer: FetchPeer): Chunk | undefined {
    for (let i = 0; i < this.retry.length; i++) {
      const chunk = this.retry[i]
      if (!chunk.missingFrom.has(peer.key)) {
        this.retry.splice(i, 1)
        return chunk
      }
    }
    if (this.queuedHead < this.queued.length) {
      const chunk = this.queued[this.queuedHead++]
      if (this.queuedHead > 1024 && this.queuedHead * 2 > this.queued.length) {
        this.queued.splice(0, this.queuedHead)
        this.queuedHead = 0
      }
      return chunk
    }
    return undefined
  }

  private assign (peer: FetchPeer, chunk: Chunk): void {
    const now = Date.now()
    if (peer.outstanding.size === 0) {
      peer.waitingSince = now
    }
    chunk.state = 'requested'
    chunk.holders.add(peer)
    this.requested.add(chunk)
    peer.outstanding.set(chunk.key, now)
    peer.session.want(chunk.cid, this)
  }

  private drop (peer: FetchPeer, err: Error): void {
    if (peer.dropped !== undefined || this.finished) {
      return
    }
    const code = (err as { code?: unknown }).code
    const reason = typeof code === 'string' ? code : 'ERR_PEER_FAILED'
    peer.dropped = reason
    this.ctx.log('dropping %s from a fetch (%s) - %s', peer.key, reason, err.message)
    this.release(peer)
    this.reasons[peer.key] = err.message
    peer.session.detach(this)
    this.emit(() => new CustomProgressEvent('exchange:fetch:peer-dropped', { peer: peer.key, code: reason, message: err.message, progress: this.progress() }))
    if (this.active().length === 0) {
      if (!this.isComplete()) {
        this.fail(this.noPeersLeft())
      }
      return
    }
    this.checkFindable()
    this.pump()
  }

  /** Takes every outstanding want from `peer` and queues the chunks for others, front first. */
  private release (peer: FetchPeer): void {
    const moved: Chunk[] = []
    for (const key of peer.outstanding.keys()) {
      const chunk = this.chunks.get(key)
      if (chunk === undefined) {
        continue
      }
      chunk.holders.delete(peer)
      if (peer.dropped === undefined) {
        peer.session.cancel(chunk.cid, this)
      }
      if (chunk.holders.size === 0 && chunk.state === 'requested') {
        chunk.state = 'queued'
        this.requested.delete(chunk)
        moved.push(chunk)
      }
    }
    peer.outstanding.clear()
    this.retry = [...moved, ...this.retry]
  }

  private onTick (): void {
    if (this.finished) {
      return
    }
    const now = Date.now()
    const { stallTimeout, maxStalls, maxWindow } = this.ctx.config
    const meanBlock = this.done - this.skipped > 0 ? Math.max(1, this.bytes / (this.done - this.skipped)) : ASSUMED_BLOCK_BYTES
    for (const peer of this.active()) {
      const elapsed = now - peer.sampleAt
      if (elapsed > 0 && (peer.outstanding.size > 0 || peer.bytes > peer.sampleBytes)) {
        const sample = (peer.bytes - peer.sampleBytes) * 1000 / elapsed
        peer.rate = peer.rate === 0 ? sample : 0.7 * peer.rate + 0.3 * sample
      }
      peer.sampleAt = now
      peer.sampleBytes = peer.bytes
      if (peer.outstanding.size > 0 && now - peer.waitingSince > stallTimeout) {
        peer.stalls++
        if (peer.stalls >= maxStalls) {
          this.drop(peer, new PeerStalledError(`${peer.key} delivered nothing for ${stallTimeout} ms, ${peer.stalls} times`))
          continue
        }
        this.ctx.log('%s stalled, moving its %d wants', peer.key, peer.outstanding.size)
        this.release(peer)
        // on probation: one want at a time until its rate shows otherwise
        peer.window = 1
        peer.waitingSince = now
        continue
      }
      if (peer.rate > 0) {
        const cap = Math.max(1, Math.min(maxWindow, Math.floor(MAX_WINDOW_BYTES / meanBlock)))
        peer.window = Math.max(2, Math.min(cap, Math.ceil(peer.rate * WINDOW_SECONDS / meanBlock)))
      }
    }
    this.pump()
  }

  /**
   * A chunk answered "missing" by every peer still in the fetch ends the
   * fetch, or with `missing: 'report'` is left out and named in the result.
   */
  private checkFindable (): void {
    const active = this.active()
    if (active.length === 0) {
      return
    }
    const unfindable = new Set(this.retry.filter(chunk => active.every(peer => chunk.missingFrom.has(peer.key))))
    if (unfindable.size === 0) {
      return
    }
    if (this.options.missing !== 'report') {
      const [first] = unfindable
      this.fail(new NotFoundError(`block ${first.cid} was not found at any of the ${active.length} peers asked`))
      return
    }
    this.retry = this.retry.filter(chunk => !unfindable.has(chunk))
    for (const chunk of unfindable) {
      chunk.state = 'missing'
      const peers = [...chunk.missingFrom]
      this.missing.push({ cid: chunk.cid, peers })
      this.emit(() => new CustomProgressEvent('exchange:fetch:missing', { cid: chunk.cid, peers, progress: this.progress() }))
    }
    this.maybeFinish()
  }

  private noPeersLeft (): Error {
    // reporting: which chunks the failed peers had is unknown, so the fetch failed as a whole
    const missing = this.options.missing === 'report' ? undefined : this.retry.find(chunk => chunk.missingFrom.size > 0)
    if (missing !== undefined) {
      return new NotFoundError(`block ${missing.cid} was not found; every other peer failed`)
    }
    return new PeersFailedError(`every peer of the fetch failed: ${Object.entries(this.reasons).map(([p, r]) => `${p}: ${r}`).join('; ')}`, { ...this.reasons })
  }

  private isComplete (): boolean {
    return !this.checking && this.queuedHead >= this.queued.length && this.retry.length === 0 &&
      this.requested.size === 0 && this.storing === 0
  }

  private maybeFinish (): void {
    if (this.finished || !this.isComplete()) {
      return
    }
    const peers = this.peerRates()
    this.cleanup()
    this.result.resolve({ chunks: this.done - this.skipped, skipped: this.skipped, bytes: this.bytes, peers, missing: this.missing })
  }

  private fail (err: unknown): void {
    if (this.finished) {
      return
    }
    this.cleanup()
    this.controller.abort(err)
    this.result.reject(err)
  }

  private cleanup (): void {
    this.finished = true
    clearInterval(this.ticker)
    this.options.signal?.removeEventListener('abort', this.onAbort)
    const now = Date.now()
    for (const peer of this.peers.values()) {
      peer.session.detach(this)
      if (peer.dropped === undefined && peer.stalls === 0 && peer.rate > 0) {
        peer.session.learned = { window: peer.window, rate: peer.rate, at: now }
      }
    }
  }

  private peerRates (): PeerRate[] {
    return [...this.peers.values()].map(peer => ({
      peer: peer.key,
      bytes: peer.bytes,
      chunks: peer.chunks,
      bytesPerSecond: Math.round(peer.rate),
      outstanding: peer.outstanding.size
    }))
  }

  private progress (): FetchProgress {
    return {
      chunksDone: this.done,
      chunksTotal: this.chunks.size,
      chunksSkipped: this.skipped,
      bytes: this.bytes,
      peers: this.peerRates()
    }
  }

  /** Builds the event only when someone listens: a snapshot per chunk is not free. */
  private emit (event: () => Parameters<NonNullable<FetchOptions['onProgress']>>[0]): void {
    if (this.options.onProgress === undefined) {
      return
    }
    try {
      this.options.onProgress(event())
    } catch (err) {
      this.ctx.log.error('onProgress threw - %e', err)
    }
  }
}
