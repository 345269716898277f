import { randomBytes } from 'node:crypto'
import { CustomProgressEvent } from '@homecloud/interface'
import { logger } from '@libp2p/logger'
import { sha256 } from 'multiformats/hashes/sha2'
import { DEFAULT_MIN_FREE_FRACTION, TEMP_PREFIX } from './constants.js'
import { ChunkUnavailableError, DiskFullError, IntegrityError, LocalChangedError, PathRejectedError } from './errors.js'
import { fsErrorCode, type FsReadHandle, type FsStat, type ShareFs } from './fs.js'
import { checkSharePath, type PathLimits } from './path-policy.js'
import { equalBytes } from './snapshot.js'
import type { LocalEntry, ShareEntry } from './entry.js'
import type { PlannedChunk, PlanStep, PullPlan } from './plan.js'
import type { AbortOptions, ProgressEvent, ProgressOptions } from '@homecloud/interface'
import type { CID } from 'multiformats/cid'

const log = logger('homecloud:sync:apply')

/** Reads verified chunks from the block store (undefined: not there). */
export interface ChunkReader {
  get(cid: CID, options?: AbortOptions): Promise<Uint8Array | undefined>
}

/** Fetches chunks from the swarm into the block store (the multi-source fetcher). */
export interface ChunkFetcher {
  fetch(cids: CID[], options?: AbortOptions): Promise<unknown>
}

export interface ApplyInit {
  fs: ShareFs
  /** Absolute path of the share folder. */
  root: string
  reader: ChunkReader
  /** Used when a chunk is neither in a local file nor in the block store. */
  fetcher?: ChunkFetcher
  /** Free space to keep on the share's filesystem, as a fraction of its size (default 1%). */
  minFreeFraction?: number
  pathLimits?: Partial<PathLimits>
  /**
   * Called before a file is replaced or deleted (it is still intact):
   * history keeps what `next` (the entry that takes its place; a tombstone
   * for a delete) does not hold. When `next` is a file, it is fully written
   * and verified by then.
   */
  beforeReplace?(old: LocalEntry, next: ShareEntry, options: AbortOptions): Promise<void>
}

export type ApplyProgressEvents =
  | ProgressEvent<'sync:apply:step', { path: string, action: PlanStep['action'] }>
  | ProgressEvent<'sync:apply:error', { path: string, code: string, message: string }>

export interface ApplyPlanInit extends ApplyInit {
  /** Records a step's result in the index; called only after the change is durable on disk. */
  onApplied(entry: LocalEntry, options: AbortOptions): Promise<void>
}

export interface ApplyResult {
  applied: number
  errors: Array<{ path: string, error: Error }>
}

/**
 * Applies a pull plan step by step. A step that fails (bad path, local
 * change, missing chunk) fails alone and is reported; `DiskFullError` and an
 * abort stop the run (the share pauses), with the target and index untouched.
 */
export async function applyPlan (plan: PullPlan, init: ApplyPlanInit, options: AbortOptions & ProgressOptions<ApplyProgressEvents> = {}): Promise<ApplyResult> {
  const result: ApplyResult = { applied: 0, errors: [] }
  if (plan.fetch.length > 0 && init.fetcher != null) {
    try {
      await init.fetcher.fetch(plan.fetch, { signal: options.signal })
    } catch (err) {
      options.signal?.throwIfAborted()
      // the files whose chunks did not arrive fail alone below
      log('fetch of %d chunks failed: %e', plan.fetch.length, err)
    }
  }
  for (const step of plan.steps) {
    options.signal?.throwIfAborted()
    options.onProgress?.(new CustomProgressEvent('sync:apply:step', { path: step.path, action: step.action }))
    try {
      const entry = await applyStep(step, init, options)
      await init.onApplied(entry, { signal: options.signal })
      result.applied++
    } catch (err) {
      if (err instanceof DiskFullError) throw err
      options.signal?.throwIfAborted()
      const error = err as Error
      log.error('%s %s failed: %s', step.action, step.path, error.message)
      options.onProgress?.(new CustomProgressEvent('sync:apply:error', { path: step.path, code: (error as { code?: string }).code ?? 'ERR_UNKNOWN', message: error.message }))
      result.errors.push({ path: step.path, error })
    }
  }
  return result
}

