/**
 * The fetching side of one peer: one long-lived stream carrying wants out and
 * blocks back, shared by every fetch that uses this peer. Blocks are verified
 * here, before any fetch sees them; a peer that sends a wrong block, a block it
 * was never asked for or a malformed message is penalised and its stream reset.
 */
import { IntegrityError, LimitExceededError, isHomecloudError } from '@homecloud/interface'
import type { AbortOptions } from '@homecloud/interface'
import type { Logger } from '@libp2p/logger'
import type { PeerId, Stream, StreamCloseEvent, StreamMessageEvent } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import type { Uint8ArrayList } from 'uint8arraylist'
import { MAX_ENTRIES_PER_MESSAGE, MAX_WANTS_PER_PEER, PROTOCOL } from './constants.js'
import { MessageDecodeError, ProtocolViolationError } from './errors.js'
import type { PeerPenalties } from './penalties.js'
import { blockMatches } from './verify.js'
import { decodeMessage, encodeMessage, FrameReader } from './wire.js'
import type { Block, Entry } from './wire.js'
import type { Counters } from './counters.js'
import { bytesKey } from './keys.js'

/** A fetch using a session. */
export interface SessionListener {
  /** A verified block this listener wanted. */
  onBlock(session: PeerSession, cid: CID, bytes: Block): void
  /** The peer does not hold (or will not serve) a CID this listener wanted. */
  onMissing(session: PeerSession, cid: CID): void
  /** The session is gone; every want the listener had at it is void. */
  onSessionClosed(session: PeerSession, err: Error): void
}

export interface SessionDeps {
  openStream(peer: PeerId, protocol: string, options?: AbortOptions): Promise<Stream>
  penalties: PeerPenalties
  counters: Counters
  log: Logger
  idleTimeout: number
  /** Called once when the session ends, so the exchange forgets it. */
  onClosed(session: PeerSession): void
}

interface Want {
  cid: CID
  listeners: Set<SessionListener>
}

/** Cancelled CIDs remembered so a block already on its way is "late", not "unrequested". */
const MAX_LATE = 2 * MAX_WANTS_PER_PEER

export class SessionClosedError extends Error {
  readonly code = 'ERR_SESSION_CLOSED'
  constructor (message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'SessionClosedError'
  }
}

export class PeerSession {
  readonly peer: PeerId
  readonly key: string
  private stream?: Stream
  private readonly deps: SessionDeps
  private readonly controller = new AbortController()
  private readonly wants = new Map<string, Want>()
  private readonly listeners = new Set<SessionListener>()
  private readonly late = new Set<string>()
  private readonly reader = new FrameReader()
  private outbox: Entry[] = []
  private flushQueued = false
  private idleTimer?: ReturnType<typeof setTimeout>
  private closedWith?: Error
  /**
   * What the last fetch learned of this peer (its window and rate, and when):
   * the next fetch starts there instead of at the initial window, so a run
   * of short fetches (sync's apply batches) does not ramp up from cold each time.
   */
  learned?: { window: number, rate: number, at: number }

  constructor (peer: PeerId, deps: SessionDeps) {
    this.peer = peer
    this.key = peer.toString()
    this.deps = deps
    void this.open()
  }

  get closed (): boolean {
    return this.closedWith !== undefined
  }

  /** How many more CIDs may be wanted from this peer now. */
  get capacity (): number {
    return MAX_WANTS_PER_PEER - this.wants.size
  }

  attach (listener: SessionListener): void {
    this.listeners.add(listener)
    this.clearIdle()
  }

  /** Forgets a listener and cancels what only it wanted. */
  detach (listener: SessionListener): void {
    this.listeners.delete(listener)
    for (const want of [...this.wants.values()]) {
      if (want.listeners.has(listener)) {
        this.cancel(want.cid, listener)
      }
    }
    this.maybeIdle()
  }

