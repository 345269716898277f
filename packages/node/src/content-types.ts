/**
 * The content API of a device (issue 3): add a file tree in place, get one from
 * peers into a folder, and look after the chunk store. Results are plain JSON
 * (CIDs as strings): they travel over the control API as they are.
 */
import type { AbortOptions, ProgressEvent, ProgressOptions } from '@homecloud/interface'
import type { PeerRate } from '@homecloud/exchange'
import type { BadEntryReason, ChunkStore, StoreStat } from '@homecloud/store'

/** What a long content operation is doing now. */
export type ContentPhase =
  /** `add`: walking the tree for totals; `get`: walking the fetched DAG. */
  | 'scan'
  /** `add`: chunking and hashing files. */
  | 'index'
  /** `get`: dialling the given peers or looking for providers in the DHT. */
  | 'providers'
  /** `get`: fetching the DAG nodes (directories, file nodes) into the block store. */
  | 'dag'
  /** `get`: fetching file chunks into the partial output. */
  | 'data'
  /** `get`: fsync, rename, index. */
  | 'finish'
  | 'gc'
  | 'verify'

/**
 * One progress snapshot; the same shape for every operation, so one progress
 * bar (CLI) or view (web UI) renders all of them. Totals are absent until known.
 */
export interface ContentProgress {
  phase: ContentPhase
  /** Bytes done: hashed (add), received + reused (get). */
  bytes: number
  bytesTotal?: number
  /** Chunks (or blocks) done. */
  chunks: number
  chunksTotal?: number
  /** `get`: bytes and chunks found already present (a resumed get, or chunks this device holds). */
  reusedBytes?: number
  reusedChunks?: number
  files?: number
  filesTotal?: number
  /** `get`: the peers of the fetch and their measured rates. */
  peers?: PeerRate[]
}

export type ContentProgressEvents = ProgressEvent<'content:progress', ContentProgress>

export interface ContentOptions extends AbortOptions, ProgressOptions<ContentProgressEvents> {}

export interface AddContentResult {
  /** UnixFS root CID (CIDv1). */
  cid: string
  files: number
  bytes: number
  /** Was the root announced in the DHT? (false when the DHT is off or the announce failed or timed out) */
  provided: boolean
}

export interface GetContentOptions extends ContentOptions {
  /**
   * Multiaddrs (each with `/p2p/<id>`) of peers that hold the content. When
   * empty, providers of the root are looked up in the DHT.
   */
  from?: string[]
}

export interface GetContentResult {
  cid: string
  /** Where the content now is (absolute). */
  output: string
  files: number
  directories: number
  symlinks: number
  /** Bytes of file content in the tree. */
  bytes: number
  /** File chunks received from peers in this run. */
  receivedChunks: number
  receivedBytes: number
  /** File chunks that were already there: verified in the partial output of an earlier run, or copied from this device's store. */
  reusedChunks: number
  reusedBytes: number
  /** DAG nodes (directories, file nodes) received in this run. */
  dagBlocks: number
  /** PeerIds of the peers fetched from. */
  peers: string[]
}

/** A block or file chunk that failed verification (dropped from the store, no longer served). */
export interface BadBlock {
  cid: string
  reason: BadEntryReason
  path?: string
  offset?: number
}

export interface BlocksVerifyResult {
  checked: number
  bad: BadBlock[]
}

export interface BlocksGcResult {
  removedBlocks: number
  removedBytes: number
}

/** `homecloud blocks stat|gc|verify`. */
export interface BlocksApi {
  stat(options?: AbortOptions): Promise<StoreStat>
  /** Removes blocks no pin reaches; file-backed chunks and pinned DAGs stay. */
  gc(options?: ContentOptions): Promise<BlocksGcResult>
  /** Re-hashes every block and file chunk; bad ones are dropped and listed. */
  verify(options?: ContentOptions): Promise<BlocksVerifyResult>
}

/** What a device offers for content (`HomecloudNode` has all of it). */
export interface DeviceContentApi {
  /**
   * The chunk store (D6): files indexed in place, DAG nodes and pinned blocks.
   * Throws NodeNotStartedError while the device is stopped.
   */
  readonly store: ChunkStore
  /**
   * Indexes the file or folder at the absolute `path` in place (nothing is
   * copied), pins its UnixFS root and, when the DHT is on, announces the root
   * as provided (bounded; a failure is only logged).
   */
  add(path: string, options?: ContentOptions): Promise<AddContentResult>
  /**
   * Fetches the UnixFS tree `cid` into `output` (absolute; must not exist, its
   * parent must). Chunks are verified, written straight into a partial output
   * next to it (`.<name>.<tag>.homecloud-partial`), which a rerun after a crash
   * reuses; then fsync, rename, fsync of the folder (D7), and the files' chunks
   * are indexed in place.
   */
  get(cid: string, output: string, options?: GetContentOptions): Promise<GetContentResult>
  readonly blocks: BlocksApi
}
