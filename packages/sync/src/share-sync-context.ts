/** What a share's sync (share-sync.ts) takes from the share service. */
import type { HistoryLimits } from './history.js'
import type { FetchBlocks } from './remote-snapshot.js'
import type { ChunkFileFn } from './scanner.js'
import type { ShareDefinition, ShareRecords } from './share-state.js'
import type { AbortOptions } from '@homecloud/interface'
import type { ChunkSink } from '@homecloud/exchange'
import type { ChunkStore } from '@homecloud/store'
import type { PrivateKey } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

export interface ShareSyncConfig {
  watch: boolean
  watchDebounceMs: number
  rescanIntervalMs: number
  pollIntervalMs: number
  retryIntervalMs: number
  /** A scan running this long publishes a partial head (partial-heads.ts). */
  partialHeadAfterMs: number
  minFreeFraction: number
  history: HistoryLimits
  now(): number
}

/** What a share's sync takes from the service. */
export interface ShareSyncContext {
  self: string
  privateKey: PrivateKey
  records: ShareRecords
  store: Pick<ChunkStore, 'has' | 'get' | 'put' | 'pin' | 'unpin' | 'indexFile' | 'indexFiles' | 'hasMany'>
  chunkFile: ChunkFileFn
  /** Fetches chunks from the members that may hold them (`first` is asked first) into `sink` (default: the block store). */
  fetchChunks(share: ShareDefinition, cids: CID[], first: string | undefined, options: AbortOptions & { sink?: ChunkSink }): Promise<unknown>
  /** Snapshot blocks of `share` from `device` over the share protocol. */
  fetchBlocks(share: ShareDefinition, device: string): FetchBlocks
  /** Is any other member of the share's swarm connected (else a pull can fetch nothing)? */
  anyMemberOnline(share: ShareDefinition): boolean
  /** Our head changed (or state did): tell the members. */
  changed(share: string, headChanged: boolean): void
  /** Chunks were fetched into the block store or history was pruned: GC when quiet. */
  gcWanted(): void
  config: ShareSyncConfig
}