  want (cid: CID, listener: SessionListener): void {
    if (this.closedWith !== undefined) {
      throw new SessionClosedError(`session to ${this.key} is closed`, { cause: this.closedWith })
    }
    const key = bytesKey(cid.bytes)
    const existing = this.wants.get(key)
    if (existing !== undefined) {
      existing.listeners.add(listener)
      return
    }
    if (this.wants.size >= MAX_WANTS_PER_PEER) {
      throw new LimitExceededError(`at most ${MAX_WANTS_PER_PEER} CIDs may be wanted from one peer`)
    }
    // a key stays in `late` if re-wanted: a server may then send it twice, and the second copy is late
    this.wants.set(key, { cid, listeners: new Set([listener]) })
    this.queue({ type: 'want', cid })
  }

  cancel (cid: CID, listener: SessionListener): void {
    const key = bytesKey(cid.bytes)
    const want = this.wants.get(key)
    if (want === undefined || !want.listeners.delete(listener) || want.listeners.size > 0) {
      return
    }
    this.wants.delete(key)
    this.remember(key)
    if (this.closedWith === undefined) {
      this.queue({ type: 'cancel', cid })
    }
    this.maybeIdle()
  }

  /** Ends the session: gracefully without `err`, otherwise by resetting the stream. */
  close (err?: Error): void {
    if (this.closedWith !== undefined) {
      return
    }
    this.closedWith = err ?? new SessionClosedError(`session to ${this.key} closed`)
    this.clearIdle()
    this.controller.abort(this.closedWith)
    const stream = this.stream
    if (stream !== undefined && stream.status === 'open') {
      if (err === undefined) {
        stream.close().catch(() => { stream.abort(this.closedWith ?? new Error('close failed')) })
      } else {
        stream.abort(err)
      }
    }
    this.wants.clear()
    this.outbox = []
    const listeners = [...this.listeners]
    this.listeners.clear()
    const reason = this.closedWith
    this.notify(listeners, listener => { listener.onSessionClosed(this, reason) })
    this.deps.onClosed(this)
  }

  private async open (): Promise<void> {
    let stream: Stream
    try {
      stream = await this.deps.openStream(this.peer, PROTOCOL, { signal: this.controller.signal })
    } catch (err) {
      this.deps.log('could not open a stream to %s - %s', this.key, errorMessage(err))
      this.close(new SessionClosedError(`could not open a stream to ${this.key}: ${errorMessage(err)}`, { cause: err }))
      return
    }
    if (this.closedWith !== undefined) {
      stream.abort(this.closedWith)
      return
    }
    this.stream = stream
    stream.addEventListener('message', (evt: StreamMessageEvent) => { this.onData(evt.data) })
    stream.addEventListener('close', (evt: StreamCloseEvent) => {
      this.close(new SessionClosedError(`stream to ${this.key} closed${evt.error != null ? `: ${evt.error.message}` : ''}`, { cause: evt.error }))
    })
    // the server ends its side only when it is going away
    stream.addEventListener('remoteCloseWrite', () => {
      this.close(new SessionClosedError(`${this.key} closed its side of the stream`))
    })
    this.flush()
  }

  private onData (data: Uint8Array | Uint8ArrayList): void {
    try {
      for (const body of this.reader.push(data)) {
        for (const entry of decodeMessage(body)) {
          if (this.closedWith !== undefined) {
            return
          }
          this.onEntry(entry)
        }
      }
    } catch (err) {
      if (err instanceof MessageDecodeError) {
        this.deps.counters.badMessages++
      }
      this.fault(isHomecloudError(err) ? err : new MessageDecodeError(errorMessage(err), { cause: err }))
    }
  }

