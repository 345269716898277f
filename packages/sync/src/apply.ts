import { CustomProgressEvent } from '@homecloud/interface'
import { logger } from '@libp2p/logger'
import { APPLY_BATCH_BYTES, APPLY_BATCH_CHUNKS, APPLY_BATCH_FILES, APPLY_BATCHES_IN_FLIGHT, APPLY_BATCHES_LOADING, DEFAULT_MIN_FREE_FRACTION, TEMP_PREFIX } from './constants.js'
import { DiskFullError, errorCode, LocalChangedError } from './errors.js'
import { fsErrorCode, type ShareFs, type ShareWriteFs } from './fs.js'
import { checkSharePath, type PathLimits } from './path-policy.js'
import { AsideRemovals, checkExpected, checkFreeSpace, linkAside, removeAsides, removeQuietly, safeParent, tempName, unlinkOrAside, withLocal } from './apply-disk.js'
import { FileBatch, writeFileBatch, type FileBatchOptions, type FileBatchResult, type WriteFileStep } from './apply-batch.js'
import type { LocalEntry, ShareEntry } from './entry.js'
import { cidKey, type ChunkLocation, type PlanStep, type PullPlan } from './plan.js'
import type { ChunkSink } from '@homecloud/exchange'
import type { FileStamp } from '@homecloud/store'
import type { AbortOptions, ProgressEvent, ProgressOptions } from '@homecloud/interface'
import type { CID } from 'multiformats/cid'

export { checkFreeSpace }

const log = logger('homecloud:sync:apply')

/** Entries named in the error of a directory that cannot be removed. */
const UNSYNCED_NAMES_SHOWN = 5

/** Reads verified chunks from the block store (undefined: not there). */
export interface ChunkReader {
  get(cid: CID, options?: AbortOptions): Promise<Uint8Array | undefined>
}

/**
 * Fetches chunks from the swarm (the multi-source fetcher). Apply passes a
 * `sink` that writes each verified chunk straight to its places in the temp
 * files; without one they go to the block store.
 */
export interface ChunkFetcher {
  fetch(cids: CID[], options?: AbortOptions & { sink?: ChunkSink }): Promise<unknown>
}

export interface ApplyInit {
  fs: ShareWriteFs
  /** Absolute path of the share folder. */
  root: string
  reader: ChunkReader
  /** Used when a chunk is neither in a local file nor in the block store. */
  fetcher?: ChunkFetcher
  /** Free space to keep on the share's filesystem, as a fraction of its size (default 1%). */
  minFreeFraction?: number
  pathLimits?: Partial<PathLimits>
  /** Files at least this big are linked aside before a rename replaces them, renamed aside for a delete or type change (default APPLY_ASIDE_MIN_BYTES; tests make it small). */
  asideMinBytes?: number
  /**
   * Called before a file is replaced or deleted (it is still intact):
   * history keeps what `next` (the entry that takes its place; a tombstone
   * for a delete) does not hold. When `next` is a file, it is fully written
   * and verified by then. A file that moved is deleted with `movedTo`, the
   * entry that now holds its chunks.
   */
  beforeReplace?(old: LocalEntry, next: ShareEntry, options: AbortOptions & { movedTo?: ShareEntry }): Promise<void>
  /**
   * Called once per batch of files, after their temps are durable and just
   * before the renames: the caller keeps these records until the batch is in
   * the index, so a crash between rename and index is recognised on start
   * (the same inode under the name) rather than taken for a local edit.
   */
  beforeRenames?(pending: PendingRename[], options: AbortOptions): Promise<void>
}

/** A file about to be renamed into place: `ino` is the inode it will have there; `entries` what the index then records. */
export interface PendingRename {
  path: string
  ino: number
  entries: ShareEntry[]
}

export type ApplyProgressEvents =
  | ProgressEvent<'sync:apply:step', { path: string, action: PlanStep['action'] }>
  | ProgressEvent<'sync:apply:done', { path: string, action: PlanStep['action'], ok: boolean }>
  | ProgressEvent<'sync:apply:error', { path: string, code: string, message: string }>

