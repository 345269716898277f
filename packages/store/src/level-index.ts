import { Level } from 'level'
import { LOCATION_SCAN_BYTES, LOCATION_SCAN_STEP, MAX_INDEX_BATCH_CHUNKS, MAX_LOCATIONS_PER_LOOKUP } from './constants.js'
import { InvalidParametersError } from './errors.js'
import { byteOrder, scanPrefixes, type PrefixScanInit } from './prefix-scan.js'
import type { ChunkRange, FileChunkRef, FileLocation, FileRecord, IndexedFileEntry, StoreIndex } from './store-index.js'

type Batch = ReturnType<Level<string, string>['batch']>

function sublevels (db: Level<string, string>) {
  return {
    blocks: db.sublevel<string, Uint8Array>('blocks', { valueEncoding: 'view' }),
    files: db.sublevel<string, string>('files', {}),
    chunks: db.sublevel<string, string>('chunks', {}),
    locations: db.sublevel<string, string>('locations', {}),
    pins: db.sublevel<string, string>('pins', {})
  }
}

/** Keys sort as strings: zero-padded offsets keep a file's chunks in order. */
function offsetKey (offset: number): string {
  return offset.toString().padStart(16, '0')
}

/** `prefix\0…` range of a sublevel. */
function under (prefix: string): { gt: string, lt: string } {
  return { gt: `${prefix}\0`, lt: `${prefix}\x01` }
}

/** A `locations` entry (`key\0path\0offset` → length) as a place. */
function toLocation (key: string, entry: string, length: string): FileLocation {
  const rest = entry.slice(key.length + 1)
  const sep = rest.lastIndexOf('\0')
  return { path: rest.slice(0, sep), offset: Number(rest.slice(sep + 1)), length: Number(length) }
}

/** A `chunks` entry (`path\0offset` → `key\0length`) as a chunk. */
function toChunkRef (path: string, entry: string, value: string): FileChunkRef {
  const [key, length] = value.split('\0')
  return { key, offset: Number(entry.slice(path.length + 1)), length: Number(length) }
}

/** A chunk entry to write (`put`) or to remove. */
interface ChunkChange {
  put: boolean
  chunk: FileChunkRef
}

/**
 * The entries that turn a file's `old` chunks into `chunks`, both in offset
 * order: a place whose offset, key and length stay is left out. At an offset
 * whose chunk changed, the removal comes before the write (in one batch or
 * in batches written in order, the write wins).
 */
async function * changedChunks (old: AsyncIterable<FileChunkRef> | Iterable<FileChunkRef>, chunks: readonly FileChunkRef[]): AsyncGenerator<ChunkChange> {
  const sorted = chunks.every((c, i) => i === 0 || chunks[i - 1].offset <= c.offset) ? chunks : [...chunks].sort((a, b) => a.offset - b.offset)
  let i = 0
  for await (const o of old) {
    while (i < sorted.length && sorted[i].offset < o.offset) yield { put: true, chunk: sorted[i++] }
    const c = sorted[i]
    if (c !== undefined && c.offset === o.offset && c.key === o.key && c.length === o.length) {
      i++
      continue
    }
    yield { put: false, chunk: o }
  }
  while (i < sorted.length) yield { put: true, chunk: sorted[i++] }
}

/**
 * Writes an open LevelDB's in-memory write buffer to disk and frees it (an
 * idle device; nothing is lost): a compaction of a range past every key
 * compacts nothing else, but LevelDB always flushes the buffer first.
 */
export async function releaseWriteBuffer (db: { status: string }): Promise<void> {
  // on Node, `level` is classic-level, which has compactRange (the browser's level type does not)
  const level = db as unknown as { compactRange(start: string, end: string): Promise<void> }
  if (db.status === 'open') await level.compactRange('\uffff\uffff', '\uffff\uffff')
}

/**
 * A StoreIndex in LevelDB. Sublevels: `blocks` (key → bytes), `files`
 * (path → FileRecord), `chunks` (path, offset → key, length), `locations`
 * (key, path, offset → length), `pins` (CID → ''). A file's entries change in
 * one atomic batch.
 */
export class LevelIndex implements StoreIndex {
  readonly #db: Level<string, string>
  readonly #sub: ReturnType<typeof sublevels>

  private constructor (db: Level<string, string>) {
    this.#db = db
    this.#sub = sublevels(db)
  }

  /** Opens (creating if needed) the database in directory `path`. */
  static async open (path: string): Promise<LevelIndex> {
    const db = new Level<string, string>(path)
    await db.open()
    return new LevelIndex(db)
  }

  async getBlock (key: string): Promise<Uint8Array | undefined> {
    return this.#sub.blocks.get(key)
  }

  async hasBlock (key: string): Promise<boolean> {
    return this.#sub.blocks.has(key)
  }

