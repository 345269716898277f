/**
 * Writes a batch of files (D6, D7): every file goes to a temp file beside
 * its target, chunks straight to their offsets (copied from local files,
 * read from the block store, or handed over by the fetcher as they arrive:
 * never stored twice), then all temps are fsynced, renamed in step order
 * (new files several at once), and each directory fsynced once. The caller records the whole batch in
 * the index after that. A crash at any point leaves temp files (removed on
 * start) and complete files under real names, never a partial one.
 *
 * Two shortcuts keep unchanged bytes off user space: a replacement whose
 * chunks mostly sit where they were starts as a kernel copy of the old file
 * (checked by ino, mtime and size before and after) and only the chunks
 * that differ are written; a file that moved is renamed from its old path.
 */
import { logger } from '@libp2p/logger'
import { CustomProgressEvent } from '@homecloud/interface'
import { eachLimit } from '@homecloud/store'
import { APPLY_CLONE_MIN_FRACTION, APPLY_IO_CONCURRENCY, APPLY_META_CONCURRENCY, APPLY_SYNC_EVERY_BYTES, DEFAULT_MIN_FREE_FRACTION } from './constants.js'
import { ChunkUnavailableError, DiskFullError, IntegrityError } from './errors.js'
import { chunkOffsets, type LocalEntry } from './entry.js'
import { fsErrorCode, type FsReadHandle, type FsStat, type FsWriteHandle, type ShareWriteFs } from './fs.js'
import { checkSharePath } from './path-policy.js'
import {
  asDiskFull, checkExpected, closeSources, linkAside, matches, readLocal, removeAsides, removeQuietly, safeParent, tempName, withLocal, WriteRuns,
  type ChunkBytes, type WriteRun, type WriteRunsLimits
} from './apply-disk.js'
import type { ApplyInit, ApplyProgressEvents, PendingRename } from './apply.js'
import { cidKey, type ChunkLocation, type PlanStep } from './plan.js'
import type { FileStamp } from '@homecloud/store'
import type { AbortOptions, ProgressOptions } from '@homecloud/interface'
import type { CID } from 'multiformats/cid'

const log = logger('homecloud:sync:apply')

export type WriteFileStep = Extract<PlanStep, { action: 'write-file' }>

export interface FileBatchOptions extends AbortOptions, ProgressOptions<ApplyProgressEvents> {
  /** Bounds of the write calls that gather consecutive chunks (tests make them small). */
  runs?: Partial<WriteRunsLimits>
  /** Chunks (`cidKey`) the plan found nowhere on this device: fetched without looking locally first. */
  remote?: ReadonlySet<string>
  /** Chunks of files earlier batches of the same plan wrote (`cidKey` → place): read there rather than fetched again. */
  written?: ReadonlyMap<string, ChunkLocation>
}

export interface FileBatchResult {
  /**
   * Steps now durable on disk, in order, with the index entries to record (a
   * move adds its source's tombstone) and, for a file written here, the
   * stamp of its temp file for the store's index (`FileToIndex.stat`).
   */
  done: Array<{ step: WriteFileStep, entries: LocalEntry[], stamp?: FileStamp }>
  /** Source paths of moves done as a rename: their delete steps are done too. */
  moved: Set<string>
  errors: Array<{ step: WriteFileStep, error: Error }>
}

interface Job {
  step: WriteFileStep
  abs: string
  dir: string
  temp?: string
  /** A move done as a rename of this local file. */
  from?: { abs: string, dir: string }
  /** Places of this file not written yet (a gathered chunk counts until its write resolved). */
  missing: number
  error?: Error
  renamed?: boolean
  /** The temp file's inode and mtime once done (and the store's stamp, from an fstat): a rename keeps them, so they are the file's under its name. */
  stat?: Pick<FsStat, 'ino' | 'mtimeMs'> & { stamp?: FileStamp }
  /** A background fsync of the temp file running now (a kernel copy's, or one every APPLY_SYNC_EVERY_BYTES written). */
  flushing?: Promise<void>
  /** Bytes written since the last background fsync started. */
  unsynced: number
  /** A background fsync that failed: the file fails (the final fsync may no longer see the error). */
  syncError?: Error
}

interface Place { job: Job, offset: number, length: number }
interface Want { cid: CID, source?: ChunkLocation, places: Place[], filled: boolean, looked: boolean }