export interface ApplyPlanInit extends ApplyInit {
  /**
   * Records results in the index, called only once they are durable on
   * disk: one call per batch of files (the whole batch at once) or per step.
   * `stats`: share-relative path → the stamp of each file this batch wrote
   * (an fstat of its temp file before the rename), for the store's index
   * (`FileToIndex.stat`), so it records them without an lstat.
   */
  onApplied(entries: LocalEntry[], options: AppliedOptions): Promise<void>
}

export interface AppliedOptions extends AbortOptions {
  stats?: ReadonlyMap<string, FileStamp>
}

export interface ApplyResult {
  applied: number
  errors: Array<{ path: string, error: Error }>
}

/**
 * Applies a pull plan. Files are written in bounded batches (see
 * apply-batch.ts: chunks go straight into temp files, a batch is renamed,
 * fsynced and recorded together); other steps one by one, in plan order. A
 * step that fails (bad path, local change, missing chunk) fails alone and is
 * reported; `DiskFullError` and an abort stop the run (the share pauses),
 * with the targets and index of unfinished files untouched.
 */
export async function applyPlan (plan: PullPlan, init: ApplyPlanInit, options: AbortOptions & ProgressOptions<ApplyProgressEvents> = {}): Promise<ApplyResult> {
  const result: ApplyResult = { applied: 0, errors: [] }
  const remote = new Set(plan.fetch.map(cidKey))
  const moved = new Set<string>()
  const fraction = init.minFreeFraction ?? DEFAULT_MIN_FREE_FRACTION
  const done = (step: PlanStep, error?: Error): void => {
    options.onProgress?.(new CustomProgressEvent('sync:apply:done', { path: step.path, action: step.action, ok: error == null }))
    if (error == null) {
      result.applied++
      return
    }
    log.error('%s %s failed: %s', step.action, step.path, error.message)
    options.onProgress?.(new CustomProgressEvent('sync:apply:error', { path: step.path, code: errorCode(error), message: error.message }))
    result.errors.push({ path: step.path, error })
  }
  const record = async (entries: LocalEntry[], steps: PlanStep[], stats?: ReadonlyMap<string, FileStamp>): Promise<void> => {
    try {
      await init.onApplied(entries, { signal: options.signal, ...(stats != null ? { stats } : {}) })
    } catch (err) {
      options.signal?.throwIfAborted()
      for (const step of steps) done(step, err as Error)
      return
    }
    for (const step of steps) done(step)
  }

  let batch: WriteFileStep[] = []
  let chunks = 0
  let bytes = 0
  /** Bytes that may still be written before the reserve, read once per batch. */
  let room: number | undefined
  /** Where files already written hold each chunk, so a later batch copies a chunk an earlier one fetched. */
  const written = new Map<string, ChunkLocation>()
  /** Big files replaced or deleted are set aside; their names go once the change is recorded, in the background. */
  const removals = new AsideRemovals(init.fs)
  const pipeline = new WritePipeline(init, { ...options, remote, written }, removals, async (out) => {
    for (const { step } of out.done) {
      step.chunks.forEach(c => {
        const key = cidKey(c.cid)
        if (remote.has(key)) written.set(key, { path: step.path, offset: c.offset, length: c.length })
      })
    }
    for (const path of out.moved) moved.add(path)
    for (const { step, error } of out.errors) done(step, error)
    const stats = new Map<string, FileStamp>()
    for (const { step, stamp } of out.done) if (stamp != null) stats.set(step.path, stamp)
    if (out.done.length > 0) await record(out.done.flatMap(d => d.entries), out.done.map(d => d.step), stats)
  })
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return
    const steps = batch
    const size = bytes
    batch = []
    chunks = 0
    bytes = 0
    room = undefined
    await pipeline.add(steps, size)
  }
  const settle = async (): Promise<void> => {
    await flush()
    await pipeline.drain()
  }

  try {
    for (const step of plan.steps) {
      options.signal?.throwIfAborted()
      if (step.action === 'write-file') {
        const size = step.entry.size
        if (batch.length > 0 && (batch.length >= APPLY_BATCH_FILES || chunks + step.chunks.length > APPLY_BATCH_CHUNKS || bytes + size > Math.min(room ?? Infinity, APPLY_BATCH_BYTES))) await flush()
        if (room == null) {
          const { totalBytes, freeBytes } = await init.fs.statfs(init.root)
          // batches still loading grow their temp files yet
          room = freeBytes - Math.ceil(totalBytes * fraction) - pipeline.loadingBytes
        }
        // a file that does not fit even alone pauses the share (with the reason)
        if (batch.length === 0 && size > room) await checkFreeSpace(init.fs, init.root, size + pipeline.loadingBytes, fraction)
        batch.push(step)
        chunks += step.chunks.length
        bytes += size
        continue
      }
      await settle()
      if (step.action === 'delete' && moved.has(step.path)) {
        // renamed away with the batch that wrote its new path (and recorded there)
        done(step)
        continue
      }
      options.onProgress?.(new CustomProgressEvent('sync:apply:step', { path: step.path, action: step.action }))
      const asides: string[] = []
      try {
        await record([await applyOne(step, init, { asides, removals }, options)], [step])
      } catch (err) {
        if (err instanceof DiskFullError) throw err
        options.signal?.throwIfAborted()
        done(step, err as Error)
      } finally {
        removals.start(asides)
      }
    }
    await settle()
  } finally {
    // never return while a batch still loads or commits (its temp files are removed by then)
    await pipeline.idle()
  }
  return result
}