/**
 * Makes one plan step durable on disk (D7) and returns the index entry to
 * record: files go through a temp file in the target's directory, fsync,
 * rename, directory fsync. The path is checked by path policy and every
 * parent with lstat: nothing is written through a symlink.
 */
export async function applyStep (step: PlanStep, init: ApplyInit, options: AbortOptions = {}): Promise<LocalEntry> {
  const { fs, root } = init
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
        if (step.expect.type === 'dir') await fs.rmdir(abs)
        else await fs.unlink(abs)
      } catch (err) {
        if (fsErrorCode(err) === 'ENOTEMPTY') throw new LocalChangedError(step.path, 'directory still holds files that are not synced; kept')
        throw err
      }
      await fs.fsyncDir(dir)
      return withLocal(step.entry, undefined)
    }
    case 'mkdir': {
      if (step.expect != null) {
        await init.beforeReplace?.(step.expect, step.entry, options)
        await fs.unlink(abs)
      }
      await fs.mkdir(abs, step.entry.mode | 0o700)
      await fs.fsyncDir(dir)
      return withLocal(step.entry, await fs.lstat(abs))
    }
    case 'symlink': {
      const temp = `${dir}/${tempName()}`
      await fs.symlink(step.entry.target ?? '', temp)
      return replaceWith(init, temp, abs, dir, step, options)
    }
    case 'write-file': {
      await checkFreeSpace(fs, root, step.entry.size, init.minFreeFraction ?? DEFAULT_MIN_FREE_FRACTION)
      const temp = `${dir}/${tempName()}`
      await writeTemp(init, temp, step.entry, step.chunks, options)
      return replaceWith(init, temp, abs, dir, step, options)
    }
  }
}

/** Renames a finished temp file (or link) over the target, after checking the target once more. */
async function replaceWith (init: ApplyInit, temp: string, abs: string, dir: string, step: PlanStep & { expect?: LocalEntry }, options: AbortOptions): Promise<LocalEntry> {
  const { fs } = init
  try {
    // the user may have edited the target while the file was being written
    await checkExpected(fs, abs, step.path, step.expect)
    if (step.expect != null) await init.beforeReplace?.(step.expect, step.entry, options)
    await fs.rename(temp, abs)
  } catch (err) {
    await removeQuietly(fs, temp)
    throw err
  }
  await fs.fsyncDir(dir)
  return withLocal(step.entry, await fs.lstat(abs))
}

function withLocal (entry: ShareEntry, stat: Pick<FsStat, 'ino' | 'mtimeMs'> | undefined): LocalEntry {
  const { local: _drop, ...clean } = entry as LocalEntry
  return stat == null ? clean : { ...clean, local: { ino: stat.ino, mtimeMs: stat.mtimeMs } }
}

function tempName (): string {
  return `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`
}

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

/** Each parent of `path` below the root, by lstat: a real directory (created when missing), never a symlink. */
async function safeParent (fs: ShareFs, root: string, path: string, create: boolean): Promise<string> {
  let dir = root
  const parts = path.split('/')
  for (let i = 0; i < parts.length - 1; i++) {
    const parent = dir
    dir = `${dir}/${parts[i]}`
    let stat: FsStat | undefined
    try {
      stat = await fs.lstat(dir)
    } catch (err) {
      if (fsErrorCode(err) !== 'ENOENT') throw err
      if (!create) throw new LocalChangedError(path, `${parts.slice(0, i + 1).join('/')} was removed locally`, { cause: err })
    }
    if (stat == null) {
      await fs.mkdir(dir, 0o755)
      // the new directory entry must survive a power loss before a file inside it is recorded
      await fs.fsyncDir(parent)
      continue
    }
    if (stat.type === 'symlink') throw new PathRejectedError(path, 'symlinked-parent', `${parts.slice(0, i + 1).join('/')} is a symlink: never written through`)
    if (stat.type !== 'dir') throw new PathRejectedError(path, 'parent-not-directory', `${parts.slice(0, i + 1).join('/')} is not a directory`)
  }
  return dir
}

