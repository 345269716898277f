import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import {
  CHUNKS_PER_LIST_BLOCK, INDEX_BOUNDARY_MASK, LIST_BOUNDARY_MASK, MAX_CHUNK_LISTS_PER_FILE, MAX_CHUNKS_PER_FILE, MAX_ID_LENGTH,
  MAX_INDEX_PAGES, MAX_INLINE_CHUNKS, MAX_LINK_TARGET_BYTES, MAX_PAGE_ENTRIES, MAX_ROOT_PAGES,
  MAX_SNAPSHOT_BLOCK_BYTES, MAX_SNAPSHOT_ENTRIES, MAX_SNAPSHOT_PAGES, MAX_VERSION_VECTOR_DEVICES, PAGE_BOUNDARY_MASK,
  PAGE_TARGET_BYTES
} from './constants.js'
import { IntegrityError, InvalidParametersError, InvalidSnapshotError, LimitExceededError } from './errors.js'
import { isVersionVector } from './version-vector.js'
import type { ChunkRef, EntryType, ShareEntry } from './entry.js'
import type { AbortOptions } from '@homecloud/interface'

/*
 * A snapshot is a small tree of dag-cbor blocks, each ≤ 1 MiB:
 *   root:       { v: 1, n: <entries>, pages: [CID…] }     (≤ MAX_ROOT_PAGES pages)
 *            or { v: 1, n: <entries>, idx: [CID…] }       (more: index blocks of pages)
 *   index:      { pages: [CID…] }
 *   page:       { e: [entry…] }   entries sorted by path, strictly increasing across pages
 *   entry:      { p: path, t: 0 file | 1 dir | 2 symlink, s: size, m: mtime ms, o: mode,
 *                 v: version vector, b: modifiedBy,
 *                 c: [chunk CID…], l: [chunk length…]   (files, ≤ MAX_INLINE_CHUNKS chunks inline)
 *                 x: [chunk list CID…]                  (files with more chunks)
 *                 k: link target, d: true (tombstone) }
 *   chunk list: { c: [CID…], l: [length…] }
 * Every split is content-defined, so a change re-sends only the blocks it touches and
 * every other block keeps its CID (a device fetches only CIDs it does not hold):
 * pages end where a hash of the path hits a mask (adding one file changes one page),
 * chunk lists where a chunk's CID does (a changed chunk changes one list; a renamed
 * file keeps all of its lists), index blocks where a page's CID does.
 */

/** A block of a snapshot. */
export interface SnapshotBlock {
  cid: CID
  bytes: Uint8Array
}

export interface EncodedSnapshot {
  root: CID
  /** Every block, the root last: store or serve them all. */
  blocks: SnapshotBlock[]
}

/** Where `readSnapshot` gets blocks (the block store, or the exchange for a remote snapshot). */
export interface SnapshotBlocks {
  get(cid: CID, options?: AbortOptions): Promise<Uint8Array>
}

const TYPES: EntryType[] = ['file', 'dir', 'symlink']
const encoder = new TextEncoder()

async function makeBlock (value: unknown): Promise<SnapshotBlock> {
  return blockOf(dagCbor.encode(value))
}

async function blockOf (bytes: Uint8Array): Promise<SnapshotBlock> {
  if (bytes.byteLength > MAX_SNAPSHOT_BLOCK_BYTES) throw new LimitExceededError(`snapshot block of ${bytes.byteLength} bytes`)
  return { cid: CID.createV1(dagCbor.code, await sha256.digest(bytes)), bytes }
}

/** dag-cbor of `{ e: [...] }` up to the array's items: a map of one key "e", an array of `count` items. */
function pageHead (count: number): Uint8Array {
  const head = [0xa1, 0x61, 0x65]
  if (count < 24) head.push(0x80 | count)
  else if (count < 0x100) head.push(0x98, count)
  else if (count < 0x10000) head.push(0x99, count >> 8, count & 0xff)
  else head.push(0x9a, count >>> 24, (count >> 16) & 0xff, (count >> 8) & 0xff, count & 0xff)
  return Uint8Array.from(head)
}