  private onEntry (entry: Entry): void {
    if (entry.type === 'want' || entry.type === 'cancel') {
      throw new ProtocolViolationError(`${this.key} sent a ${entry.type} on a fetching stream`)
    }
    const key = bytesKey(entry.cid.bytes)
    const want = this.wants.get(key)
    if (want === undefined) {
      if (this.late.delete(key)) {
        if (entry.type === 'block') {
          this.deps.counters.lateBlocks++
        }
        return
      }
      if (entry.type === 'missing') {
        return
      }
      this.deps.counters.unrequestedBlocks++
      throw new ProtocolViolationError(`${this.key} sent block ${entry.cid.toString()} that was never wanted`)
    }
    this.wants.delete(key)
    if (entry.type === 'missing') {
      this.notify(want.listeners, listener => { listener.onMissing(this, entry.cid) })
      this.maybeIdle()
      return
    }
    // hashed here, in place: with sha-256 in hardware (~1 GB/s a core) that costs less
    // CPU than handing the block to a worker thread and back, and no second V8 heap
    this.accept(want, entry.cid, entry.bytes, blockMatches(entry.cid, entry.bytes))
  }

  /** Hands a verified block to the fetches that wanted it, or faults the peer for a wrong one. */
  private accept (want: Want, cid: CID, bytes: Block, matches: boolean): void {
    if (this.closedWith !== undefined) {
      return
    }
    if (!matches) {
      this.deps.counters.wrongBlocks++
      this.fault(new IntegrityError(`${this.key} sent bytes that do not hash to ${cid}`))
      return
    }
    this.deps.counters.blocksReceived++
    this.deps.counters.bytesReceived += bytes.byteLength
    this.notify(want.listeners, listener => { listener.onBlock(this, cid, bytes) })
    this.maybeIdle()
  }

  /** A listener's own failure must not count against the peer, so it is caught here. */
  private notify (listeners: Iterable<SessionListener>, call: (listener: SessionListener) => void): void {
    for (const listener of listeners) {
      try {
        call(listener)
      } catch (err) {
        this.deps.log.error('session listener failed - %e', err)
      }
    }
  }

  private fault (err: Error & { code: string }): void {
    const banned = this.deps.penalties.fault(this.key, err.code)
    this.deps.log('fault by %s (%s)%s - %s', this.key, err.code, banned ? ', banned' : '', err.message)
    this.close(err)
  }

  private remember (key: string): void {
    this.late.add(key)
    if (this.late.size > MAX_LATE) {
      const oldest = this.late.values().next().value
      if (oldest !== undefined) {
        this.late.delete(oldest)
      }
    }
  }

  private queue (entry: Entry): void {
    this.outbox.push(entry)
    if (!this.flushQueued) {
      this.flushQueued = true
      // wants made in one turn of the event loop leave in one message
      queueMicrotask(() => {
        this.flushQueued = false
        this.flush()
      })
    }
  }

  private flush (): void {
    const stream = this.stream
    if (stream === undefined || this.closedWith !== undefined || this.outbox.length === 0) {
      return
    }
    try {
      // bounded: the outbox never holds more than the wants (≤ 1024) plus their cancels
      for (let i = 0; i < this.outbox.length; i += MAX_ENTRIES_PER_MESSAGE) {
        stream.send(encodeMessage(this.outbox.slice(i, i + MAX_ENTRIES_PER_MESSAGE)))
      }
      this.outbox = []
    } catch (err) {
      this.close(new SessionClosedError(`could not write to ${this.key}: ${errorMessage(err)}`, { cause: err }))
    }
  }

  private maybeIdle (): void {
    if (this.closedWith !== undefined || this.wants.size > 0 || this.listeners.size > 0 || this.idleTimer !== undefined) {
      return
    }
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined
      if (this.wants.size === 0 && this.listeners.size === 0) {
        this.close()
      }
    }, this.deps.idleTimeout)
    this.idleTimer.unref()
  }

  private clearIdle (): void {
    if (this.idleTimer !== undefined) {
      clearTimeout(this.idleTimer)
      this.idleTimer = undefined
    }
  }
}

export function errorMessage (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
