/**
 * The disk-side checks of apply (D7), shared by single steps and batches:
 * parents are real directories (never symlinks), the target is what the
 * index says, there is room, and chunks read from local files hash right.
 */
import { randomBytes } from 'node:crypto'
import { logger } from '@libp2p/logger'
import { sha256 } from 'multiformats/hashes/sha2'
import { eachLimit } from '@homecloud/store'
import { APPLY_ASIDE_MIN_BYTES, APPLY_IO_CONCURRENCY, APPLY_OPEN_SOURCES, DEFAULT_MIN_FREE_FRACTION, TEMP_PREFIX } from './constants.js'
import { DiskFullError, LocalChangedError, PathRejectedError } from './errors.js'
import { fsErrorCode, type FsReadHandle, type FsStat, type ShareFs, type ShareWriteFs } from './fs.js'
import { equalBytes } from './snapshot.js'
import type { LocalEntry, ShareEntry } from './entry.js'
import type { CID } from 'multiformats/cid'

const log = logger('homecloud:sync:apply')

/**
 * Free space check before a write of `needed` bytes: at least
 * `fraction` of the filesystem must stay free afterwards.
 */
export async function checkFreeSpace (fs: ShareFs, root: string, needed: number, fraction = DEFAULT_MIN_FREE_FRACTION): Promise<void> {
  const { totalBytes, freeBytes } = await fs.statfs(root)
  const reserveBytes = Math.ceil(totalBytes * fraction)
  if (freeBytes - needed < reserveBytes) {
    throw new DiskFullError(`not enough free space in ${root}: ${freeBytes} bytes free, ${needed} needed, ${reserveBytes} kept free`, { freeBytes, neededBytes: needed, reserveBytes })
  }
}

/** ENOSPC/EDQUOT while writing `path` as the error that pauses the share; other errors unchanged. */
export async function asDiskFull (err: unknown, fs: ShareFs, root: string, path: string, needed: number, fraction = DEFAULT_MIN_FREE_FRACTION): Promise<unknown> {
  const code = fsErrorCode(err)
  if (code !== 'ENOSPC' && code !== 'EDQUOT') return err
  const { freeBytes, totalBytes } = await fs.statfs(root).catch(() => ({ freeBytes: 0, totalBytes: 0 }))
  return new DiskFullError(`disk full while writing ${path}`, { freeBytes, neededBytes: needed, reserveBytes: Math.ceil(totalBytes * fraction) }, { cause: err })
}

/**
 * Each parent of `path` below the root, by lstat: a real directory (created
 * when missing), never a symlink. `known` holds directories already checked
 * (or created) in this batch, so a batch of files in one folder lstats it once.
 */
export async function safeParent (fs: ShareFs, root: string, path: string, create: boolean, known?: Set<string>): Promise<string> {
  let dir = root
  const parts = path.split('/')
  for (let i = 0; i < parts.length - 1; i++) {
    const parent = dir
    dir = `${dir}/${parts[i]}`
    if (known?.has(dir) === true) continue
    let stat: FsStat | undefined
    try {
      stat = await fs.lstat(dir)
    } catch (err) {
      if (fsErrorCode(err) !== 'ENOENT') throw err
      if (!create) throw new LocalChangedError(path, `${parts.slice(0, i + 1).join('/')} was removed locally`, { cause: err })
    }
    if (stat == null) {
      try {
        await fs.mkdir(dir, 0o755)
        // the new directory entry must survive a power loss before a file inside it is recorded
        await fs.fsyncDir(parent)
        known?.add(dir)
        continue
      } catch (err) {
        // made meanwhile (by another batch loading, or the user): checked like any existing entry
        if (fsErrorCode(err) !== 'EEXIST') throw err
        stat = await fs.lstat(dir)
      }
    }
    if (stat.type === 'symlink') throw new PathRejectedError(path, 'symlinked-parent', `${parts.slice(0, i + 1).join('/')} is a symlink: never written through`)
    if (stat.type !== 'dir') throw new PathRejectedError(path, 'parent-not-directory', `${parts.slice(0, i + 1).join('/')} is not a directory`)
    known?.add(dir)
  }
  return dir
}

