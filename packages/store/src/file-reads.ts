import { logger } from '@libp2p/logger'
import { FILE_READ_AHEAD_CHUNKS, MAX_OPEN_FILES, MAX_READ_AHEAD_LOCATIONS, OPEN_FILE_IDLE_MS, OPEN_FILE_RECHECK_MS } from './constants.js'
import { FileChangedError } from './errors.js'
import { openIndexedFile, readRange, sameFile } from './file-source.js'
import type { FileLocation, FileRecord, StoreIndex } from './store-index.js'
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
  /** When an fstat last matched the record. */
  checkedAt: number
  /** Its index entry changed: closed once the last user is done. */
  dropped: boolean
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
  maxLocations?: number
}

/**
 * Reads of file-backed chunks for serving (D6), made cheap for a peer that
 * streams a big file: a few indexed files stay open (LRU, closed when idle)
 * with the index record they were checked against, and the index's chunk list
 * of a file being read is loaded ahead in file order. A chunk read is then a
 * pread (and an fstat compared with the record every `recheckMs`), instead of
 * three index lookups and open, fstat, read, close. The caller hashes every
 * read (a stale cache can only cost a miss, never wrong bytes) and calls
 * `invalidate` around every change to the file index.
 */
export class FileReads {
  readonly #index: StoreIndex
  readonly #maxOpenFiles: number
  readonly #idleMs: number
  readonly #recheckMs: number
  readonly #readAheadChunks: number
  readonly #maxLocations: number
  /** Open files, least recently used first. */
  readonly #files = new Map<string, OpenFile>()
  readonly #opening = new Map<string, Promise<FileChangedError | NotIndexed | undefined>>()
  /** Block key → a place of that chunk in a file being read, loaded ahead from the index. */
  readonly #locations = new Map<string, FileLocation>()
  readonly #ahead = new Map<string, ReadAhead>()
  #generation = 0
  #timer: ReturnType<typeof setInterval> | undefined

  constructor (index: StoreIndex, init: FileReadsInit = {}) {
    this.#index = index
    this.#maxOpenFiles = init.maxOpenFiles ?? MAX_OPEN_FILES
    this.#idleMs = init.idleMs ?? OPEN_FILE_IDLE_MS
    this.#recheckMs = init.recheckMs ?? OPEN_FILE_RECHECK_MS
    this.#readAheadChunks = init.readAheadChunks ?? FILE_READ_AHEAD_CHUNKS
    this.#maxLocations = init.maxLocations ?? MAX_READ_AHEAD_LOCATIONS
  }

  /** Changes whenever the file index may have changed: a failure seen across a change proves nothing. */
  get generation (): number {
    return this.#generation
  }

  /** Open files now (for tests). */
  get openFiles (): number {
    return this.#files.size
  }

  /** Drops everything cached about `path` (or every file); call before and after changing the file index. */
  invalidate (path?: string): void {
    this.#generation++
    this.#locations.clear()
    this.#ahead.clear()
    for (const [p, file] of this.#files) {
      if (path === undefined || p === path) this.#drop(p, file)
    }
  }

  /** A place of the chunk with block key `key` loaded ahead, if any. */
  location (key: string): FileLocation | undefined {
    return this.#locations.get(key)
  }

  /**
   * The bytes at `location` if its file is unchanged since it was indexed (not
   * hashed here). The open file is compared with its record again (fstat) when
   * the last check is older than `recheckMs`: a change is noticed within that
   * time even where it leaves the chunks read meanwhile intact (those hash
   * right, so serving them is correct).
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
      if (bytes.status === 'rejected') throw bytes.reason
      if (!sameFile(file.record, st.value)) return new FileChangedError(location.path)
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
    const generation = this.#generation
    this.#loadAhead(path, Math.max(offset, ahead.end), generation, state)
      .catch((err: unknown) => { log.error('reading ahead in the index of %s failed - %e', path, err) })
      .finally(() => { state.loading = false })
  }

  async #loadAhead (path: string, from: number, generation: number, state: ReadAhead): Promise<void> {
    const batch: FileLocation[] = []
    for await (const chunk of this.#index.fileChunks(path, { from, limit: this.#readAheadChunks })) {
      if (generation !== this.#generation) return
      const location = { path, offset: chunk.offset, length: chunk.length }
      batch.push(location)
      this.#locations.delete(chunk.key)
      this.#locations.set(chunk.key, location)
    }
    if (generation !== this.#generation) return
    for (const key of this.#locations.keys()) {
      if (this.#locations.size <= this.#maxLocations) break
      this.#locations.delete(key)
    }
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
    const record = await this.#index.getFile(path)
    if (record == null) return NOT_INDEXED
    const handle = await openIndexedFile(record)
    if (handle instanceof FileChangedError) return handle
    if (generation !== this.#generation || this.#files.has(path)) {
      // the index changed meanwhile (the record may be old): the caller's loop opens it again
      await handle.close()
      return undefined
    }
    const now = Date.now()
    this.#files.set(path, { record, handle, users: 0, usedAt: now, checkedAt: now, dropped: false })
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
  const changing = async (path: string, change: () => Promise<void>): Promise<void> => {
    reads.invalidate(path)
    try {
      await change()
    } finally {
      reads.invalidate(path)
    }
  }
  return {
    getBlock: async key => index.getBlock(key),
    hasBlock: async key => index.hasBlock(key),
    putBlock: async (key, bytes) => { await index.putBlock(key, bytes) },
    deleteBlock: async key => { await index.deleteBlock(key) },
    blocks: () => index.blocks(),
    setFile: async (file, chunks) => { await changing(file.path, async () => { await index.setFile(file, chunks) }) },
    getFile: async path => index.getFile(path),
    deleteFile: async path => { await changing(path, async () => { await index.deleteFile(path) }) },
    files: () => index.files(),
    fileChunks: (path, range) => index.fileChunks(path, range),
    locations: async key => index.locations(key),
    addPin: async cid => { await index.addPin(cid) },
    deletePin: async cid => { await index.deletePin(cid) },
    hasPin: async cid => index.hasPin(cid),
    pins: () => index.pins(),
    close: async () => { await index.close() }
  }
}
