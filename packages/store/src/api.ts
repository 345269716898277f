import type { AbortOptions, ProgressEvent, ProgressOptions } from '@homecloud/interface'
import type { CID } from 'multiformats/cid'

export type AddProgressEvents =
  /** Totals found by the first walk over the tree, before any file is read. */
  | ProgressEvent<'store:add:scan', { files: number, bytes: number }>
  /** Bytes chunked and files done so far. */
  | ProgressEvent<'store:add:progress', { bytes: number, files: number }>
  | ProgressEvent<'store:add:file', { path: string, cid: CID, size: number }>
  /** An entry that is not a file, directory or symlink (socket, fifo, device). */
  | ProgressEvent<'store:add:skip', { path: string, reason: string }>

export interface AddOptions extends AbortOptions, ProgressOptions<AddProgressEvents> {
  /** Pin the root so GC keeps its DAG nodes (default true). */
  pin?: boolean
}

export type GcProgressEvents = ProgressEvent<'store:gc:removed', { cid: CID, bytes: number }>

export interface GcResult {
  removedBlocks: number
  removedBytes: number
}

export interface StoreStat {
  /** Blocks in the block store and their bytes. */
  blocks: number
  blockBytes: number
  /** Indexed local files, their chunks and bytes (referenced, not copied). */
  files: number
  fileChunks: number
  fileBytes: number
  pins: number
}

/** A file chunk is 'file-changed' when its file was modified, moved or removed since it was indexed. */
export type BadEntryReason = 'hash-mismatch' | 'file-changed'

/** A block or file chunk that failed verification; it is no longer served. */
export interface BadEntry {
  cid: CID
  reason: BadEntryReason
  /** For a chunk of a local file. */
  path?: string
  offset?: number
}

export type VerifyProgressEvents =
  | ProgressEvent<'store:verify:progress', { checked: number }>
  | ProgressEvent<'store:verify:bad', BadEntry>

export interface VerifyResult {
  /** Blocks and file chunks hashed. */
  checked: number
  bad: BadEntry[]
}

/** A chunk of a local file, for `indexFile`. */
export interface IndexedChunk {
  cid: CID
  offset: number
  length: number
}

/** What the index records of a file beside its path: `fs.lstat(path, { bigint: true })` (or an fstat of the open file) has these. */
export interface FileStamp {
  size: bigint
  mtimeNs: bigint
  ino: bigint
  dev: bigint
}

/** A file for `indexFiles`: what `indexFile` takes. */
export interface FileToIndex {
  path: string
  chunks: IndexedChunk[]
  /**
   * The regular file's stamp as the caller took it (apply: the fstat of the
   * temp file it wrote, renamed to `path` since, which keeps inode and
   * mtime): recorded as given, with no lstat of `path`, which could see a
   * file put there after the rename. A stamp that is not the file's only
   * makes it look changed (its chunks are not served until a rescan).
   */
  stat?: FileStamp
}

/** A file `indexFiles` left out, and why. */
export interface FileNotIndexed {
  path: string
  error: Error
}

/** What `chunkFile` found: the file's chunks (now indexed) and its stat after they were read. */
export interface ChunkedFile {
  chunks: IndexedChunk[]
  /** `mtimeMs` as `fs.lstat` reports it (fractional milliseconds): compare it with a stat taken before the call. */
  stat: { size: number, mtimeMs: number, ino: number }
}

/**
 * Chunks and blocks by CID: raw chunks of local files (referenced in place,
 * D6) and a block store for blocks that live in no local file. Every byte
 * returned by `get` has just been hashed and matched its CID.
 */
export interface ChunkStore {
  /** Is a valid copy of `cid` here? For a file chunk the file must be unchanged since it was indexed. */
  has(cid: CID, options?: AbortOptions): Promise<boolean>
  /**
   * `has` of every CID, in order, with the same checks, for a long list (a
   * pull plan's chunks): one lookup in the block store and one ordered pass
   * over the file index per batch of CIDs, and each file compared with its
   * record once, not once per chunk.
   */
  hasMany(cids: readonly CID[], options?: AbortOptions): Promise<boolean[]>
  /** The block's bytes, hashed again; `BlockNotFoundError` (code ERR_NOT_FOUND) when there is no valid copy. */
  get(cid: CID, options?: AbortOptions): Promise<Uint8Array>
  /** Stores a block after checking its hash (`IntegrityError` on mismatch: nothing is stored). */
  put(cid: CID, bytes: Uint8Array, options?: AbortOptions): Promise<void>
  /** Indexes a file or a folder in place and returns its UnixFS root. */
  addPath(path: string, options?: AddOptions): Promise<CID>
  /**
   * Records the chunks of a file written from blocks that were already
   * verified (a fetch): no read, no re-chunking. `chunks` are raw chunks in
   * file order, not overlapping, within the file's size (DAG nodes with inline
   * data may leave gaps). The file's size, mtime and inode are taken now.
   */
  indexFile(path: string, chunks: IndexedChunk[], options?: AbortOptions): Promise<void>
  /**
   * `indexFile` of many files in few index writes: files whose entries fit
   * together (`MAX_INDEX_BATCH_CHUNKS`, at most `MAX_INDEX_FILES_BATCH`
   * files) are recorded in one atomic write. A file `indexFile` would refuse
   * (missing, not a regular file, a bad chunk list) or given twice is left
   * out and returned with its error; the others are still recorded. Rejects
   * when a write fails: none of that write's files is recorded, and none
   * after it is tried.
   */
  indexFiles(files: readonly FileToIndex[], options?: AbortOptions): Promise<FileNotIndexed[]>
  /**
   * Cuts, hashes and indexes in place (D6) the regular file at the absolute
   * `path` (a symlink is refused, never followed): `addPath` for one file
   * without a UnixFS node, as a share scan needs. Small files are hashed on
   * the calling thread, so many calls may run at once; big ones take turns
   * on one streaming reader. `FileChangedError` when the file's size moved
   * while it was read (nothing is indexed); a change that keeps the size
   * shows in the returned mtime: compare it with a stat taken before.
   */
  chunkFile(path: string, options?: AbortOptions): Promise<ChunkedFile>
  /** Recursive pin: GC keeps every stored block reachable from `cid`. Pin first, then fetch. */
  pin(cid: CID, options?: AbortOptions): Promise<void>
  unpin(cid: CID, options?: AbortOptions): Promise<void>
  isPinned(cid: CID, options?: AbortOptions): Promise<boolean>
  pins(options?: AbortOptions): AsyncGenerator<CID>
  /** Removes blocks no pin reaches. File chunks are never touched. */
  gc(options?: AbortOptions & ProgressOptions<GcProgressEvents>): Promise<GcResult>
  stat(options?: AbortOptions): Promise<StoreStat>
  /** Re-hashes every block and file chunk; bad ones are dropped and reported. */
  verify(options?: AbortOptions & ProgressOptions<VerifyProgressEvents>): Promise<VerifyResult>
  close(): Promise<void>
}

/** The narrow shape block consumers (the exchange) take. */
export type Blocks = Pick<ChunkStore, 'has' | 'get' | 'put'>