/**
 * The page `{ e: entries }` from its entries' own dag-cbor, byte for byte
 * what encoding the whole page gives (an array's items are encoded one after
 * the other): each entry is encoded once, where sizing the page and then
 * encoding it cost two encodings of every entry on each head.
 */
function encodePage (entries: readonly Uint8Array[], bytes: number): Uint8Array {
  const head = pageHead(entries.length)
  const out = new Uint8Array(head.length + bytes)
  out.set(head)
  let at = head.length
  for (const e of entries) {
    out.set(e, at)
    at += e.length
  }
  return out
}

/** FNV-1a over the UTF-16 units of the path: a stable, cheap page boundary test. */
function isBoundary (path: string): boolean {
  let h = 0x811c9dc5
  for (let i = 0; i < path.length; i++) {
    h ^= path.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return ((h >>> 0) & PAGE_BOUNDARY_MASK) === 0
}

/** A CID's last two digest bytes under `mask`: the digest is a hash already, so this is uniform. */
function isCidBoundary (cid: CID, mask: number): boolean {
  const d = cid.multihash.digest
  return (((d[d.length - 2] << 8) | d[d.length - 1]) & mask) === 0
}

/** Splits `items` after every item `cut` says ends a piece, and at `max` items. */
function splitAt<T> (items: T[], max: number, cut: (item: T) => boolean): T[][] {
  const pieces: T[][] = []
  let piece: T[] = []
  for (const item of items) {
    piece.push(item)
    if (cut(item) || piece.length >= max) {
      pieces.push(piece)
      piece = []
    }
  }
  if (piece.length > 0) pieces.push(piece)
  return pieces
}

function comparePaths (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** Encodes a share's entries (any order; paths must be unique) as snapshot blocks. */
export async function encodeSnapshot (entries: Iterable<ShareEntry>): Promise<EncodedSnapshot> {
  const { root, blocks } = await encodeSorted([...entries].sort(byPath), e => e, () => false)
  return { root, blocks }
}

/** An entry as `SnapshotEncoder` sees it: immutable, a new object whenever the entry changes. */
export interface SnapshotItem {
  readonly path: string
}

export interface IncrementalSnapshot {
  root: CID
  /** The blocks `stored` did not hold: store them. */
  blocks: SnapshotBlock[]
  /** Every block of the snapshot, the root last: serve them all. */
  cids: CID[]
}

/** A page of the last encoding: reused while the same items start at a page start and still end it. */
interface CachedPage<T> {
  items: T[]
  /** Encoded size of the first item (whether a page before it overflows) and of them all. */
  firstSize: number
  bytes: number
  /** Did the page end at a boundary or the entry cap (rather than at the next item, or the end)? */
  cut: boolean
  cid: CID
  /** Chunk-list blocks of its entries. */
  lists: CID[]
}

/**
 * Encodes a changing set of entries again and again (a share's head after
 * each change) at the cost of the change: a page whose entries are the same
 * objects as last time, and which still ends where it did, keeps its CID
 * without being rebuilt or hashed; the blocks a store already holds are not
 * returned. The bytes are those of `encodeSnapshot` for the same entries.
 * Holds the page list of the last encoding (references to its items).
 */
export class SnapshotEncoder<T extends SnapshotItem> {
  #pages = new Map<T, CachedPage<T>>()
  /** Entries per page CID (string form) of the last encoding. */
  #counts = new Map<string, number>()
  readonly #entryOf: (item: T) => ShareEntry

  constructor (entryOf: (item: T) => ShareEntry) {
    this.#entryOf = entryOf
  }

  /** `stored` tells which blocks the store holds (a cached page is reused only if it, and its lists, are there). */
  async encode (items: Iterable<T>, stored: (cid: CID) => boolean): Promise<IncrementalSnapshot> {
    const pages = new Map<T, CachedPage<T>>()
    const out = await encodeSorted([...items].sort(byPath), this.#entryOf, stored, this.#pages, pages)
    this.#pages = pages
    this.#counts = new Map([...pages.values()].map(page => [page.cid.toString(), page.items.length]))
    return out
  }

  /** The number of entries of `cid` if it is a page of the last encoding (see `ReadSnapshotOptions.ownPage`). */
  pageEntries (cid: CID): number | undefined {
    return this.#counts.get(cid.toString())
  }
}

function byPath (a: SnapshotItem, b: SnapshotItem): number {
  return comparePaths(a.path, b.path)
}

interface EncodedEntry {
  bytes: Uint8Array
  lists: SnapshotBlock[]
}

/**
 * The snapshot of `sorted`: pages end after a boundary path, at MAX_PAGE_ENTRIES,
 * or before an entry that would take the page past PAGE_TARGET_BYTES. Pages of
 * `previous` are reused where they still hold (see `SnapshotEncoder`); the
 * pages made are put in `next`.
 */
async function encodeSorted<T extends SnapshotItem> (
  sorted: readonly T[], entryOf: (item: T) => ShareEntry, stored: (cid: CID) => boolean,
  previous: ReadonlyMap<T, CachedPage<T>> = new Map(), next?: Map<T, CachedPage<T>>
): Promise<IncrementalSnapshot> {
  if (sorted.length > MAX_SNAPSHOT_ENTRIES) throw new LimitExceededError(`${sorted.length} entries, over the cap of ${MAX_SNAPSHOT_ENTRIES}`)
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i - 1].path === sorted[i].path) throw new InvalidParametersError(`duplicate path ${sorted[i].path} in snapshot`)
  }
  const blocks: SnapshotBlock[] = []
  const cids: CID[] = []
  const add = (block: SnapshotBlock): void => {
    if (!stored(block.cid)) blocks.push(block)
    cids.push(block.cid)
  }
  // entries encoded ahead of their page (the one after a page, to see where that page ends)
  const ahead = new Map<T, EncodedEntry>()
  const encoded = async (item: T, keep = false): Promise<EncodedEntry> => {
    let e = ahead.get(item)
    if (e == null) {
      const lists: SnapshotBlock[] = []
      e = { bytes: dagCbor.encode(await encodeEntry(entryOf(item), lists)), lists }
      if (keep) ahead.set(item, e)
    }
    return e
  }
  const reusable = async (page: CachedPage<T>, at: number): Promise<boolean> => {
    const end = at + page.items.length
    if (end > sorted.length || !page.items.every((item, k) => sorted[at + k] === item)) return false
    if (!stored(page.cid) || !page.lists.every(stored)) return false
    if (page.cut || end === sorted.length) return true
    const following = previous.get(sorted[end])?.firstSize ?? (await encoded(sorted[end], true)).bytes.byteLength
    return page.bytes + following > PAGE_TARGET_BYTES
  }
  const pages: CID[] = []
  for (let i = 0; i < sorted.length;) {
    const start = i
    const cached = previous.get(sorted[i])
    if (cached != null && await reusable(cached, i)) {
      cids.push(...cached.lists, cached.cid)
      pages.push(cached.cid)
      next?.set(sorted[i], cached)
      i += cached.items.length
      continue
    }
    const page: Uint8Array[] = []
    const lists: CID[] = []
    let bytes = 0
    let cut = false
    for (; i < sorted.length; i++) {
      const e = await encoded(sorted[i])
      if (page.length > 0 && bytes + e.bytes.byteLength > PAGE_TARGET_BYTES) {
        ahead.set(sorted[i], e)
        break
      }
      page.push(e.bytes)
      bytes += e.bytes.byteLength
      for (const list of e.lists) {
        add(list)
        lists.push(list.cid)
      }
      if (isBoundary(sorted[i].path) || page.length >= MAX_PAGE_ENTRIES) {
        cut = true
        i++
        break
      }
    }
    const block = await blockOf(encodePage(page, bytes))
    add(block)
    pages.push(block.cid)
    next?.set(sorted[start], { items: sorted.slice(start, i), firstSize: page[0].byteLength, bytes, cut, cid: block.cid, lists })
  }
  if (pages.length > MAX_SNAPSHOT_PAGES) throw new LimitExceededError(`${pages.length} snapshot pages`)
  let root: SnapshotBlock
  if (pages.length <= MAX_ROOT_PAGES) {
    root = await makeBlock({ v: 1, n: sorted.length, pages })
  } else {
    const idx: CID[] = []
    for (const part of splitAt(pages, MAX_INDEX_PAGES, cid => isCidBoundary(cid, INDEX_BOUNDARY_MASK))) {
      const block = await makeBlock({ pages: part })
      add(block)
      idx.push(block.cid)
    }
    root = await makeBlock({ v: 1, n: sorted.length, idx })
  }
  add(root)
  return { root: root.cid, blocks, cids }
}

