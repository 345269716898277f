import { logger } from '@libp2p/logger'
import { FILE_READ_AHEAD_CHUNKS, INDEXED_CHUNKS_CACHED, MAX_CACHED_LOCATIONS, MAX_OPEN_FILES, OPEN_FILE_IDLE_MS, OPEN_FILE_RECHECK_MS } from './constants.js'
import { FileChangedError } from './errors.js'
import { openIndexedPath, readRange, sameFile } from './file-source.js'
import { LocationCache } from './location-cache.js'
import type { FileChunkRef, FileLocation, FileRecord, StoreIndex } from './store-index.js'
import type { FileHandle } from 'node:fs/promises'

const log = logger('homecloud:store:reads')

/** The index has no record of the file (any more): nothing to forget. */
export const NOT_INDEXED = Symbol('not indexed')
type NotIndexed = typeof NOT_INDEXED

interface OpenFile {
  record: FileRecord
  handle: FileHandle
  users: number
  usedAt: number
  /** When an fstat last matched the record (never: the first read checks). */
  checkedAt: number
  /** Its index entry changed: closed once the last user is done. */
  dropped: boolean
}

interface Change {
  /** Changes of the path's index entry running now. */
  active: number
  /** Another change overlapped: the entry's final state is not known here. */
  overlapped: boolean
}

/** What a change writes for a file: its record and chunks. */
interface IndexedEntry {
  record: FileRecord
  chunks: readonly FileChunkRef[]
}

interface ReadAhead {
  /** Locations are loaded for chunks starting before this offset. */
  end: number
  /** A read at or past this offset loads the next batch. */
  refillAt: number
  loading: boolean
}

export interface FileReadsInit {
  maxOpenFiles?: number
  idleMs?: number
  recheckMs?: number
  readAheadChunks?: number
  /** Most chunk places cached (`MAX_CACHED_LOCATIONS`). */
  maxLocations?: number
  /** Chunks of a file just indexed whose places are cached (`INDEXED_CHUNKS_CACHED`). */
  indexedChunks?: number
}

/**
 * Reads of file-backed chunks for serving (D6), made cheap for a peer that
 * streams a big file: a few indexed files stay open (LRU, closed when idle)
 * with the index record they were checked against, and the index's chunk list
 * of a file being read is loaded ahead in file order. The places (and record)
 * of the first chunks of a file just indexed are kept too: a peer asks for a
 * changed file next, and a small file is one chunk. A chunk read is then a
 * pread (and an fstat compared with the record every `recheckMs`), instead of
 * an index scan, a lookup and open, fstat, read, close. The caller hashes every
 * read, and every change to the file index goes through `change` (see
 * `invalidatingIndex`), which drops what is cached about that file.
 */
export class FileReads {
  readonly #index: StoreIndex
  readonly #maxOpenFiles: number
  readonly #idleMs: number
  readonly #recheckMs: number
  readonly #readAheadChunks: number
  readonly #indexedChunks: number
  /** Open files, least recently used first. */
  readonly #files = new Map<string, OpenFile>()
  readonly #opening = new Map<string, Promise<FileChangedError | NotIndexed | undefined>>()
  /** Block key → a place of that chunk: read ahead, or a file just indexed. */
  readonly #locations: LocationCache
  readonly #ahead = new Map<string, ReadAhead>()
  /** Paths whose index entry is being changed now. */
  readonly #changes = new Map<string, Change>()
  #generation = 0
  #timer: ReturnType<typeof setInterval> | undefined

  constructor (index: StoreIndex, init: FileReadsInit = {}) {
    this.#index = index
    this.#maxOpenFiles = init.maxOpenFiles ?? MAX_OPEN_FILES
    this.#idleMs = init.idleMs ?? OPEN_FILE_IDLE_MS
    this.#recheckMs = init.recheckMs ?? OPEN_FILE_RECHECK_MS
    this.#readAheadChunks = init.readAheadChunks ?? FILE_READ_AHEAD_CHUNKS
    this.#locations = new LocationCache(init.maxLocations ?? MAX_CACHED_LOCATIONS)
    this.#indexedChunks = init.indexedChunks ?? INDEXED_CHUNKS_CACHED
  }

  /** Changes whenever the file index may have changed: a failure seen across a change proves nothing. */
  get generation (): number {
    return this.#generation
  }

  /** Open files now (for tests). */
  get openFiles (): number {
    return this.#files.size
  }

  /** Chunk places cached now (for tests). */
  get cachedLocations (): number {
    return this.#locations.size
  }

  /**
   * Drops everything cached about `path` (or every file). Any change to a
   * file's index entry must be bracketed by this (`change` does it), so
   * nothing cached outlives the entry it came from.
   */
  invalidate (path?: string): void {
    this.#generation++
    if (path === undefined) {
      this.#locations.clear()
      this.#ahead.clear()
    } else {
      this.#locations.dropPath(path)
      this.#ahead.delete(path)
    }
    for (const [p, file] of this.#files) {
      if (path === undefined || p === path) this.#drop(p, file)
    }
  }

