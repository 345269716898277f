/**
 * A share's status as `homecloud share status` shows it, from what its
 * sync knows: counts from the index (kept up to date as it changes), its head and the members' heads, what
 * a pull still needs, the errors of the last runs.
 */
import type { LocalEntry } from './entry.js'
import type { LocalIndex } from './local-index.js'
import type { PullBackoffSummary } from './pull-backoff.js'
import type { OwnHead, PeerHead, ShareMode } from './share-state.js'
import type { SharePathError, SharePeerStatus, ShareState, ShareStatus } from './share-types.js'

/** What status shows from the index. */
export interface IndexCounts {
  /** Live files and their bytes. */
  files: number
  bytes: number
  /** Entries (tombstones too) this device changed last: shown in receive-only mode, where they can be reverted. */
  ownChanges: number
}

/** Counts `entries` (a full count unpacks every entry: see `IndexCounter`). */
export function countEntries (entries: Iterable<LocalEntry>, self: string): IndexCounts {
  const counts: IndexCounts = { files: 0, bytes: 0, ownChanges: 0 }
  for (const e of entries) {
    if (e.deleted !== true && e.type === 'file') {
      counts.files++
      counts.bytes += e.size
    }
    if (e.modifiedBy === self) counts.ownChanges++
  }
  return counts
}

/**
 * The index counts status shows, kept up to date as the index changes: a UI
 * polls status (every 200 ms), and counting unpacks every entry with its
 * chunk list (~8 ms a call for a 1 GiB file and 2,000 small ones). The index
 * has no change events: its two writers, `set` and `delete`, are wrapped on
 * this instance. Wrapped writes run one at a time, so the entries a write
 * replaces, read as it starts, are what it replaces; a failed write is
 * followed by a full count.
 */
export class IndexCounter {
  readonly #index: Pick<LocalIndex, 'values' | 'get'>
  readonly #self: string
  #counts: IndexCounts
  #writes: Promise<void> = Promise.resolve()

  constructor (index: Pick<LocalIndex, 'values' | 'get' | 'set' | 'delete'>, self: string) {
    this.#index = index
    this.#self = self
    this.#counts = countEntries(index.values(), self)
    const set = index.set.bind(index)
    const del = index.delete.bind(index)
    index.set = async (entries, also) => {
      // the last entry of a path given twice is the one kept
      const next = new Map(entries.map(e => [e.path, e]))
      await this.#write([...next.keys()], [...next.values()], async () => { await set(entries, also) })
    }
    index.delete = async (paths) => { await this.#write([...new Set(paths)], [], async () => { await del(paths) }) }
  }

  counts (): IndexCounts {
    return { ...this.#counts }
  }

  async #write (paths: string[], next: LocalEntry[], write: () => Promise<void>): Promise<void> {
    const run = this.#writes.then(async () => {
      const replaced = paths.map(p => this.#index.get(p)).filter(e => e != null)
      try {
        await write()
      } catch (err) {
        this.#counts = countEntries(this.#index.values(), this.#self)
        throw err
      }
      this.#add(replaced, -1)
      this.#add(next, 1)
    })
    this.#writes = run.catch(() => {})
    await run
  }

  #add (entries: LocalEntry[], sign: 1 | -1): void {
    const delta = countEntries(entries, this.#self)
    this.#counts.files += sign * delta.files
    this.#counts.bytes += sign * delta.bytes
    this.#counts.ownChanges += sign * delta.ownChanges
  }
}

export interface ShareStatusInput {
  counts: IndexCounts
  mode: ShareMode
  head?: OwnHead
  peerHeads: ReadonlyMap<string, PeerHead>
  state: ShareState
  paused: boolean
  need: { files: number, bytes: number, totalBytes: number, doneBytes: number }
  lastError?: { code: string, message: string, at: number }
  pathErrors: readonly SharePathError[]
  watching: boolean
  watcherError?: string
  lastScanAt?: number
  lastSyncAt?: number
  historyBytes: number
  /** Pulls backing off: they wait for chunks no member served. */
  waiting: PullBackoffSummary
}

export type MemberStatus = Pick<SharePeerStatus, 'device' | 'name' | 'online' | 'lastAnswer' | 'retrying'>

export function shareStatus (s: ShareStatusInput, peers: MemberStatus[]): Omit<ShareStatus, 'share'> {
  const root = s.head?.root
  const peerStatus: SharePeerStatus[] = peers.map(p => {
    const head = s.peerHeads.get(p.device)
    return {
      ...p,
      ...(head != null ? { seq: head.seq, snapshot: head.snapshot.toString() } : {}),
      inSync: head != null && root != null && head.snapshot.equals(root),
      applied: head?.applied != null && head.applied.equals(head.snapshot)
    }
  })
  const pulling = s.state === 'syncing' || s.state === 'error' || s.paused
  return {
    state: s.paused ? 'paused' : s.state,
    files: s.counts.files,
    bytes: s.counts.bytes,
    needFiles: pulling ? s.need.files : 0,
    needBytes: pulling ? s.need.bytes : 0,
    progress: pulling && s.need.totalBytes > 0 ? s.need.doneBytes / s.need.totalBytes : 1,
    ...(s.head != null ? { head: { seq: s.head.seq, snapshot: s.head.root.toString() } } : {}),
    peers: peerStatus,
    locallyChanged: s.mode === 'receive-only' ? s.counts.ownChanges : 0,
    ...(s.lastError != null ? { lastError: s.lastError } : {}),
    pathErrors: [...s.pathErrors],
    watcher: s.watching ? 'watching' : 'polling',
    ...(s.watcherError != null ? { watcherError: s.watcherError } : {}),
    ...(s.lastScanAt != null ? { lastScanAt: s.lastScanAt } : {}),
    ...(s.lastSyncAt != null ? { lastSyncAt: s.lastSyncAt } : {}),
    historyBytes: s.historyBytes,
    waitingFiles: s.waiting.files,
    ...(s.waiting.nextRetryAt != null ? { nextRetryAt: s.waiting.nextRetryAt } : {})
  }
}
