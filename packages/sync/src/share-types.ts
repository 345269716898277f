/**
 * The public shapes of the share service: its components, options, and
 * what it reports (share list, offers, status, history).
 */
import type { HistoryLimits } from './history.js'
import type { ShareKv } from './share-kv.js'
import type { ShareDefinition, ShareMode } from './share-state.js'
import type { AbortOptions } from '@homecloud/interface'
import type { ChunkExchange } from '@homecloud/exchange'
import type { ChunkStore } from '@homecloud/store'
import type { RosterGate, SwarmService } from '@homecloud/swarm'
import type { Libp2p, PeerId, PrivateKey } from '@libp2p/interface'

/** What the share service needs from the device; `packages/node` hands it the real parts. */
export interface ShareServiceComponents {
  peerId: PeerId
  /** The device key: signs heads. */
  privateKey: PrivateKey
  /** The swarm service's gate: every share stream goes through it. */
  gate: Pick<RosterGate, 'handle' | 'unhandle' | 'dial'>
  /** Membership queries and roster events (`swarm:change`, `swarm:member-removed`, `swarm:left`). */
  swarms: Pick<SwarmService, 'get' | 'isMember' | 'members' | 'swarmsOf' | 'addEventListener' | 'removeEventListener'>
  /** libp2p events: `connection:open` pulls heads from the new peer. */
  events: Pick<Libp2p, 'addEventListener' | 'removeEventListener'>
  /** Chunks of the share's files are indexed here; history and fetched chunks live in its block store. `hasMany` makes a pull plan one lookup, not one per chunk. */
  store: Pick<ChunkStore, 'has' | 'get' | 'put' | 'pin' | 'unpin' | 'indexFile' | 'indexFiles' | 'gc' | 'chunkFile' | 'hasMany'>
  /** The multi-source fetcher (the chunk exchange). */
  chunks: Pick<ChunkExchange, 'fetch'>
}

export interface ShareServiceInit {
  /** LevelDB folder for share definitions, indexes and heads; in memory when absent (and no `kv`). */
  datastorePath?: string
  /** A key-value store to use instead (tests). */
  kv?: ShareKv
  /** One share protocol exchange, end to end (ms). */
  protocolTimeoutMs?: number
  /** Watch share folders for changes (default true). */
  watch?: boolean
  /** At most this long from the first change of a burst to the scan (ms, ≤ 1000); a burst that goes quiet is scanned sooner (watcher.ts). */
  watchDebounceMs?: number
  /** Full rescan period while the watcher works (ms). */
  rescanIntervalMs?: number
  /** Rescan period once the watcher failed (ms). */
  pollIntervalMs?: number
  /** Retry period of a paused (disk full) or failed pull (ms). */
  retryIntervalMs?: number
  /** A scan running this long publishes the files hashed so far as a partial head (ms; default `PARTIAL_HEAD_AFTER_MS`). */
  partialHeadAfterMs?: number
  /** Kept versions: retention and size cap per share. */
  history?: Partial<HistoryLimits>
  /** Free space kept on a share's filesystem (fraction; default 1%). */
  minFreeFraction?: number
  /** Accept every offered share into `<autoAcceptDir>/<share name>` (a backup box). */
  autoAcceptDir?: string
  /** Mode of auto-accepted shares (default `receive-only`). */
  autoAcceptMode?: ShareMode
  /** Run the store's GC after a pull that fetched chunks, so fetched blocks do not stay twice (default true). */
  gcAfterSync?: boolean
  /** Milliseconds since the epoch; tests move it. */
  now?(): number
}

/** A share on this device: a copy of its stored definition. */
export type ShareInfo = ShareDefinition

/** A share another member holds and this device does not (yet). */
export interface ShareOffer {
  id: string
  name: string
  swarm: string
  /** Devices that announced it. */
  from: string[]
  /** When it was last announced (ms). */
  offeredAt: number
}

export type ShareState = 'idle' | 'scanning' | 'syncing' | 'paused' | 'error'

export interface SharePeerStatus {
  device: string
  name?: string
  online: boolean
  /** When a share exchange with it last completed (ms since the epoch; either side asked): old while online means a silent peer. */
  lastAnswer?: number
  /** Our last announce to it failed and is being tried again (a partition, or a connection that carries nothing). */
  retrying: boolean
  /** Its newest head, when one was received. */
  seq?: number
  snapshot?: string
  /** Its head names the same snapshot as ours. */
  inSync: boolean
  /** Its newest snapshot was pulled without errors. */
  applied: boolean
}

export interface SharePathError {
  path: string
  code: string
  message: string
}

/** What a receive-only revert did. */
export interface ShareRevertResult {
  /** Changed paths put back. */
  reverted: number
  /** The paths that failed, each with why (the first error of the path), at most MAX_STATUS_PATH_ERRORS. */
  failed: SharePathError[]
  /** How many paths failed, those left out of `failed` too. */
  failedTotal: number
}

export interface ShareStatus {
  share: ShareInfo
  state: ShareState
  /** Live files and their bytes in the local index. */
  files: number
  bytes: number
  /** Left to write in the current (or last unfinished) pull. */
  needFiles: number
  needBytes: number
  /** The current pull: 0..1 of its bytes (1 when idle). */
  progress: number
  /** This device's head. */
  head?: { seq: number, snapshot: string }
  peers: SharePeerStatus[]
  /** Files changed here that are not sent (receive-only). */
  locallyChanged: number
  lastError?: { code: string, message: string, at: number }
  /** Entries that failed alone (bad names from peers, unreadable files), newest last, bounded. */
  pathErrors: SharePathError[]
  /** `watching`, or `polling` when the watcher failed (with the reason in `watcherError`) or is off. */
  watcher: 'watching' | 'polling'
  /** Why the watcher is off, or its last overflow (changes it may have missed; a scan of everything followed). */
  watcherError?: string
  lastScanAt?: number
  lastSyncAt?: number
  /** Bytes of kept versions. */
  historyBytes: number
  /**
   * Files a pull could not write because no member online served some of
   * their chunks (the member holding them may be offline): such pulls are
   * retried less and less often (at once when a member connects or has a
   * new head). 0 when nothing waits.
   */
  waitingFiles: number
  /** When the next of those pulls is tried (ms since the epoch); absent when nothing waits. */
  nextRetryAt?: number
}

export interface AddShareOptions extends AbortOptions {
  /** Swarm name or id. */
  swarm: string
  /** Default: the folder's name. */
  name?: string
  mode?: ShareMode
}

export interface AcceptShareOptions extends AbortOptions {
  mode?: ShareMode
}

export interface RestoreOptions extends AbortOptions {
  /** The version to restore (default: the newest kept). */
  version?: number
  /** Write it to this absolute path (which must not exist) instead of its place in the share. */
  to?: string
}

export interface ShareServiceEvents {
  /** A share's state, head or peers changed. */
  'share:change': CustomEvent<{ shareId: string }>
  /** A member offered a share this device does not hold. */
  'share:offer': CustomEvent<ShareOffer>
}
