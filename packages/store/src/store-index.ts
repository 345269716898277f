/**
 * What a chunk store keeps: the block store, the file index (chunk → places in
 * local files) and the pins. Two implementations: MemoryIndex (maps) and
 * LevelIndex (LevelDB); the store's logic lives once, in ChunkStore, over either.
 */

/** A local file as it was when it was indexed. */
export interface FileRecord {
  /** Absolute path. */
  path: string
  size: number
  /** mtime in nanoseconds, inode and device (decimal strings: they can exceed 2^53). */
  mtimeNs: string
  ino: string
  dev: string
}

/** A chunk of an indexed file. `key` is the chunk's block key. */
export interface FileChunkRef {
  key: string
  offset: number
  length: number
}

/** Part of a file's chunk list: chunks starting at `from` or later, at most `limit` of them. */
export interface ChunkRange {
  from?: number
  limit?: number
}

/** A file with its chunks, for `setFiles`. */
export interface IndexedFileEntry {
  file: FileRecord
  chunks: FileChunkRef[]
}

/** A place in a local file holding a chunk. */
export interface FileLocation {
  path: string
  offset: number
  length: number
}

export interface StoreIndex {
  getBlock(key: string): Promise<Uint8Array | undefined>
  hasBlock(key: string): Promise<boolean>
  /** `hasBlock` of every key, in order, in one lookup (no block is read). */
  hasBlocks(keys: readonly string[]): Promise<boolean[]>
  putBlock(key: string, bytes: Uint8Array): Promise<void>
  deleteBlock(key: string): Promise<void>
  blocks(): AsyncIterable<{ key: string, bytes: Uint8Array }>

  /** Records `file` and its chunks, replacing what was recorded for that path. */
  setFile(file: FileRecord, chunks: FileChunkRef[]): Promise<void>
  /**
   * `setFile` of each file (distinct paths): files whose old and new entries
   * fit in `MAX_INDEX_BATCH_CHUNKS` chunks together are written in one atomic
   * write, the rest in as few as that bound allows; a file is never left half
   * written, and a failed write records none of its files.
   */
  setFiles(files: readonly IndexedFileEntry[]): Promise<void>
  getFile(path: string): Promise<FileRecord | undefined>
  /** Forgets a file and its chunks (it changed: it needs a rescan). */
  deleteFile(path: string): Promise<void>
  files(): AsyncIterable<FileRecord>
  /** A file's chunks in offset order; `range` starts at an offset and stops after `limit` chunks. */
  fileChunks(path: string, range?: ChunkRange): AsyncIterable<FileChunkRef>
  /** Where the chunk with block key `key` lives in local files: at most `MAX_LOCATIONS_PER_LOOKUP` places (forget a changed file to see more). */
  locations(key: string): Promise<FileLocation[]>
  /** `locations` of every key, in order, found in one ordered pass over the index (a sparse index is read in few steps). */
  locationsOf(keys: readonly string[]): Promise<FileLocation[][]>

  /** Pins are recursive; keyed by the root's CID string (CIDv1). */
  addPin(cid: string): Promise<void>
  deletePin(cid: string): Promise<void>
  hasPin(cid: string): Promise<boolean>
  pins(): AsyncIterable<string>

  /** Gives back memory held for recent writes (an idle device); nothing is lost. */
  release?(): Promise<void>
  close(): Promise<void>
}