async function encodeEntry (e: ShareEntry, blocks: SnapshotBlock[]): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {
    p: e.path, t: TYPES.indexOf(e.type), s: e.size, m: e.mtime, o: e.mode, v: e.version, b: e.modifiedBy
  }
  if (e.deleted === true) {
    out.d = true
    return out
  }
  if (e.type === 'symlink') out.k = e.target ?? ''
  if (e.type !== 'file') return out
  const chunks = e.chunks ?? []
  if (chunks.length <= MAX_INLINE_CHUNKS) {
    out.c = chunks.map(c => c.cid)
    out.l = chunks.map(c => c.length)
    return out
  }
  if (chunks.length > MAX_CHUNKS_PER_FILE) throw new LimitExceededError(`${e.path} has ${chunks.length} chunks`)
  const lists: CID[] = []
  for (const part of splitAt(chunks, CHUNKS_PER_LIST_BLOCK, c => isCidBoundary(c.cid, LIST_BOUNDARY_MASK))) {
    const block = await makeBlock({ c: part.map(c => c.cid), l: part.map(c => c.length) })
    blocks.push(block)
    lists.push(block.cid)
  }
  if (lists.length > MAX_CHUNK_LISTS_PER_FILE) throw new LimitExceededError(`${e.path} has ${chunks.length} chunks in ${lists.length} lists`)
  out.x = lists
  return out
}