/** Writes `steps` (see the module comment). Throws only on abort and `DiskFullError`; other failures are per file. */
export async function writeFileBatch (steps: WriteFileStep[], init: ApplyInit, options: FileBatchOptions = {}): Promise<FileBatchResult> {
  const batch = new FileBatch(init, options)
  try {
    await batch.load(steps)
    return await batch.commit()
  } finally {
    await batch.cleanup()
    // the caller records the files after this returns: a plan's batches remove theirs once recorded (apply.ts)
    await removeAsides(init.fs, batch.takeAsides())
  }
}

/**
 * One batch in two phases, so a caller can load the next batch (create
 * temps, fetch) while this one commits (fsync, rename): `load`, then
 * `commit`, then always `cleanup`, and the names `takeAsides` gives are
 * removed once the batch is recorded (or failed).
 */
export class FileBatch {
  readonly #init: ApplyInit
  readonly #fs: ShareWriteFs
  readonly #options: FileBatchOptions
  readonly #jobs: Job[] = []
  readonly #wants = new Map<string, Want>()
  readonly #known = new Set<string>()
  readonly #temps: TempFiles
  readonly #sources = new Map<string, Promise<FsReadHandle | undefined>>()
  readonly #runs: WriteRuns<Job>
  /** Write calls and the chunks they wrote (the log shows how well runs gather). */
  #writes = { calls: 0, chunks: 0 }
  #diskFull?: DiskFullError
  /** Second names of big files replaced by this batch (`linkAside`), handed out by `takeAsides`. */
  readonly #asides: string[] = []

  constructor (init: ApplyInit, options: FileBatchOptions) {
    this.#init = init
    this.#fs = init.fs
    this.#options = options
    this.#temps = new TempFiles()
    this.#runs = new WriteRuns(async (job, run) => { await this.#writeRun(job, run) }, options.runs)
  }

  /** Checks every file, creates its temp file (or finds it is a rename), writes every chunk it can get and makes the temps durable. */
  async load (steps: WriteFileStep[]): Promise<void> {
    const signal = this.#options.signal
    const started = Date.now()
    for (const step of steps) {
      this.#jobs.push({ step, abs: `${this.#init.root}/${step.path}`, dir: '', missing: 0, unsynced: 0 })
    }
    // many files at once: each is several lstats and an open, round trips that would add up one after another
    await eachLimit(this.#jobs, APPLY_META_CONCURRENCY, async job => {
      signal?.throwIfAborted()
      this.#options.onProgress?.(new CustomProgressEvent('sync:apply:step', { path: job.step.path, action: job.step.action }))
      await this.#guard(job, async () => { await this.#prepare(job) })
    })
    const prepared = Date.now()
    await this.#fill()
    await closeSources(this.#sources)
    const filled = Date.now()
    // durable before the commit, so the fsyncs overlap another batch's commit; fewer at once than the metadata calls:
    // an fsync holds a thread of the pool the writes of a big file loading beside this batch need too
    await eachLimit(this.#jobs.filter(j => j.temp != null), APPLY_IO_CONCURRENCY, async job => {
      await this.#guard(job, async () => { await this.#temps.finish(job, this.#fs, job.step.entry.mode & 0o777, job.step.entry.mtime) })
    })
    log('batch of %d files loaded in %d ms (temp files %d ms, chunks %d ms in %d write calls for %d chunks, fsync %d ms)',
      steps.length, Date.now() - started, prepared - started, filled - prepared, this.#writes.calls, this.#writes.chunks, Date.now() - filled)
  }

  /** Makes the loaded files durable under their names; the entries to record, and the files that failed. */
  async commit (): Promise<FileBatchResult> {
    const started = Date.now()
    await this.#commit()
    const result: FileBatchResult = { done: [], moved: new Set(), errors: [] }
    for (const job of this.#jobs) {
      if (job.error != null || job.renamed !== true) {
        result.errors.push({ step: job.step, error: job.error ?? new Error(`${job.step.path} was not written`) })
        continue
      }
      const { step } = job
      // what was checked right before the rename (a move) or set on the temp file: no lstat after the rename, which
      // would take a file the user put there meanwhile for this version
      const stat = job.from != null ? step.moveFrom?.expect.local : job.stat
      if (stat == null) {
        result.errors.push({ step, error: new Error(`${step.path} was not written`) })
        continue
      }
      const entries = [withLocal(step.entry, stat)]
      if (job.from != null && step.moveFrom != null) {
        entries.push(withLocal(step.moveFrom.entry, undefined))
        result.moved.add(step.moveFrom.expect.path)
      }
      const stamp = job.from == null ? job.stat?.stamp : undefined
      result.done.push({ step, entries, ...(stamp != null ? { stamp } : {}) })
    }
    log('batch of %d files committed in %d ms', this.#jobs.length, Date.now() - started)
    return result
  }

  /** Runs `fn` for one file: its failure is that file's alone, except disk full and (when `abortable`) abort. */
  async #guard (job: Job, fn: () => Promise<void>, abortable = true): Promise<void> {
    if (job.error != null) return
    try {
      await fn()
    } catch (err) {
      if (abortable) this.#options.signal?.throwIfAborted()
      const full = await asDiskFull(err, this.#fs, this.#init.root, job.step.path, job.step.entry.size, this.#fraction)
      if (full instanceof DiskFullError) throw full
      job.error ??= full as Error
    }
  }

  get #fraction (): number {
    return this.#init.minFreeFraction ?? DEFAULT_MIN_FREE_FRACTION
  }