/** Is what is on disk at `abs` what the index says (`expect`; undefined: nothing)? */
export async function checkExpected (fs: ShareFs, abs: string, path: string, expect: LocalEntry | undefined): Promise<void> {
  let stat: FsStat | undefined
  try {
    stat = await fs.lstat(abs)
  } catch (err) {
    if (fsErrorCode(err) !== 'ENOENT') throw err
  }
  if (expect == null || expect.deleted === true) {
    if (stat != null) throw new LocalChangedError(path, `a ${stat.type} exists that the index does not know`)
    return
  }
  if (stat == null) throw new LocalChangedError(path, 'removed locally')
  if (stat.type !== expect.type) throw new LocalChangedError(path, `now a ${stat.type}`)
  if (stat.type === 'dir') return
  const local = expect.local
  if (local == null || stat.ino !== local.ino || stat.mtimeMs !== local.mtimeMs || (stat.type === 'file' && stat.size !== expect.size)) {
    throw new LocalChangedError(path, 'modified since the last scan')
  }
}

export function withLocal (entry: ShareEntry, stat: Pick<FsStat, 'ino' | 'mtimeMs'> | undefined): LocalEntry {
  const { local: _drop, ...clean } = entry as LocalEntry
  return stat == null ? clean : { ...clean, local: { ino: stat.ino, mtimeMs: stat.mtimeMs } }
}

export function tempName (): string {
  return `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`
}

export async function removeQuietly (fs: ShareFs, path: string): Promise<void> {
  await fs.unlink(path).catch(err => {
    if (fsErrorCode(err) !== 'ENOENT') log.error('could not remove temp file %s: %e', path, err)
  })
}

/** A file whose blocks take long to free (at least `minBytes`, APPLY_ASIDE_MIN_BYTES says why): set aside rather than dropped inline. */
function worthAside (old: LocalEntry | undefined, minBytes: number): boolean {
  return old != null && old.type === 'file' && old.deleted !== true && old.size >= minBytes
}

/**
 * Before a rename over `old` (just checked to be the file at `abs`): a file
 * of at least `minBytes` gets a second name, a temp name in `dir`, so the
 * rename only drops a link and the old blocks are freed when that name is
 * removed (`removeAsides`), once the new version is recorded. A crash
 * leaves the name to the start's temp file cleanup. No link (the fs has
 * none, or it failed): the rename frees the blocks itself, as it would anyway.
 */
export async function linkAside (fs: ShareWriteFs, abs: string, dir: string, old: LocalEntry | undefined, minBytes = APPLY_ASIDE_MIN_BYTES): Promise<string | undefined> {
  if (fs.link == null || !worthAside(old, minBytes)) return undefined
  const aside = `${dir}/${tempName()}`
  try {
    await fs.link(abs, aside)
    return aside
  } catch (err) {
    log('could not link %s aside before replacing it: %e', abs, err)
    return undefined
  }
}

/**
 * Takes `old` (just checked to be what is at `abs`, and kept by history)
 * off its name, for a delete or a type change: a file of at least
 * `minBytes` is renamed to a temp name in `dir` (instant: its blocks are
 * freed when that name is removed, `removeAsides`, once the change is
 * recorded; a crash leaves the name to the start's temp file cleanup);
 * anything else is unlinked. Returns the aside name, if any.
 */
export async function unlinkOrAside (fs: ShareFs, abs: string, dir: string, old: LocalEntry, minBytes = APPLY_ASIDE_MIN_BYTES): Promise<string | undefined> {
  if (!worthAside(old, minBytes)) {
    await fs.unlink(abs)
    return undefined
  }
  const aside = `${dir}/${tempName()}`
  await fs.rename(abs, aside)
  return aside
}

/** Removes the names `linkAside` and `unlinkOrAside` gave (freeing the old blocks); never rejects: a failure is logged, a leftover goes with the next start's cleanup. */
export async function removeAsides (fs: ShareFs, asides: readonly string[]): Promise<void> {
  await eachLimit(asides, APPLY_IO_CONCURRENCY, async aside => { await removeQuietly(fs, aside) })
}

/**
 * Removals of aside names running in the background, so the blocks of a
 * recorded batch or step are freed off the path of the next one; `idle`
 * waits for them (apply never returns with one running).
 */
export class AsideRemovals {
  readonly #fs: ShareFs
  /** Each removal running, with the names it removes. */
  readonly #running = new Map<Promise<void>, readonly string[]>()

  constructor (fs: ShareFs) {
    this.#fs = fs
  }

