/**
 * @packageDocumentation
 *
 * Chunks and blocks on disk (D5, D6): content-defined chunking (FastCDC /
 * Gear), CIDv1 raw sha2-256 chunks, UnixFS trees built over them, an index in
 * LevelDB mapping each chunk to its place in a local file (never copied), a
 * block store for blocks that live in no local file, pins and GC. Every byte
 * `get` returns was just hashed against its CID.
 *
 * @example
 *
 * ```ts
 * import { createLevelStore } from '@homecloud/store'
 *
 * const store = await createLevelStore({ path: '/home/me/.homecloud/blocks' })
 * const root = await store.addPath('/home/me/Photos', {
 *   onProgress: (evt) => { if (evt.type === 'store:add:progress') showBytes(evt.detail.bytes) }
 * })
 * const bytes = await store.get(root)
 * await store.close()
 * ```
 */
import { IndexedChunkStore } from './chunk-store.js'
import { LevelIndex } from './level-index.js'
import { MemoryIndex } from './memory-index.js'
import type { ChunkStore } from './api.js'

export * from './api.js'
export * from './errors.js'
export * from './constants.js'
export { ChunkReader, type ChunkReaderInit, type FileChunk } from './chunker.js'
export { GearCutter, DEFAULT_CHUNKING, type ChunkingParams } from './gear.js'
export { chunkCid } from './hash.js'
export { blockLinks } from './links.js'
export { IndexedChunkStore } from './chunk-store.js'
export { eachLimit } from './each-limit.js'
export { statMs } from './file-source.js'
export { MemoryIndex } from './memory-index.js'
export { LevelIndex, releaseWriteBuffer } from './level-index.js'
export type { StoreIndex, FileRecord, FileChunkRef, FileLocation, ChunkRange, IndexedFileEntry } from './store-index.js'

/** A store kept in memory (its file index still points at real files): tests and doubles. */
export function createMemoryStore (): ChunkStore {
  return new IndexedChunkStore(new MemoryIndex())
}

export interface LevelStoreInit {
  /** Directory of the LevelDB database (created if missing). */
  path: string
}

/** A store in LevelDB at `init.path`. */
export async function createLevelStore (init: LevelStoreInit): Promise<ChunkStore> {
  return new IndexedChunkStore(await LevelIndex.open(init.path))
}