  /** Checks the paths, then a rename for a move, else a temp file: a kernel copy of the old version, or empty. */
  async #prepare (job: Job): Promise<void> {
    const { step } = job
    const { fs, root } = this.#init
    checkSharePath(step.path, this.#init.pathLimits)
    let size = 0
    for (const c of step.chunks) {
      if (c.offset !== size) throw new IntegrityError(`${step.path}: chunk at ${c.offset} leaves a gap or overlap at ${size}`)
      size += c.length
    }
    if (size !== step.entry.size) throw new IntegrityError(`${step.path}: chunks hold ${size} bytes, the entry says ${step.entry.size}`)
    job.dir = await safeParent(fs, root, step.path, true, this.#known)
    await checkExpected(fs, job.abs, step.path, step.expect)
    if (await this.#canRename(job)) return
    const temp = `${job.dir}/${tempName()}`
    const base = this.#cloneBase(step)
    let covered: Set<number> | undefined
    if (base != null) covered = await this.#clone(job, base.entry, temp, base.covered)
    if (covered == null) {
      job.temp = temp
      this.#temps.add(job, await fs.createExclusive(temp, 0o600))
    }
    step.chunks.forEach((c, i) => {
      if (covered?.has(i) === true) return
      const key = cidKey(c.cid)
      let want = this.#wants.get(key)
      if (want == null) {
        want = { cid: c.cid, places: [], filled: false, looked: false }
        this.#wants.set(key, want)
      }
      want.source ??= c.source
      want.places.push({ job, offset: c.offset, length: c.length })
      job.missing++
    })
  }

  /** A move whose source is exactly what the index says, with the same mode and mtime: a rename, no data read. */
  async #canRename (job: Job): Promise<boolean> {
    const from = job.step.moveFrom?.expect
    const { entry } = job.step
    if (from == null || from.type !== 'file' || from.mode !== entry.mode || from.mtime !== entry.mtime || from.size !== entry.size) return false
    try {
      checkSharePath(from.path, this.#init.pathLimits)
      const abs = `${this.#init.root}/${from.path}`
      const dir = await safeParent(this.#fs, this.#init.root, from.path, false, this.#known)
      await checkExpected(this.#fs, abs, from.path, from)
      job.from = { abs, dir }
      return true
    } catch (err) {
      log('%s: not renamed from %s (%s): written instead', job.step.path, from.path, (err as Error).message)
      return false
    }
  }

  /** The local file (the old version, or a move's source) holding most of the new chunks at the same offsets, if any. */
  #cloneBase (step: WriteFileStep): { entry: LocalEntry, covered: Set<number> } | undefined {
    let best: { entry: LocalEntry, covered: Set<number>, bytes: number } | undefined
    for (const old of [step.expect, step.moveFrom?.expect]) {
      if (old == null || old.type !== 'file' || old.deleted === true || old.chunks == null || old.local == null) continue
      const offsets = chunkOffsets(old.chunks)
      const at = new Map<number, string>()
      old.chunks.forEach((c, i) => at.set(offsets[i], `${cidKey(c.cid)}/${c.length}`))
      const covered = new Set<number>()
      let bytes = 0
      step.chunks.forEach((c, i) => {
        if (at.get(c.offset) === `${cidKey(c.cid)}/${c.length}`) {
          covered.add(i)
          bytes += c.length
        }
      })
      if (bytes > 0 && bytes >= step.entry.size * APPLY_CLONE_MIN_FRACTION && bytes > (best?.bytes ?? 0)) best = { entry: old, covered, bytes }
    }
    return best
  }

  /**
   * `temp` as a kernel copy of `old`, cut to the new size; the indices of
   * the chunks it already holds. Undefined (nothing left behind) when the
   * old file is not exactly what the index says, before or after the copy.
   */
  async #clone (job: Job, old: LocalEntry, temp: string, covered: Set<number>): Promise<Set<number> | undefined> {
    const { fs, root } = this.#init
    const abs = `${root}/${old.path}`
    try {
      checkSharePath(old.path, this.#init.pathLimits)
      if (old.path !== job.step.path) await safeParent(fs, root, old.path, false, this.#known)
      await checkExpected(fs, abs, old.path, old)
    } catch {
      return undefined
    }
    try {
      await fs.copyFile(abs, temp)
    } catch (err) {
      await removeQuietly(fs, temp)
      const code = fsErrorCode(err)
      if (code === 'ENOSPC' || code === 'EDQUOT') throw err
      log('%s: no kernel copy of %s (%s): written instead', job.step.path, old.path, code)
      return undefined
    }
    job.temp = temp
    try {
      // changed while it was copied: its bytes are not what the index says
      await checkExpected(fs, abs, old.path, old)
      const handle = await fs.openWrite(temp)
      this.#temps.add(job, handle)
      if (old.size !== job.step.entry.size) await handle.truncate(job.step.entry.size)
      // where the copy is a real copy (no reflink) its bytes reach the disk while the changed chunks arrive
      syncInBackground(job, handle)
      return covered
    } catch (err) {
      await this.#temps.drop(job)
      job.temp = undefined
      await removeQuietly(fs, temp)
      if (old.path === job.step.path) throw err
      return undefined
    }
  }

  /** Chunks from local files and the block store; the rest from the fetcher, written as they arrive. */
  async #fill (): Promise<void> {
    const { remote, written } = this.#options
    await eachLimit(this.#wants.values(), APPLY_IO_CONCURRENCY, async want => {
      const key = cidKey(want.cid)
      want.source ??= written?.get(key)
      if ((remote?.has(key) !== true || want.source != null) && want.places.some(p => p.job.error == null)) await this.#fillLocal(want)
    })
    await this.#runs.flushAll()
    this.#throwIfFull()
    const toFetch = new Map<string, Want>()
    for (const [key, want] of this.#wants) if (!want.filled && want.places.some(p => p.job.error == null)) toFetch.set(key, want)
    const fetcher = this.#init.fetcher
    if (toFetch.size > 0 && fetcher != null) {
      const fetchStarted = Date.now()
      try {
        const fetched = await fetcher.fetch([...toFetch.values()].map(w => w.cid), {
          signal: this.#options.signal,
          sink: {
            // the plan (or the look above) found these nowhere on this device
            has: async (cid) => toFetch.get(cidKey(cid))?.filled ?? false,
            put: async (cid, bytes) => {
              // bytes are verified by the fetcher (D5)
              const want = toFetch.get(cidKey(cid))
              if (want != null && !want.filled) await this.#place(want, bytes)
              this.#throwIfFull()
            },
            // a block that arrived in pieces is written piece by piece, never joined into a copy
            putPieces: async (cid, pieces) => {
              const want = toFetch.get(cidKey(cid))
              if (want != null && !want.filled) await this.#place(want, pieces)
              this.#throwIfFull()
            }
          }
        })
        log('fetched %d chunks in %d ms: %o', toFetch.size, Date.now() - fetchStarted, fetched)
      } catch (err) {
        this.#options.signal?.throwIfAborted()
        this.#throwIfFull()
        // the files whose chunks did not arrive fail alone below
        log('fetch of %d chunks failed: %e', toFetch.size, err)
      }
      // a fetcher that stopped waiting for its puts
      await this.#runs.flushAll()
      this.#throwIfFull()
      // a fetcher that ignored the sink put them in the block store
      for (const want of toFetch.values()) {
        if (want.filled || !want.places.some(p => p.job.error == null)) continue
        want.looked = false
        await this.#fillLocal(want)
      }
      await this.#runs.flushAll()
      this.#throwIfFull()
    }
    for (const job of this.#jobs) {
      if (job.error == null && job.missing > 0) job.error = new ChunkUnavailableError(`${job.step.path}: ${job.missing} chunks are not available on this device or from any member online`)
    }
  }

  /** A chunk from the local file that has it or the block store (hash-checked); false when neither does. */
  async #fillLocal (want: Want): Promise<boolean> {
    if (want.looked) return want.filled
    want.looked = true
    const { cid, source } = want
    let bytes: Uint8Array | undefined
    if (source != null) {
      const read = await readLocal(this.#fs, this.#init.root, source.path, source.offset, source.length, this.#sources)
      // the source file may have changed since it was indexed: then the store or the fetcher
      if (read != null && await matches(cid, read)) bytes = read
    }
    if (bytes == null) {
      const stored = await this.#init.reader.get(cid, { signal: this.#options.signal }).catch(() => undefined)
      if (stored != null && await matches(cid, stored)) bytes = stored
    }
    if (bytes == null) return false
    await this.#place(want, bytes)
    return true
  }

  /** Writes verified bytes to every place that needs them; a failed write fails its file (disk full: all). */
  async #place (want: Want, bytes: ChunkBytes): Promise<void> {
    want.filled = true
    for (const place of want.places) {
      const { job } = place
      if (job.error != null) continue
      if (bytes.byteLength !== place.length) {
        this.#fail(job, new IntegrityError(`${job.step.path}: chunk ${want.cid.toString()} has ${bytes.byteLength} bytes, the entry gives it ${place.length}`))
        continue
      }
      // written with the chunks of the file that arrive while another write of it is under way: one call
      await this.#runs.add(job, bytes, place.offset)
    }
  }

  /** One write call for consecutive chunks of a file; only then do they count as written. Never rejects. */
  async #writeRun (job: Job, run: WriteRun): Promise<void> {
    try {
      if (job.error != null) return
      this.#writes.calls++
      await this.#temps.write(job, run.pieces, run.offset, run.bytes)
      job.missing -= run.chunks
      this.#writes.chunks += run.chunks
    } catch (err) {
      const full = await asDiskFull(err, this.#fs, this.#init.root, job.step.path, job.step.entry.size, this.#fraction).catch(() => err)
      if (full instanceof DiskFullError) this.#diskFull ??= full
      this.#fail(job, full as Error)
    }
  }

  /** The file fails: its gathered chunks are never written. */
  #fail (job: Job, error: Error): void {
    job.error ??= error
    this.#runs.drop(job)
  }

  #throwIfFull (): void {
    if (this.#diskFull != null) throw this.#diskFull
  }

  /** Rename in step order, or several at once when all are new files (each target checked once more; the temps are durable since `load`), fsync each directory once. */
  async #commit (): Promise<void> {
    const signal = this.#options.signal
    signal?.throwIfAborted()
    const t0 = Date.now()
    await this.#recordPending()
    const t1 = Date.now()
    // from here to the index the batch runs to its end: an abort between renames would leave files the index does not know
    const dirs = new Map<string, Job[]>()
    const rename = async (job: Job): Promise<void> => {
      await this.#guard(job, async () => {
        const { step } = job
        await checkExpected(this.#fs, job.abs, step.path, step.expect)
        if (job.from != null && step.moveFrom != null) {
          await checkExpected(this.#fs, job.from.abs, step.moveFrom.expect.path, step.moveFrom.expect)
          await this.#init.beforeReplace?.(step.moveFrom.expect, step.moveFrom.entry, { movedTo: step.entry })
          await this.#renameOver(job, job.from.abs)
          dirs.set(job.from.dir, [...dirs.get(job.from.dir) ?? [], job])
        } else {
          if (step.expect != null) await this.#init.beforeReplace?.(step.expect, step.entry, {})
          await this.#renameOver(job, job.temp as string)
        }
        job.renamed = true
        dirs.set(job.dir, [...dirs.get(job.dir) ?? [], job])
      }, false)
    }
    // files new on this device (no move, nothing replaced): no rename depends on another, so several go at once
    if (this.#jobs.every(j => j.from == null && j.step.moveFrom == null && j.step.expect == null)) {
      await eachLimit(this.#jobs, APPLY_META_CONCURRENCY, rename)
    } else {
      for (const job of this.#jobs) await rename(job)
    }
    const t2 = Date.now()
    await eachLimit(dirs, APPLY_IO_CONCURRENCY, async ([dir, jobs]) => {
      try {
        await this.#fs.fsyncDir(dir)
      } catch (err) {
        // the files are whole under their names; unrecorded, the next scan picks them up
        for (const job of jobs) job.error ??= err as Error
      }
    })
    log('batch of %d files: pending records %d ms, renames %d ms, directory fsyncs %d ms', this.#jobs.length, t1 - t0, t2 - t1, Date.now() - t2)
  }

  /** Renames `from` over the job's target; a big file there is linked aside first (`linkAside`). */
  async #renameOver (job: Job, from: string): Promise<void> {
    const aside = await linkAside(this.#fs, job.abs, job.dir, job.step.expect, this.#init.asideMinBytes)
    if (aside != null) this.#asides.push(aside)
    await this.#fs.rename(from, job.abs)
  }

  /** Hands the caller the inode each file will have under its name (a rename keeps it) before any rename. */
  async #recordPending (): Promise<void> {
    if (this.#init.beforeRenames == null) return
    const pending: PendingRename[] = []
    for (const job of this.#jobs) {
      if (job.error != null) continue
      const { step } = job
      const move = job.from != null ? step.moveFrom : undefined
      const ino = move != null ? move.expect.local?.ino : job.stat?.ino
      if (ino == null) continue
      pending.push({ path: step.path, ino, entries: move != null ? [step.entry, move.entry] : [step.entry] })
    }
    await this.#init.beforeRenames(pending, { signal: this.#options.signal })
  }

  /** The second names of the files this batch replaced, for the caller to remove (`removeAsides`) once the batch is recorded. */
  takeAsides (): string[] {
    return this.#asides.splice(0)
  }

  /** Closes everything and removes the temp files of files not renamed into place. */
  async cleanup (): Promise<void> {
    await this.#runs.abandon()
    await Promise.all(this.#jobs.map(async j => j.flushing))
    await this.#temps.closeAll()
    await closeSources(this.#sources)
    for (const job of this.#jobs) {
      if (job.temp != null && job.renamed !== true) await removeQuietly(this.#fs, job.temp)
    }
  }
}

/**
 * The open temp files of a batch: each stays open from its creation to its
 * fsync, so a small file costs one open. A batch has at most
 * APPLY_BATCH_FILES files, which bounds the handles.
 */
class TempFiles {
  readonly #open = new Map<Job, FsWriteHandle>()

  add (job: Job, handle: FsWriteHandle): void {
    this.#open.set(job, handle)
  }

  /** Closes the handle of a temp file that is about to be removed. */
  async drop (job: Job): Promise<void> {
    const handle = this.#open.get(job)
    this.#open.delete(job)
    await handle?.close().catch(() => {})
  }

  /** Writes `pieces` (`bytes` in all) one after another from `offset`. */
  async write (job: Job, pieces: Uint8Array[], offset: number, bytes: number): Promise<void> {
    const handle = this.#open.get(job)
    if (handle == null) throw new Error(`${job.step.path}: its temp file is closed`)
    if (pieces.length === 1) {
      await handle.write(pieces[0], offset)
    } else if (handle.writev != null) {
      // one system call for consecutive chunks and their pieces
      await handle.writev(pieces, offset)
    } else {
      let at = offset
      for (const piece of pieces) {
        await handle.write(piece, at)
        at += piece.byteLength
      }
    }
    job.unsynced += bytes
    if (job.unsynced >= APPLY_SYNC_EVERY_BYTES && job.flushing == null) syncInBackground(job, handle)
  }

  /** Mode, mtime, fsync, close: the temp file is durable and done; its inode and mtime (and stamp) go to `job.stat`. */
  async finish (job: Job, fs: ShareWriteFs, mode: number, mtimeMs: number): Promise<void> {
    const handle = this.#open.get(job)
    if (handle == null || job.temp == null) throw new Error(`${job.step.path}: its temp file is closed`)
    this.#open.delete(job)
    try {
      await job.flushing
      if (job.syncError != null) throw job.syncError
      await Promise.all([handle.chmod(mode), handle.utimes(mtimeMs)])
      // an fstat of the open file also gives the store's stamp: the index records the file without another lstat
      const [, stat] = await Promise.all([handle.sync(), handle.stat != null ? handle.stat() : fs.lstat(job.temp)])
      job.stat = stat
    } finally {
      await handle.close()
    }
  }

  async closeAll (): Promise<void> {
    const handles = [...this.#open.values()]
    this.#open.clear()
    await Promise.all(handles.map(async h => h.close().catch(() => {})))
  }
}

/**
 * Starts an fsync of a temp file that nobody awaits but `finish` and
 * `cleanup` (the handle stays open until it ends); one per file at a time.
 */
function syncInBackground (job: Job, handle: FsWriteHandle): void {
  job.unsynced = 0
  const flushing: Promise<void> = handle.sync().catch((err: Error) => { job.syncError ??= err }).finally(() => {
    if (job.flushing === flushing) job.flushing = undefined
  })
  job.flushing = flushing
}