  /**
   * Runs `apply`, a change of the index entry of `path`, dropping what is
   * cached about the file before and after. `indexed`: the record and chunks
   * the change writes; when it succeeds and no other change of the path
   * overlapped it, they are what the index holds, so the first chunks' places
   * and the record are cached.
   */
  async change (path: string, apply: () => Promise<void>, indexed?: IndexedEntry): Promise<void> {
    await this.changeAll([{ path, ...(indexed !== undefined ? { indexed } : {}) }], apply)
  }

  /** `change` of several files (distinct paths) at once: `apply` changes all their entries. */
  async changeAll (files: ReadonlyArray<{ path: string, indexed?: IndexedEntry }>, apply: () => Promise<void>): Promise<void> {
    const changes = files.map(({ path }) => {
      let change = this.#changes.get(path)
      if (change === undefined) {
        change = { active: 0, overlapped: false }
        this.#changes.set(path, change)
      } else {
        change.overlapped = true
      }
      change.active++
      this.invalidate(path)
      return change
    })
    let applied = false
    try {
      await apply()
      applied = true
    } finally {
      files.forEach(({ path, indexed }, i) => {
        const change = changes[i]
        this.invalidate(path)
        change.active--
        if (change.active === 0) this.#changes.delete(path)
        if (applied && !change.overlapped && indexed !== undefined) this.#cacheIndexed(indexed.record, indexed.chunks)
      })
    }
  }

  #cacheIndexed (record: FileRecord, chunks: readonly FileChunkRef[]): void {
    const count = Math.min(chunks.length, this.#indexedChunks)
    for (let i = 0; i < count; i++) {
      const c = chunks[i]
      this.#locations.set(c.key, { path: record.path, offset: c.offset, length: c.length })
    }
    this.#locations.setRecord(record)
  }

  /** A cached place of the chunk with block key `key`, if any. */
  location (key: string): FileLocation | undefined {
    return this.#locations.get(key)
  }

  /** The index record of `path` as cached (the file is open or was just indexed), if it is. */
  record (path: string): FileRecord | undefined {
    const file = this.#files.get(path)
    return file !== undefined && !file.dropped ? file.record : this.#locations.record(path)
  }

  /**
   * The bytes at `location` if its file is unchanged since it was indexed (not
   * hashed here). The open file is compared with its record (fstat) on its
   * first read and again when the last check is older than `recheckMs`: a
   * change is noticed within that time even where it leaves the chunks read
   * meanwhile intact (those hash right, so serving them is correct).
   */
  async read (location: FileLocation): Promise<Uint8Array | FileChangedError | NotIndexed> {
    const file = await this.#acquire(location.path)
    if (file instanceof FileChangedError || file === NOT_INDEXED) return file
    try {
      const now = Date.now()
      if (now - file.checkedAt < this.#recheckMs) {
        return await readRange(file.handle, location.path, location.offset, location.length)
      }
      // both on the thread pool at once: one round trip, and the bytes count only if the file is unchanged
      const [st, bytes] = await Promise.allSettled([
        file.handle.stat({ bigint: true }),
        readRange(file.handle, location.path, location.offset, location.length)
      ])
      if (st.status === 'rejected') throw st.reason
      // first: a read that failed because the path is something else now (a directory) means the file changed
      if (!sameFile(file.record, st.value)) return new FileChangedError(location.path)
      if (bytes.status === 'rejected') throw bytes.reason
      file.checkedAt = now
      return bytes.value
    } finally {
      this.#release(location.path, file)
    }
  }

