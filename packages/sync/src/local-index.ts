/**
 * The local index of one share: the LocalEntry of every path this device
 * knows (tombstones included), in memory for the scanner and the pull plan
 * (which read it synchronously) and written through to the share database.
 * It also counts which chunks the share's live files hold, so the serve
 * policy can answer "is this chunk part of that share?" without a lookup.
 *
 * Entries are held packed (a share of 100,000+ files must fit a small box):
 * a file's chunk list is one byte array instead of a CID object (with its
 * digest object and three byte views) per chunk, the chunk counts are keyed
 * by the CID's bytes (a CID's string form is cached per CID and built by
 * concatenation), device ids are shared. `get` and the iterators rebuild
 * plain entries on demand; callers must not expect the same object twice.
 * Their chunk list is rebuilt when first read: most reads (the scanner's
 * "is it unchanged?", the pull plan's version checks) never touch it, and a
 * 1 GiB file's 4,096 CIDs take ~5 ms to rebuild.
 * What share status shows (files, bytes, each device's changes) is counted
 * as entries are added and removed, so a status poll unpacks nothing.
 */
import { bytesKey } from '@homecloud/exchange'
import { CID } from 'multiformats/cid'
import { collisionKey, pathAndParents } from './path-policy.js'
import { encodeEntry, shareKeys, type ShareRecords } from './share-state.js'
import { SnapshotEncoder, type IncrementalSnapshot } from './snapshot.js'
import type { ChunkRef, EntryType, LocalEntry, ShareEntry } from './entry.js'
import type { KvOperation } from './share-kv.js'
import type { LocalIndexView } from './plan.js'
import type { PreviousIndex } from './scanner.js'
import type { VersionVector } from './version-vector.js'

/** Distinct device ids (and version vectors) shared between entries; past this many, new ones are kept as they come. */
const MAX_INTERNED = 4096

/** One entry, packed; every field always present so all records share one shape. */
interface PackedEntry {
  readonly path: string
  readonly type: EntryType
  readonly size: number
  readonly mtime: number
  readonly mode: number
  readonly version: VersionVector
  readonly modifiedBy: string
  /** See `packChunks`. */
  readonly chunks: string | undefined
  readonly target: string | undefined
  readonly deleted: boolean
  readonly ino: number | undefined
  readonly mtimeMs: number | undefined
}

const TYPES: readonly EntryType[] = ['file', 'dir', 'symlink']

/** What share status shows from the index. */
export interface IndexCounts {
  /** Live files and their bytes. */
  files: number
  bytes: number
  /** Entries (tombstones too) this device changed last: shown in receive-only mode, where they can be reverted. */
  ownChanges: number
}

export class LocalIndex implements LocalIndexView, PreviousIndex {
  readonly #entries = new Map<string, PackedEntry>()
  readonly #chunks = new Map<string, number>()
  readonly #interned = new Map<string, string>()
  readonly #versions = new Map<string, VersionVector>()
  #files = 0
  #bytes = 0
  /** Entries by the device that changed them last. */
  readonly #byDevice = new Map<string, number>()
  /**
   * Known spellings by `collisionKey` (paths and their parents), for the pull plan's
   * collision check; built on first use, kept up to date, dropped by `releaseCaches`.
   * Forgotten paths stay listed (more spellings only make the plan check the long way).
   */
  #spellings?: Map<string, string[]>
  /** Packed entries are replaced, never changed: the encoder reuses pages of the same objects. */
  readonly #encoder = new SnapshotEncoder<PackedEntry>(p => unpack(p, false))

  private constructor (private readonly share: string, private readonly records: ShareRecords) {}

  /** The index as stored. */
  static async load (share: string, records: ShareRecords): Promise<LocalIndex> {
    const index = new LocalIndex(share, records)
    for await (const e of records.entries(share)) index.#remember(e)
    return index
  }

  get (path: string): LocalEntry | undefined {
    const packed = this.#entries.get(path)
    return packed == null ? undefined : unpack(packed, true, true)
  }

  keys (): IterableIterator<string> {
    return this.#entries.keys()
  }