  async hasBlocks (keys: readonly string[]): Promise<boolean[]> {
    return keys.length === 0 ? [] : this.#sub.blocks.hasMany([...keys])
  }

  async putBlock (key: string, bytes: Uint8Array): Promise<void> {
    await this.#sub.blocks.put(key, bytes)
  }

  async deleteBlock (key: string): Promise<void> {
    await this.#sub.blocks.del(key)
  }

  async * blocks (): AsyncGenerator<{ key: string, bytes: Uint8Array }> {
    for await (const [key, bytes] of this.#sub.blocks.iterator()) {
      yield { key, bytes }
    }
  }

  /**
   * Only the places that differ are written: an old entry whose offset, key
   * and length the new list holds too stays as it is (a byte flipped in a
   * 1 GiB file rewrites ~2 of ~3,400 chunks, not all of them). One atomic
   * batch when the changes fit in `MAX_INDEX_BATCH_CHUNKS`; otherwise bounded
   * batches (one batch of a big file's entries costs JS memory in proportion):
   * the record is removed first and written last, so a reader never finds a
   * record whose chunks are half written. A crash in between leaves entries
   * no record points to: they are never served, and the next setFile or
   * deleteFile of the path compares with (or removes) what is there.
   */
  async setFile (file: FileRecord, chunks: FileChunkRef[]): Promise<void> {
    const { path, ...rest } = file
    const record = JSON.stringify(rest)
    let batch = this.#db.batch()
    let size = 0
    let split = false
    try {
      // the iterator reads a snapshot taken when it opens: batches written meanwhile do not show in it
      for await (const change of changedChunks(this.fileChunks(path), chunks)) {
        if (size === MAX_INDEX_BATCH_CHUNKS) {
          if (!split) await this.#sub.files.del(path)
          split = true
          await batch.write()
          batch = this.#db.batch()
          size = 0
        }
        this.#changeOps(batch, path, change)
        size++
      }
      if (!split) batch.put(path, record, { sublevel: this.#sub.files })
      await batch.write()
    } finally {
      // a batch not written is discarded (closing a written one is a no-op)
      await batch.close()
    }
    if (split) await this.#sub.files.put(path, record)
  }

  /**
   * The old entries of every path are read in one ordered pass (entries a
   * crash left with no record go too); as in `setFile`, only the entries that
   * differ are written. Files go into batches of at most
   * `MAX_INDEX_BATCH_CHUNKS` changed entries (plus their records), each one
   * atomic write. A file whose changes do not fit in one batch alone, or whose
   * old entries the pass left unread, is written by `setFile` after the rest.
   */
  async setFiles (files: readonly IndexedFileEntry[]): Promise<void> {
    if (files.length === 0) return
    const sorted = [...files].sort((a, b) => byteOrder(a.file.path, b.file.path))
    const paths = sorted.map(f => f.file.path)
    if (new Set(paths).size !== paths.length) throw new InvalidParametersError('setFiles was given a path twice')
    const old = await this.#scan(this.#sub.chunks, paths, { step: LOCATION_SCAN_STEP, cap: MAX_INDEX_BATCH_CHUNKS + 1, budget: 2 * MAX_INDEX_BATCH_CHUNKS })
    const alone: IndexedFileEntry[] = []
    let batch = this.#db.batch()
    let size = 0
    try {
      for (const [i, { file, chunks }] of sorted.entries()) {
        const entries = old[i]
        // more entries than the pass keeps: the path's entries were not all read
        if (entries === undefined || entries.length > MAX_INDEX_BATCH_CHUNKS) {
          alone.push({ file, chunks })
          continue
        }
        const { path, ...rest } = file
        const changes: ChunkChange[] = []
        for await (const change of changedChunks(entries.map(([k, value]) => toChunkRef(path, k, value)), chunks)) changes.push(change)
        const cost = changes.length + 1
        if (cost > MAX_INDEX_BATCH_CHUNKS) {
          alone.push({ file, chunks })
          continue
        }
        if (size + cost > MAX_INDEX_BATCH_CHUNKS) {
          await batch.write()
          batch = this.#db.batch()
          size = 0
        }
        batch.put(path, JSON.stringify(rest), { sublevel: this.#sub.files })
        for (const change of changes) this.#changeOps(batch, path, change)
        size += cost
      }
      if (size > 0) await batch.write()
    } finally {
      // a batch not written (an op refused, a write failed) is discarded: nothing of it is recorded (closing a written one is a no-op)
      await batch.close()
    }
    for (const { file, chunks } of alone) await this.setFile(file, chunks)
  }

  #changeOps (batch: Batch, path: string, { put, chunk: c }: ChunkChange): void {
    if (!put) {
      this.#deleteChunkOps(batch, path, [c])
      return
    }
    batch.put(`${path}\0${offsetKey(c.offset)}`, `${c.key}\0${c.length}`, { sublevel: this.#sub.chunks })
    batch.put(`${c.key}\0${path}\0${c.offset}`, String(c.length), { sublevel: this.#sub.locations })
  }

  #deleteChunkOps (batch: Batch, path: string, chunks: FileChunkRef[]): void {
    for (const c of chunks) {
      batch.del(`${path}\0${offsetKey(c.offset)}`, { sublevel: this.#sub.chunks })
      batch.del(`${c.key}\0${path}\0${c.offset}`, { sublevel: this.#sub.locations })
    }
  }

  async getFile (path: string): Promise<FileRecord | undefined> {
    const value = await this.#sub.files.get(path)
    return value == null ? undefined : { path, ...JSON.parse(value) as Omit<FileRecord, 'path'> }
  }

  /** The record goes in the first batch (with all the chunk entries of a small file), the rest in bounded batches. */
  async deleteFile (path: string): Promise<void> {
    let first = true
    for (;;) {
      const chunks: FileChunkRef[] = []
      for await (const c of this.fileChunks(path, { limit: MAX_INDEX_BATCH_CHUNKS })) chunks.push(c)
      if (chunks.length === 0 && !first) return
      const batch = this.#db.batch()
      if (first) batch.del(path, { sublevel: this.#sub.files })
      this.#deleteChunkOps(batch, path, chunks)
      await batch.write()
      first = false
    }
  }

  async * files (): AsyncGenerator<FileRecord> {
    for await (const [path, value] of this.#sub.files.iterator()) {
      yield { path, ...JSON.parse(value) as Omit<FileRecord, 'path'> }
    }
  }

  async * fileChunks (path: string, range: ChunkRange = {}): AsyncGenerator<FileChunkRef> {
    const bounds = range.from === undefined ? under(path) : { gte: `${path}\0${offsetKey(range.from)}`, lt: `${path}\x01` }
    for await (const [k, value] of this.#sub.chunks.iterator({ ...bounds, limit: range.limit ?? -1 })) {
      yield toChunkRef(path, k, value)
    }
  }

  /**
   * One `nextv`: a for-await over the iterator costs a second round trip to
   * find the range's end. Its bytes cap is raised: the default (16 KiB) cut
   * a lookup of long paths short (~20 places of 700-byte paths).
   */
  async locations (key: string): Promise<FileLocation[]> {
    const range = { ...under(key), limit: MAX_LOCATIONS_PER_LOOKUP, highWaterMarkBytes: LOCATION_SCAN_BYTES }
    const iterator = this.#sub.locations.iterator(range)
    let entries: Array<[string, string]>
    try {
      entries = await iterator.nextv(MAX_LOCATIONS_PER_LOOKUP)
    } finally {
      await iterator.close()
    }
    return entries.map(([k, length]) => toLocation(key, k, length))
  }

  /** `locations` of every key, in one ordered pass over the places (prefix-scan.ts). */
  async locationsOf (keys: readonly string[]): Promise<FileLocation[][]> {
    const sorted = [...new Set(keys)].sort(byteOrder)
    if (sorted.length === 0) return []
    const found = new Map<string, FileLocation[]>()
    const entries = await this.#scan(this.#sub.locations, sorted, { step: LOCATION_SCAN_STEP, cap: MAX_LOCATIONS_PER_LOOKUP })
    sorted.forEach((key, i) => { found.set(key, (entries[i] ?? []).map(([k, length]) => toLocation(key, k, length))) })
    return keys.map(key => found.get(key)?.map(l => ({ ...l })) ?? [])
  }

  /** The entries of a sublevel under each of `ids` (sorted by `byteOrder`, distinct) as `id\0…`, in one pass. */
  async #scan (sublevel: ReturnType<typeof sublevels>['chunks'], ids: readonly string[], init: PrefixScanInit): Promise<Array<Array<[string, string]> | undefined>> {
    // gte, not gt: a seek to a target outside the range (the `gt` bound itself) ends the iterator
    // (classic-level's highWaterMarkBytes is not in abstract-level's option type: passed as a variable)
    const range = { gte: `${ids[0]}\0`, lt: `${ids[ids.length - 1]}\x01`, highWaterMarkBytes: LOCATION_SCAN_BYTES }
    const iterator = sublevel.iterator(range)
    try {
      return await scanPrefixes(iterator, ids.map(id => `${id}\0`), init)
    } finally {
      await iterator.close()
    }
  }

  async addPin (cid: string): Promise<void> {
    await this.#sub.pins.put(cid, '')
  }

  async deletePin (cid: string): Promise<void> {
    await this.#sub.pins.del(cid)
  }

  async hasPin (cid: string): Promise<boolean> {
    return this.#sub.pins.has(cid)
  }

  async * pins (): AsyncGenerator<string> {
    yield * this.#sub.pins.keys()
  }

  async release (): Promise<void> {
    await releaseWriteBuffer(this.#db)
  }

  async close (): Promise<void> {
    await this.#db.close()
  }
}
