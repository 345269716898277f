/**
 * A share's status as `homecloud share status` shows it, from what its
 * sync knows: counts from the index (`LocalIndex.counts`), its head and the members' heads, what
 * a pull still needs, the errors of the last runs.
 */
import type { IndexCounts } from './local-index.js'
import type { PullBackoffSummary } from './pull-backoff.js'
import type { OwnHead, PeerHead, ShareMode } from './share-state.js'
import type { SharePathError, SharePeerStatus, ShareState, ShareStatus } from './share-types.js'

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