/** Fetches a snapshot block and checks its size, codec and hash before decoding it. */
async function getBlock (cid: CID, blocks: SnapshotBlocks, options: AbortOptions): Promise<Record<string, unknown>> {
  if (cid.version !== 1 || cid.code !== dagCbor.code || cid.multihash.code !== sha256.code) {
    throw new InvalidSnapshotError(`snapshot block ${cid.toString()} is not CIDv1 dag-cbor sha2-256`)
  }
  const bytes = await blocks.get(cid, options)
  if (bytes.byteLength > MAX_SNAPSHOT_BLOCK_BYTES) throw new LimitExceededError(`snapshot block ${cid.toString()} has ${bytes.byteLength} bytes`)
  const digest = await sha256.digest(bytes)
  if (!equalBytes(digest.bytes, cid.multihash.bytes)) throw new IntegrityError(`snapshot block ${cid.toString()} does not match its hash`)
  let value: unknown
  try {
    value = dagCbor.decode(bytes)
  } catch (err) {
    throw new InvalidSnapshotError(`snapshot block ${cid.toString()} is not valid dag-cbor: ${(err as Error).message}`, { cause: err })
  }
  if (!isRecord(value)) throw new InvalidSnapshotError(`snapshot block ${cid.toString()} is not a map`)
  return value
}

export interface ReadSnapshotOptions extends AbortOptions {
  /**
   * The number of entries of `cid` when it is a page of one of this device's own snapshots
   * (`SnapshotEncoder.pageEntries`): such a page is neither read nor returned. Its entries
   * are ones this device held as they are; what it holds now is the same or newer (version
   * vectors only grow), so a pull has nothing to do for them. A change on another device
   * then costs a pull the pages it made, not the whole share.
   */
  ownPage?(cid: CID): number | undefined
}