  * values (): IterableIterator<LocalEntry> {
    for (const packed of this.#entries.values()) yield unpack(packed, true, true)
  }

  get size (): number {
    return this.#entries.size
  }

  /** Status's counts, `self` being this device. */
  counts (self: string): IndexCounts {
    return { files: this.#files, bytes: this.#bytes, ownChanges: this.#byDevice.get(self) ?? 0 }
  }

  /** Does a live file of this share hold the chunk? */
  hasChunk (cid: CID): boolean {
    return this.#chunks.has(bytesKey(cid.bytes))
  }

  /** Records entries (replacing what was there for their paths), with `also` in the same write; durable when it resolves. */
  async set (entries: LocalEntry[], also: KvOperation[] = []): Promise<void> {
    if (entries.length === 0 && also.length === 0) return
    const ops: KvOperation[] = entries.map(e => ({ type: 'put', key: shareKeys.entry(this.share, e.path), value: encodeEntry(e) }))
    await this.records.kv.batch([...ops, ...also])
    for (const e of entries) this.#remember(e)
  }

  /** Forgets paths entirely (no tombstone): a reverted local addition. */
  async delete (paths: string[]): Promise<void> {
    if (paths.length === 0) return
    await this.records.kv.batch(paths.map(path => ({ type: 'del', key: shareKeys.entry(this.share, path) })))
    for (const path of paths) this.#forget(path)
  }

  /** The entries as every device agrees on them (no local stat), for a snapshot. */
  * shareEntries (): Generator<ShareEntry> {
    for (const packed of this.#entries.values()) yield unpack(packed, false)
  }

  /**
   * The snapshot of `shareEntries`, built at the cost of what changed since
   * the last call (`SnapshotEncoder`); `stored` tells which blocks the store
   * holds, and only the others are returned with their bytes.
   */
  async encodeSnapshot (stored: (cid: CID) => boolean): Promise<IncrementalSnapshot> {
    return this.#encoder.encode(this.#entries.values(), stored)
  }

  spellingsOf (key: string): readonly string[] | undefined {
    if (this.#spellings === undefined) {
      this.#spellings = new Map()
      for (const path of this.#entries.keys()) this.#addSpelling(path)
    }
    return this.#spellings.get(key)
  }

  /** Drops what is kept only for speed (the spellings map): an idle device gives the memory back. */
  releaseCaches (): void {
    this.#spellings = undefined
  }

  /** Adds `path` and its parents (up to one already listed) to the spellings map. */
  #addSpelling (path: string): void {
    const spellings = this.#spellings
    if (spellings === undefined) return
    for (const prefix of pathAndParents(path)) {
      const key = collisionKey(prefix)
      const known = spellings.get(key)
      if (known === undefined) spellings.set(key, [prefix])
      else if (known.includes(prefix)) return
      else known.push(prefix)
    }
  }

  /** Entries of `cid` if it is a page of the last `encodeSnapshot` (`ReadSnapshotOptions.ownPage`). */
  ownPage (cid: CID): number | undefined {
    return this.#encoder.pageEntries(cid)
  }

  #remember (e: LocalEntry): void {
    this.#forget(e.path)
    const packed: PackedEntry = {
      path: e.path,
      type: TYPES[TYPES.indexOf(e.type)] ?? e.type,
      size: e.size,
      mtime: e.mtime,
      mode: e.mode,
      version: this.#internVersion(e.version),
      modifiedBy: this.#intern(e.modifiedBy),
      chunks: e.chunks == null ? undefined : packChunks(e.chunks),
      target: e.target,
      deleted: e.deleted === true,
      ino: e.local?.ino,
      mtimeMs: e.local?.mtimeMs
    }
    this.#entries.set(e.path, packed)
    this.#addSpelling(e.path)
    this.#count(packed, 1)
    if (packed.deleted || packed.chunks == null) return
    forEachChunk(packed.chunks, (_length, start, end) => {
      const key = chunkKey(packed.chunks!, start, end)
      this.#chunks.set(key, (this.#chunks.get(key) ?? 0) + 1)
    })
  }

  #forget (path: string): void {
    const old = this.#entries.get(path)
    if (old == null) return
    this.#entries.delete(path)
    this.#count(old, -1)
    if (old.deleted || old.chunks == null) return
    forEachChunk(old.chunks, (_length, start, end) => {
      const key = chunkKey(old.chunks!, start, end)
      const n = (this.#chunks.get(key) ?? 0) - 1
      if (n <= 0) this.#chunks.delete(key)
      else this.#chunks.set(key, n)
    })
  }

  #count (p: PackedEntry, sign: 1 | -1): void {
    if (!p.deleted && p.type === 'file') {
      this.#files += sign
      this.#bytes += sign * p.size
    }
    const n = (this.#byDevice.get(p.modifiedBy) ?? 0) + sign
    if (n === 0) this.#byDevice.delete(p.modifiedBy)
    else this.#byDevice.set(p.modifiedBy, n)
  }

  #intern (s: string): string {
    const known = this.#interned.get(s)
    if (known != null) return known
    if (this.#interned.size < MAX_INTERNED) this.#interned.set(s, s)
    return s
  }

  /** One shared, frozen object per distinct vector (most files of a share have one of a few). */
  #internVersion (v: VersionVector): VersionVector {
    const key = Object.entries(v).join(',')
    const known = this.#versions.get(key)
    if (known != null) return known
    const copy = Object.freeze({ ...v })
    if (this.#versions.size < MAX_INTERNED) this.#versions.set(key, copy)
    return copy
  }
}

/** Bytes (each < 256) as a flat one-byte string (latin1: a character each, as bytesKey). */
function byteString (codes: number[]): string {
  return Buffer.from(codes).toString('latin1')
}

/**
 * Per chunk: its length (u32, little endian), the CID's byte length, the CID's bytes, as
 * a one-byte string (a string costs a 12-byte header, a typed array ~100 bytes of objects).
 */
function packChunks (chunks: readonly ChunkRef[]): string {
  const codes: number[] = []
  for (const c of chunks) {
    for (let i = 0; i < 4; i++) codes.push(Math.floor(c.length / 2 ** (8 * i)) & 0xff)
    codes.push(c.cid.bytes.byteLength)
    for (const b of c.cid.bytes) codes.push(b)
  }
  return byteString(codes)
}

/** Calls `fn` with each chunk's length and the range of its CID's bytes. */
function forEachChunk (packed: string, fn: (length: number, start: number, end: number) => void): void {
  for (let at = 0; at < packed.length;) {
    const length = packed.charCodeAt(at) + packed.charCodeAt(at + 1) * 2 ** 8 + packed.charCodeAt(at + 2) * 2 ** 16 + packed.charCodeAt(at + 3) * 2 ** 24
    const start = at + 5
    const end = start + packed.charCodeAt(at + 4)
    fn(length, start, end)
    at = end
  }
}

function cidBytes (packed: string, start: number, end: number): Uint8Array {
  const out = new Uint8Array(end - start)
  for (let i = start; i < end; i++) out[i - start] = packed.charCodeAt(i)
  return out
}

/** A chunk's key in the counts: a copy (a substring would keep the whole packed list alive). */
function chunkKey (packed: string, start: number, end: number): string {
  return bytesKey(cidBytes(packed, start, end))
}

function unpackChunks (packed: string): ChunkRef[] {
  const out: ChunkRef[] = []
  forEachChunk(packed, (length, start, end) => { out.push({ cid: CID.decode(cidBytes(packed, start, end)), length }) })
  return out
}

/** A plain entry again, with only the fields it has (as decoded from a record); `lazy`: its chunk list rebuilt when first read. */
function unpack (p: PackedEntry, withLocal: boolean, lazy = false): LocalEntry {
  const e: LocalEntry = { path: p.path, type: p.type, size: p.size, mtime: p.mtime, mode: p.mode, version: p.version, modifiedBy: p.modifiedBy }
  if (p.chunks != null) {
    if (lazy) lazyChunks(e, p.chunks)
    else e.chunks = unpackChunks(p.chunks)
  }
  if (p.target != null) e.target = p.target
  if (p.deleted) e.deleted = true
  if (withLocal && p.ino != null && p.mtimeMs != null) e.local = { ino: p.ino, mtimeMs: p.mtimeMs }
  return e
}

/** `e.chunks` as an accessor that becomes a plain property (the list, or what is assigned) on first use. */
function lazyChunks (e: LocalEntry, packed: string): void {
  const settle = (chunks: ChunkRef[] | undefined): ChunkRef[] | undefined => {
    Object.defineProperty(e, 'chunks', { value: chunks, writable: true, enumerable: true, configurable: true })
    return chunks
  }
  Object.defineProperty(e, 'chunks', {
    get: () => settle(unpackChunks(packed)),
    set: settle,
    enumerable: true,
    configurable: true
  })
}