  /**
   * A read at `location` hashed right: keep the next chunks of its file at
   * hand. `hit`: the location came from `location()`, so reading goes on in
   * order; otherwise the reader is somewhere new and loading starts there.
   */
  readAhead (location: FileLocation, hit: boolean): void {
    const { path, offset } = location
    const size = this.record(path)?.size
    // the file's last chunk: nothing after it to load (a small file is one chunk)
    if (size !== undefined && offset + location.length >= size) return
    let ahead = this.#ahead.get(path)
    if (ahead?.loading === true || (hit && ahead !== undefined && offset < ahead.refillAt)) return
    if (!hit || ahead === undefined) {
      ahead = { end: offset, refillAt: offset, loading: false }
      this.#ahead.delete(path)
      this.#ahead.set(path, ahead)
      for (const p of this.#ahead.keys()) {
        if (this.#ahead.size <= this.#maxOpenFiles) break
        this.#ahead.delete(p)
      }
    }
    ahead.loading = true
    const state = ahead
    this.#loadAhead(path, Math.max(offset, ahead.end), state)
      .catch((err: unknown) => { log.error('reading ahead in the index of %s failed - %e', path, err) })
      .finally(() => { state.loading = false })
  }

  /** `state` is dropped when the file's index entry changes (`invalidate`): what was read then is stale. */
  async #loadAhead (path: string, from: number, state: ReadAhead): Promise<void> {
    const batch: FileLocation[] = []
    for await (const chunk of this.#index.fileChunks(path, { from, limit: this.#readAheadChunks })) {
      if (this.#ahead.get(path) !== state) return
      const location = { path, offset: chunk.offset, length: chunk.length }
      batch.push(location)
      this.#locations.set(chunk.key, location)
    }
    if (this.#ahead.get(path) !== state) return
    if (batch.length === 0) {
      // the end of the file: nothing more to load
      state.refillAt = Number.POSITIVE_INFINITY
      return
    }
    state.end = batch[batch.length - 1].offset + 1
    state.refillAt = batch[Math.floor(batch.length / 2)].offset
  }

  async #acquire (path: string): Promise<OpenFile | FileChangedError | NotIndexed> {
    for (;;) {
      const file = this.#files.get(path)
      if (file !== undefined && !file.dropped) {
        file.users++
        // most recently used last
        this.#files.delete(path)
        this.#files.set(path, file)
        return file
      }
      let pending = this.#opening.get(path)
      if (pending === undefined) {
        pending = this.#open(path).finally(() => { this.#opening.delete(path) })
        this.#opening.set(path, pending)
      }
      const failed = await pending
      if (failed !== undefined) return failed
    }
  }

  async #open (path: string): Promise<FileChangedError | NotIndexed | undefined> {
    const generation = this.#generation
    const record = this.#locations.record(path) ?? await this.#index.getFile(path)
    if (record == null) return NOT_INDEXED
    // compared with the record by the first read, at the same time as it reads (one round trip less a file)
    const handle = await openIndexedPath(path)
    if (handle instanceof FileChangedError) return handle
    if (generation !== this.#generation || this.#files.has(path)) {
      // the index changed meanwhile (the record may be old): the caller's loop opens it again
      await handle.close()
      return undefined
    }
    const now = Date.now()
    this.#files.set(path, { record, handle, users: 0, usedAt: now, checkedAt: Number.NEGATIVE_INFINITY, dropped: false })
    this.#trim()
    this.#timer ??= setInterval(() => { this.#closeIdle() }, this.#idleMs).unref()
    return undefined
  }

  #release (path: string, file: OpenFile): void {
    file.users--
    file.usedAt = Date.now()
    if (file.dropped) this.#drop(path, file)
    this.#trim()
  }

  /** Closes the least recently used idle files beyond the cap. */
  #trim (): void {
    for (const [path, file] of this.#files) {
      if (this.#files.size <= this.#maxOpenFiles) return
      if (file.users === 0) this.#drop(path, file)
    }
  }

  #closeIdle (): void {
    const now = Date.now()
    for (const [path, file] of this.#files) {
      if (file.users === 0 && now - file.usedAt >= this.#idleMs) this.#drop(path, file)
    }
    if (this.#files.size === 0) {
      clearInterval(this.#timer)
      this.#timer = undefined
    }
  }

  /** Forgets `file`; closes it now if nobody reads from it, else when its last reader is done. */
  #drop (path: string, file: OpenFile): void {
    file.dropped = true
    if (this.#files.get(path) === file) this.#files.delete(path)
    if (file.users > 0) return
    file.handle.close().catch((err: unknown) => { log.error('closing %s failed - %e', path, err) })
  }

  /** Closes every file (files being read close when their read ends). */
  close (): void {
    this.invalidate()
    clearInterval(this.#timer)
    this.#timer = undefined
  }
}

/**
 * `index` with every change to its file entries bracketed by
 * `reads.invalidate`, so no cached record or location outlives the entry it
 * came from (whoever changes the index: addPath, indexFile, a rescan).
 */
export function invalidatingIndex (index: StoreIndex, reads: FileReads): StoreIndex {
  return {
    getBlock: async key => index.getBlock(key),
    hasBlock: async key => index.hasBlock(key),
    hasBlocks: async keys => index.hasBlocks(keys),
    putBlock: async (key, bytes) => { await index.putBlock(key, bytes) },
    deleteBlock: async key => { await index.deleteBlock(key) },
    blocks: () => index.blocks(),
    setFile: async (file, chunks) => { await reads.change(file.path, async () => { await index.setFile(file, chunks) }, { record: { ...file }, chunks }) },
    setFiles: async (files) => {
      await reads.changeAll(files.map(({ file, chunks }) => ({ path: file.path, indexed: { record: { ...file }, chunks } })), async () => { await index.setFiles(files) })
    },
    getFile: async path => index.getFile(path),
    deleteFile: async path => { await reads.change(path, async () => { await index.deleteFile(path) }) },
    files: () => index.files(),
    fileChunks: (path, range) => index.fileChunks(path, range),
    locations: async key => index.locations(key),
    locationsOf: async keys => index.locationsOf(keys),
    addPin: async cid => { await index.addPin(cid) },
    deletePin: async cid => { await index.deletePin(cid) },
    hasPin: async cid => index.hasPin(cid),
    pins: () => index.pins(),
    close: async () => { await index.close() }
  }
}