/** Is what is on disk at `abs` what the index says (`expect`; undefined: nothing)? */
async function checkExpected (fs: ShareFs, abs: string, path: string, expect: LocalEntry | undefined): Promise<void> {
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

/** Writes the file's chunks to a new temp file, sets mode and mtime, fsyncs it. Removes it on any failure. */
async function writeTemp (init: ApplyInit, temp: string, entry: ShareEntry, chunks: PlannedChunk[], options: AbortOptions): Promise<void> {
  const { fs } = init
  const handle = await fs.createExclusive(temp, 0o600)
  const sources = new Map<string, FsReadHandle | undefined>()
  let closed = false
  try {
    let written = 0
    for (const chunk of chunks) {
      options.signal?.throwIfAborted()
      const bytes = await chunkBytes(init, chunk, sources, options)
      await handle.write(bytes, chunk.offset)
      written += bytes.byteLength
    }
    if (written !== entry.size) throw new IntegrityError(`${entry.path}: chunks hold ${written} bytes, the entry says ${entry.size}`)
    await handle.chmod(entry.mode & 0o777)
    await handle.utimes(entry.mtime)
    await handle.sync()
    closed = true
    await handle.close()
  } catch (err) {
    if (!closed) await handle.close().catch(() => {})
    await removeQuietly(fs, temp)
    const code = fsErrorCode(err)
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      const { freeBytes, totalBytes } = await fs.statfs(init.root).catch(() => ({ freeBytes: 0, totalBytes: 0 }))
      throw new DiskFullError(`disk full while writing ${entry.path}`, { freeBytes, neededBytes: entry.size, reserveBytes: Math.ceil(totalBytes * (init.minFreeFraction ?? DEFAULT_MIN_FREE_FRACTION)) }, { cause: err })
    }
    throw err
  } finally {
    for (const h of sources.values()) await h?.close().catch(() => {})
  }
}

/**
 * A chunk's bytes, hashed against its CID: from the local file that has
 * it, else from the block store, else fetched into the block store first.
 */
async function chunkBytes (init: ApplyInit, chunk: PlannedChunk, sources: Map<string, FsReadHandle | undefined>, options: AbortOptions): Promise<Uint8Array> {
  if (chunk.source != null) {
    const bytes = await readLocal(init, chunk.source.path, chunk.source.offset, chunk.length, sources)
    // the source file may have changed since it was indexed: then fall back
    if (bytes != null && await matches(chunk.cid, bytes)) return bytes
  }
  let bytes = await init.reader.get(chunk.cid, options)
  if (bytes == null && init.fetcher != null) {
    await init.fetcher.fetch([chunk.cid], options)
    bytes = await init.reader.get(chunk.cid, options)
  }
  if (bytes == null) throw new ChunkUnavailableError(`chunk ${chunk.cid.toString()} is not available`)
  if (!await matches(chunk.cid, bytes)) throw new IntegrityError(`chunk ${chunk.cid.toString()} does not match its hash`)
  return bytes
}

async function readLocal (init: ApplyInit, path: string, offset: number, length: number, sources: Map<string, FsReadHandle | undefined>): Promise<Uint8Array | undefined> {
  if (!sources.has(path)) {
    // opened without following a final symlink; whatever it reads is hash-checked
    sources.set(path, await init.fs.openRead(`${init.root}/${path}`).catch(() => undefined))
  }
  const handle = sources.get(path)
  if (handle == null) return undefined
  const buf = new Uint8Array(length)
  let done = 0
  while (done < length) {
    const n = await handle.read(buf.subarray(done), offset + done).catch(() => 0)
    if (n === 0) return undefined
    done += n
  }
  return buf
}

async function matches (cid: CID, bytes: Uint8Array): Promise<boolean> {
  if (cid.multihash.code !== sha256.code) return false
  return equalBytes((await sha256.digest(bytes)).bytes, cid.multihash.bytes)
}

async function removeQuietly (fs: ShareFs, path: string): Promise<void> {
  await fs.unlink(path).catch(err => {
    if (fsErrorCode(err) !== 'ENOENT') log.error('could not remove temp file %s: %e', path, err)
  })
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