  /** Starts removing `asides` (the change that set them aside is recorded, or failed). */
  start (asides: readonly string[]): void {
    if (asides.length === 0) return
    const removing = removeAsides(this.#fs, asides)
    this.#running.set(removing, asides)
    void removing.finally(() => { this.#running.delete(removing) })
  }

  /** Every removal done, or only those of names inside the directory `under` (it is about to be removed). */
  async idle (under?: string): Promise<void> {
    const waiting = (): Array<Promise<void>> => [...this.#running]
      .filter(([, names]) => under == null || names.some(n => n.startsWith(`${under}/`)))
      .map(([removing]) => removing)
    for (let w = waiting(); w.length > 0; w = waiting()) await Promise.allSettled(w)
  }
}

export async function matches (cid: CID, bytes: Uint8Array): Promise<boolean> {
  if (cid.multihash.code !== sha256.code) return false
  return equalBytes((await sha256.digest(bytes)).bytes, cid.multihash.bytes)
}

/**
 * Reads `length` bytes at `offset` of a local file (share-relative `path`),
 * opened once per caller's `sources` map without following a final
 * symlink; undefined when it cannot (the caller hash-checks what it gets).
 */
export async function readLocal (fs: ShareFs, root: string, path: string, offset: number, length: number, sources: Map<string, Promise<FsReadHandle | undefined>>): Promise<Uint8Array | undefined> {
  let opening = sources.get(path)
  // beyond the cap a source is opened for this read only
  const once = opening == null && sources.size >= APPLY_OPEN_SOURCES
  if (opening == null) {
    opening = fs.openRead(`${root}/${path}`).catch(() => undefined)
    if (!once) sources.set(path, opening)
  }
  const handle = await opening
  if (handle == null) return undefined
  try {
    const buf = new Uint8Array(length)
    let done = 0
    while (done < length) {
      const n = await handle.read(buf.subarray(done), offset + done).catch(() => 0)
      if (n === 0) return undefined
      done += n
    }
    return buf
  } finally {
    if (once) await handle.close().catch(() => {})
  }
}

/** Closes the read handles a `readLocal` map opened. */
export async function closeSources (sources: Map<string, Promise<FsReadHandle | undefined>>): Promise<void> {
  for (const h of sources.values()) await (await h)?.close().catch(() => {})
  sources.clear()
}

/** Bytes of consecutive chunks of one file gathered into one write call. */
export const APPLY_RUN_BYTES = 4 * 1024 * 1024
/** Chunks gathered into one write call. */
export const APPLY_RUN_CHUNKS = 16
/** Pieces in one write call: a `writev` of more than IOV_MAX buffers is split by libuv anyway. */
export const APPLY_RUN_PIECES = 1024
/** Runs of one file gathered at once (chunks arrive a little out of order: a late one still joins its neighbours). */
export const APPLY_RUNS_PER_FILE = 4
/**
 * Bytes a batch holds gathered (not yet being written); past it every
 * gathered run is written. Each chunk's caller waits for its write, so the
 * fetcher counts these bytes as its own buffered ones too.
 */
export const APPLY_RUNS_GATHERED_BYTES = 16 * 1024 * 1024

/** Chunk bytes, whole or in pieces (a Uint8ArrayList is iterable over its pieces). */
export type ChunkBytes = Uint8Array | (Iterable<Uint8Array> & { byteLength: number })

/** Consecutive chunks of one file, from `offset`. */
export interface WriteRun {
  offset: number
  pieces: Uint8Array[]
  bytes: number
  chunks: number
}

export interface WriteRunsLimits {
  runBytes: number
  runChunks: number
  runPieces: number
  runsPerFile: number
  gatheredBytes: number
}

interface Gathered extends WriteRun {
  written: PromiseWithResolvers<void>
}

/**
 * Chunks of the same file written with one call per run of consecutive
 * ones rather than one each (each write is main-thread work: a promise and
 * a round trip to the thread pool), as a group commit: a chunk of a file
 * with no write under way is written at once; chunks that arrive while one
 * is under way gather (joining the run they continue or precede) and go out
 * together when it ends, when their run is full, or when the file has more
 * runs than the bound (the oldest). `add` resolves once the chunk's write
 * did, so callers are paced by the disk and count nothing unwritten.
 * `write` is called once per run and owns its errors (it must not reject).
 */
export class WriteRuns<K> {
  readonly #write: (key: K, run: WriteRun) => Promise<void>
  readonly #limits: WriteRunsLimits
  readonly #runs = new Map<K, Gathered[]>()
  /** Writes under way per key. */
  readonly #busy = new Map<K, number>()
  readonly #writing = new Set<Promise<void>>()
  #gathered = 0

  constructor (write: (key: K, run: WriteRun) => Promise<void>, limits: Partial<WriteRunsLimits> = {}) {
    this.#write = write
    this.#limits = {
      runBytes: APPLY_RUN_BYTES, runChunks: APPLY_RUN_CHUNKS, runPieces: APPLY_RUN_PIECES, runsPerFile: APPLY_RUNS_PER_FILE, gatheredBytes: APPLY_RUNS_GATHERED_BYTES, ...limits
    }
  }

  /** Bytes gathered, not yet being written. */
  get gathered (): number {
    return this.#gathered
  }

  /** Writes a chunk of `key` at `offset`, with its neighbours when they gather; resolves once written (or dropped). */
  async add (key: K, bytes: ChunkBytes, offset: number): Promise<void> {
    const pieces = bytes instanceof Uint8Array ? [bytes] : [...bytes]
    const size = bytes.byteLength
    let list = this.#runs.get(key)
    if (list == null) {
      list = []
      this.#runs.set(key, list)
    }
    let run = list.find(r => r.offset + r.bytes === offset && this.#fits(r, pieces.length))
    let merged: Gathered | undefined
    if (run != null) {
      run.pieces.push(...pieces)
      // the chunk closed the gap to the next run: one run
      const next = list.find(r => r.offset === offset + size)
      if (next != null && this.#fits(run, next.pieces.length, next.chunks + 1, next.bytes + size)) {
        run.pieces.push(...next.pieces)
        run.bytes += next.bytes
        run.chunks += next.chunks
        list.splice(list.indexOf(next), 1)
        merged = next
      }
    } else {
      run = list.find(r => r.offset === offset + size && this.#fits(r, pieces.length))
      if (run != null) {
        run.pieces.unshift(...pieces)
        run.offset = offset
      } else {
        run = { offset, pieces, bytes: 0, chunks: 0, written: Promise.withResolvers() }
        list.push(run)
      }
    }
    run.bytes += size
    run.chunks++
    this.#gathered += size
    const written = run.written.promise
    if (merged != null) void written.then(merged.written.resolve)
    if ((this.#busy.get(key) ?? 0) === 0 || run.chunks >= this.#limits.runChunks || run.bytes >= this.#limits.runBytes) {
      this.#start(key, run)
    } else if (list.length > this.#limits.runsPerFile) {
      this.#start(key, list[0])
    }
    if (this.#gathered > this.#limits.gatheredBytes) this.#startAll()
    await written
  }

  /** Writes every gathered run and waits for every write under way. */
  async flushAll (): Promise<void> {
    this.#startAll()
    await this.settled()
  }

  /** Forgets every gathered chunk and waits for the writes under way (before the files are closed). */
  async abandon (): Promise<void> {
    for (const key of [...this.#runs.keys()]) this.drop(key)
    await this.settled()
  }

  /** Waits for every write under way. */
  async settled (): Promise<void> {
    while (this.#writing.size > 0) await Promise.all(this.#writing)
  }

  /** Forgets the gathered chunks of `key` (its file failed): never written; their `add`s resolve. */
  drop (key: K): void {
    for (const run of this.#runs.get(key) ?? []) {
      this.#gathered -= run.bytes
      run.written.resolve()
    }
    this.#runs.delete(key)
  }

  /** May `run` take `pieces` more pieces (and, merging runs, `chunks` and `bytes` more)? */
  #fits (run: WriteRun, pieces: number, chunks = 1, bytes = 0): boolean {
    return run.pieces.length + pieces <= this.#limits.runPieces && run.chunks + chunks <= this.#limits.runChunks && run.bytes + bytes <= this.#limits.runBytes
  }

  #startAll (): void {
    for (const [key, list] of [...this.#runs]) for (const run of [...list]) this.#start(key, run)
  }

  #start (key: K, run: Gathered): void {
    const list = this.#runs.get(key)
    const at = list?.indexOf(run) ?? -1
    if (list == null || at < 0) return
    list.splice(at, 1)
    if (list.length === 0) this.#runs.delete(key)
    this.#gathered -= run.bytes
    this.#busy.set(key, (this.#busy.get(key) ?? 0) + 1)
    const writing: Promise<void> = this.#write(key, run).finally(() => {
      this.#writing.delete(writing)
      const busy = (this.#busy.get(key) ?? 1) - 1
      if (busy > 0) this.#busy.set(key, busy)
      else this.#busy.delete(key)
      run.written.resolve()
      // what gathered meanwhile goes out now
      if (busy === 0) for (const next of [...this.#runs.get(key) ?? []]) this.#start(key, next)
    })
    this.#writing.add(writing)
  }
}