/**
 * The entries of the snapshot at `root`, in path order (but those of `ownPage`s).
 * Every block is hash-checked and size-capped, every field type-checked; a malformed
 * snapshot throws `InvalidSnapshotError` (or `LimitExceededError`,
 * `IntegrityError`). Paths are not policy-checked here: `planPull` does that
 * per entry so one bad name fails alone.
 */
export async function * readSnapshot (root: CID, blocks: SnapshotBlocks, options: ReadSnapshotOptions = {}): AsyncGenerator<ShareEntry> {
  const top = await getBlock(root, blocks, options)
  const bad = (why: string): never => { throw new InvalidSnapshotError(`snapshot ${root.toString()}: ${why}`) }
  if (top.v !== 1) bad(`unsupported version ${String(top.v)}`)
  if (!Number.isSafeInteger(top.n) || (top.n as number) < 0) bad('bad entry count')
  const count = top.n as number
  if (count > MAX_SNAPSHOT_ENTRIES) throw new LimitExceededError(`snapshot has ${count} entries, over the cap of ${MAX_SNAPSHOT_ENTRIES}`)
  const pages = await pageList(top, blocks, options) ?? bad('bad page list')
  let seen = 0
  let last: string | undefined
  for (const pageCid of pages) {
    options.signal?.throwIfAborted()
    const own = options.ownPage?.(pageCid)
    if (own !== undefined) {
      if ((seen += own) > count) bad('more entries than the root says')
      continue
    }
    const page = await getBlock(pageCid, blocks, options)
    if (!Array.isArray(page.e) || page.e.length === 0 || page.e.length > MAX_PAGE_ENTRIES) bad('bad page')
    for (const value of page.e as unknown[]) {
      if (++seen > count) bad('more entries than the root says')
      const entry = await decodeEntry(value, blocks, options) ?? bad(`malformed entry ${seen}`)
      if (last !== undefined && comparePaths(last, entry.path) >= 0) bad(`entries not strictly sorted at ${JSON.stringify(entry.path.slice(0, 200))}`)
      last = entry.path
      yield entry
    }
  }
  if (seen !== count) bad(`${seen} entries, the root says ${count}`)
}

/**
 * The page CIDs of a snapshot root, from the root itself or its index blocks (each
 * fetched through `blocks`); undefined when malformed. Also used to prefetch pages.
 */
export async function pageList (root: Record<string, unknown>, blocks: SnapshotBlocks, options: AbortOptions = {}): Promise<CID[] | undefined> {
  // encoders inline at most MAX_ROOT_PAGES; more is accepted (older roots), the block cap bounds it
  if (root.idx === undefined) return cidList(root.pages, MAX_SNAPSHOT_PAGES, dagCbor.code)
  if (root.pages !== undefined) return undefined
  const idx = cidList(root.idx, MAX_SNAPSHOT_PAGES, dagCbor.code)
  if (idx == null) return undefined
  const pages: CID[] = []
  for (const cid of idx) {
    const part = cidList((await getBlock(cid, blocks, options)).pages, MAX_INDEX_PAGES, dagCbor.code)
    if (part == null || part.length === 0 || pages.length + part.length > MAX_SNAPSHOT_PAGES) return undefined
    pages.push(...part)
  }
  return pages
}

/** The chunk-list CIDs a decoded page's entries point at (for prefetching; the reader checks them). */
export function pageChunkLists (page: unknown): CID[] {
  if (!isRecord(page) || !Array.isArray(page.e)) return []
  const out: CID[] = []
  for (const e of page.e.slice(0, MAX_PAGE_ENTRIES)) {
    if (isRecord(e) && Array.isArray(e.x)) out.push(...(cidList(e.x, MAX_CHUNK_LISTS_PER_FILE, dagCbor.code) ?? []))
  }
  return out
}