/**
 * File batches in flight: up to APPLY_BATCHES_LOADING load at once (temp
 * files created, chunks copied and fetched: a second fetch keeps the link
 * busy while the other ramps up or ends), and they commit (rename) one at a
 * time, each recorded in the index while the next one commits; at most
 * APPLY_BATCHES_IN_FLIGHT are not recorded yet. Big files (a batch of one
 * file of APPLY_BATCH_BYTES or more) count apart, with the same bounds: one
 * streaming for seconds does not take a slot from the small files. A loaded
 * batch commits without waiting for earlier ones that still load unless
 * they touch one of its paths (a target or a move's source), so a big file
 * does not hold back the small files behind it. The first failure stops the
 * rest.
 */
class WritePipeline {
  readonly #init: ApplyInit
  readonly #options: FileBatchOptions
  readonly #committed: (out: FileBatchResult) => Promise<void>
  readonly #removals: AsideRemovals
  /** Batches of small files, and big files (each a batch of its own): each kind has its own loading slots and bound. */
  readonly #lanes: Record<'files' | 'big', { loading: Set<Promise<void>>, running: Set<Promise<void>> }> = {
    files: { loading: new Set(), running: new Set() },
    big: { loading: new Set(), running: new Set() }
  }

  /** Every run, of both lanes. */
  readonly #running = new Set<Promise<void>>()
  /** Batches not recorded yet: the paths each touches, and its run. */
  readonly #uncommitted = new Map<Promise<void>, Set<string>>()
  /** The commit running now (or the last one): commits never overlap. */
  #committing: Promise<void> = Promise.resolve()
  #failure?: { err: unknown }
  /** File bytes of the batches still loading. */
  loadingBytes = 0

  constructor (init: ApplyInit, options: FileBatchOptions, removals: AsideRemovals, committed: (out: FileBatchResult) => Promise<void>) {
    this.#init = init
    this.#options = options
    this.#removals = removals
    this.#committed = committed
  }

  /** Starts loading `steps` once a loading slot is free; they commit after the batches before. */
  async add (steps: WriteFileStep[], bytes: number): Promise<void> {
    // a big file streams for seconds: in a slot of its own, the small files behind it keep loading two batches at once
    const lane = this.#lanes[steps.length === 1 && bytes >= APPLY_BATCH_BYTES ? 'big' : 'files']
    // loaded batches wait for their commit with their temp files open: bound those too
    while (this.#failure == null && (lane.loading.size >= APPLY_BATCHES_LOADING || lane.running.size >= APPLY_BATCHES_IN_FLIGHT)) {
      await Promise.race([...lane.loading, ...[...lane.running].map(async r => r.catch(() => {}))])
    }
    if (this.#failure != null) throw this.#failure.err
    const batch = new FileBatch(this.#init, this.#options)
    this.loadingBytes += bytes
    const loaded = batch.load(steps).finally(() => { this.loadingBytes -= bytes })
    const slot = loaded.then(() => {}, () => {})
    lane.loading.add(slot)
    void slot.then(() => { lane.loading.delete(slot) })
    const paths = touchedPaths(steps)
    const before = [...this.#uncommitted].filter(([, other]) => [...paths].some(p => other.has(p))).map(([run]) => run)
    const run = (async () => {
      try {
        await loaded
        await Promise.all(before)
        const out = await this.#exclusive(async () => {
          if (this.#failure != null) throw this.#failure.err
          return batch.commit()
        })
        // recorded while the next batch commits: they touch other paths (else it waits for this run)
        const started = Date.now()
        await this.#committed(out)
        log('batch of %d files recorded in %d ms', steps.length, Date.now() - started)
      } finally {
        await batch.cleanup()
        // recorded (or failed): the replaced files' blocks are freed off the path of the next commit
        this.#removals.start(batch.takeAsides())
      }
    })()
    this.#uncommitted.set(run, paths)
    this.#running.add(run)
    lane.running.add(run)
    const settled = (): void => {
      this.#running.delete(run)
      lane.running.delete(run)
      this.#uncommitted.delete(run)
    }
    void run.then(settled, (err: unknown) => {
      this.#failure ??= { err }
      settled()
    })
  }

  /** Runs `fn` once the commit before it is done. */
  async #exclusive <T> (fn: () => Promise<T>): Promise<T> {
    const previous = this.#committing
    const turn = Promise.withResolvers<void>()
    this.#committing = turn.promise
    try {
      await previous
      return await fn()
    } finally {
      turn.resolve()
    }
  }

  /** Every batch committed (aside names may still be going); throws the first failure. */
  async drain (): Promise<void> {
    await this.#settled()
    if (this.#failure != null) throw this.#failure.err
  }

  /** Every batch settled, whatever happened, and every aside name removed. */
  async idle (): Promise<void> {
    await this.#settled()
    await this.#removals.idle()
  }

  async #settled (): Promise<void> {
    while (this.#running.size > 0) await Promise.allSettled([...this.#running])
  }
}

/** The share paths a batch writes, renames from or replaces. */
function touchedPaths (steps: WriteFileStep[]): Set<string> {
  const paths = new Set<string>()
  for (const step of steps) {
    paths.add(step.path)
    if (step.moveFrom != null) paths.add(step.moveFrom.expect.path)
  }
  return paths
}

/**
 * Makes one plan step durable on disk (D7) and returns the index entry to
 * record: files go through a temp file in the target's directory, fsync,
 * rename, directory fsync. The path is checked by path policy and every
 * parent with lstat: nothing is written through a symlink.
 */
export async function applyStep (step: PlanStep, init: ApplyInit, options: AbortOptions = {}): Promise<LocalEntry> {
  const asides: string[] = []
  try {
    return await applyOne(step, init, { asides }, options)
  } finally {
    // the caller records the entry after this returns: only a plan removes aside names after its record
    await removeAsides(init.fs, asides)
  }
}

/** Where a step puts the names of big files it set aside (removed once it is recorded), and the removals running. */
interface StepAsides {
  asides: string[]
  removals?: AsideRemovals
}

async function applyOne (step: PlanStep, init: ApplyInit, set: StepAsides, options: AbortOptions): Promise<LocalEntry> {
  const { fs, root } = init
  if (step.action === 'write-file') {
    await checkFreeSpace(fs, root, step.entry.size, init.minFreeFraction ?? DEFAULT_MIN_FREE_FRACTION)
    // a move needs its delete step recorded too: only a plan does that
    const { moveFrom: _move, ...single } = step
    const out = await writeFileBatch([single], init, options)
    if (out.errors.length > 0) throw out.errors[0].error
    return out.done[0].entries[0]
  }
  checkSharePath(step.path, init.pathLimits)
  if (step.action === 'record') {
    return withLocal(step.entry, step.entry.deleted === true ? undefined : step.expect?.local != null ? step.expect.local : undefined)
  }
  const abs = `${root}/${step.path}`
  const dir = await safeParent(fs, root, step.path, step.action !== 'delete')
  await checkExpected(fs, abs, step.path, step.expect)
  switch (step.action) {
    case 'delete': {
      await init.beforeReplace?.(step.expect, step.entry, options)
      try {
        if (step.expect.type === 'dir') {
          // a big file deleted inside just before may still be going under its aside name
          await set.removals?.idle(abs)
          await fs.rmdir(abs)
        } else {
          await setAside(set, unlinkOrAside(fs, abs, dir, step.expect, init.asideMinBytes))
        }
      } catch (err) {
        const code = fsErrorCode(err)
        if (code === 'ENOTEMPTY' || code === 'EEXIST') throw new LocalChangedError(step.path, `it still holds ${await unsynced(fs, abs)}, which this change does not remove; kept`, { cause: err })
        throw err
      }
      await fs.fsyncDir(dir)
      return withLocal(step.entry, undefined)
    }
    case 'mkdir': {
      if (step.expect != null) {
        await init.beforeReplace?.(step.expect, step.entry, options)
        await setAside(set, unlinkOrAside(fs, abs, dir, step.expect, init.asideMinBytes))
      }
      await fs.mkdir(abs, step.entry.mode | 0o700)
      await fs.fsyncDir(dir)
      return withLocal(step.entry, await fs.lstat(abs))
    }
    case 'symlink': {
      const temp = `${dir}/${tempName()}`
      await fs.symlink(step.entry.target ?? '', temp)
      return replaceWith(init, temp, abs, dir, step, set, options)
    }
  }
}

/** Names what keeps a directory from being removed (a few of its entries), for the error the user sees. */
async function unsynced (fs: ShareFs, abs: string): Promise<string> {
  const names = (await fs.readdir(abs).catch(() => [])).sort()
  if (names.length === 0) return 'entries'
  const shown = names.slice(0, UNSYNCED_NAMES_SHOWN).map(n => JSON.stringify(n)).join(', ')
  return names.length > UNSYNCED_NAMES_SHOWN ? `${shown} and ${names.length - UNSYNCED_NAMES_SHOWN} more` : shown
}

/** Renames a finished temp file (or link) over the target, after checking the target once more. */
async function replaceWith (init: ApplyInit, temp: string, abs: string, dir: string, step: PlanStep & { expect?: LocalEntry }, set: StepAsides, options: AbortOptions): Promise<LocalEntry> {
  const { fs } = init
  let aside: string | undefined
  try {
    // the user may have edited the target while the file was being written
    await checkExpected(fs, abs, step.path, step.expect)
    if (step.expect != null) await init.beforeReplace?.(step.expect, step.entry, options)
    aside = await linkAside(fs, abs, dir, step.expect, init.asideMinBytes)
    await fs.rename(temp, abs)
  } catch (err) {
    await removeQuietly(fs, temp)
    if (aside != null) await removeAsides(fs, [aside])
    throw err
  }
  if (aside != null) set.asides.push(aside)
  await fs.fsyncDir(dir)
  return withLocal(step.entry, await fs.lstat(abs))
}

/** Keeps the aside name `setting` gives (if any) for removal once the step is recorded. */
async function setAside (set: StepAsides, setting: Promise<string | undefined>): Promise<void> {
  const aside = await setting
  if (aside != null) set.asides.push(aside)
}

/**
 * Removes temp files left by a write that did not finish (power loss,
 * kill -9). Walks the share without recursion and without following
 * symlinks. Returns how many were removed.
 */
export async function cleanupTempFiles (fs: ShareFs, root: string, options: AbortOptions = {}): Promise<number> {
  let removed = 0
  const stack = [root]
  while (stack.length > 0) {
    options.signal?.throwIfAborted()
    const dir = stack.pop() as string
    let names: string[]
    try {
      names = await fs.readdir(dir)
    } catch (err) {
      log.error('cannot read %s while removing temp files: %e', dir, err)
      continue
    }
    for (const name of names) {
      const path = `${dir}/${name}`
      const stat = await fs.lstat(path).catch(() => undefined)
      if (stat == null) continue
      if (stat.type === 'dir') stack.push(path)
      else if (name.startsWith(TEMP_PREFIX)) {
        await fs.unlink(path)
        removed++
      }
    }
  }
  if (removed > 0) log('removed %d leftover temp files in %s', removed, root)
  return removed
}