/** All entries of a snapshot (bounded by MAX_SNAPSHOT_ENTRIES), but those of `ownPage`s. */
export async function loadSnapshot (root: CID, blocks: SnapshotBlocks, options: ReadSnapshotOptions = {}): Promise<ShareEntry[]> {
  const entries: ShareEntry[] = []
  for await (const e of readSnapshot(root, blocks, options)) entries.push(e)
  return entries
}

async function decodeEntry (v: unknown, blocks: SnapshotBlocks, options: AbortOptions): Promise<ShareEntry | undefined> {
  if (!isRecord(v)) return undefined
  const { p, t, s, m, o, b } = v
  // no length cap here (the block cap bounds it): path policy refuses an over-long path alone, in the plan
  if (typeof p !== 'string' || p.length === 0) return undefined
  if (t !== 0 && t !== 1 && t !== 2) return undefined
  if (!Number.isSafeInteger(s) || (s as number) < 0 || !Number.isSafeInteger(m)) return undefined
  if (!Number.isSafeInteger(o) || (o as number) < 0 || (o as number) > 0o777) return undefined
  if (typeof b !== 'string' || b.length === 0 || b.length > MAX_ID_LENGTH) return undefined
  if (!isVersionVector(v.v, MAX_VERSION_VECTOR_DEVICES) || Object.keys(v.v).some(k => k.length > MAX_ID_LENGTH)) return undefined
  const entry: ShareEntry = { path: p, type: TYPES[t], size: s as number, mtime: m as number, mode: o as number, version: v.v, modifiedBy: b }
  if (v.d !== undefined) {
    if (v.d !== true || v.c !== undefined || v.x !== undefined || v.k !== undefined || s !== 0) return undefined
    entry.deleted = true
    return entry
  }
  if (entry.type === 'symlink') {
    if (typeof v.k !== 'string' || v.k === '' || encoder.encode(v.k).byteLength > MAX_LINK_TARGET_BYTES || s !== 0) return undefined
    entry.target = v.k
  }
  if (entry.type !== 'file') {
    return v.c === undefined && v.l === undefined && v.x === undefined && (entry.type === 'symlink' || v.k === undefined) && s === 0 ? entry : undefined
  }
  if (v.k !== undefined) return undefined
  let chunks: ChunkRef[] | undefined
  if (v.x !== undefined) {
    if (v.c !== undefined || v.l !== undefined) return undefined
    const lists = cidList(v.x, MAX_CHUNK_LISTS_PER_FILE, dagCbor.code)
    if (lists == null || lists.length === 0) return undefined
    chunks = []
    for (const cid of lists) {
      const part = chunkList(await getBlock(cid, blocks, options), CHUNKS_PER_LIST_BLOCK)
      if (part == null || part.length === 0 || chunks.length + part.length > MAX_CHUNKS_PER_FILE) return undefined
      chunks.push(...part)
    }
  } else {
    chunks = chunkList(v, MAX_INLINE_CHUNKS)
  }
  if (chunks == null || chunks.reduce((sum, c) => sum + c.length, 0) !== s) return undefined
  entry.chunks = chunks
  return entry
}

function chunkList (v: Record<string, unknown>, max: number): ChunkRef[] | undefined {
  const cids = cidList(v.c, max, raw.code)
  const lengths = v.l
  if (cids == null || !Array.isArray(lengths) || lengths.length !== cids.length) return undefined
  if (!lengths.every(n => Number.isSafeInteger(n) && n > 0)) return undefined
  return cids.map((cid, i) => ({ cid, length: lengths[i] as number }))
}

function cidList (v: unknown, max: number, codec: number): CID[] | undefined {
  if (!Array.isArray(v) || v.length > max) return undefined
  const out: CID[] = []
  for (const x of v) {
    const cid = CID.asCID(x)
    if (cid == null || cid.version !== 1 || cid.code !== codec || cid.multihash.code !== sha256.code) return undefined
    out.push(cid)
  }
  return out
}

function isRecord (v: unknown): v is Record<string, unknown> {
  return v != null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array) && CID.asCID(v) == null
}

export function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}
