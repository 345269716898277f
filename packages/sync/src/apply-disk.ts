/**
 * The disk-side checks of apply (D7), shared by single steps and batches:
 * parents are real directories (never symlinks), the target is what the
 * index says, there is room, and chunks read from local files hash right.
 */
import { randomBytes } from 'node:crypto'
import { logger } from '@libp2p/logger'
import { sha256 } from 'multiformats/hashes/sha2'
import { APPLY_OPEN_SOURCES, DEFAULT_MIN_FREE_FRACTION, TEMP_PREFIX } from './constants.js'
import { DiskFullError, LocalChangedError, PathRejectedError } from './errors.js'
import { fsErrorCode, type FsReadHandle, type FsStat, type ShareFs } from './fs.js'
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

/** Runs `fn` over `items` with at most `limit` at once; the first error is thrown once all settled. */
export async function eachLimit<T> (items: Iterable<T>, limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const it = items[Symbol.iterator]()
  let failure: { err: unknown } | undefined
  const worker = async (): Promise<void> => {
    for (let next = it.next(); next.done !== true; next = it.next()) {
      try {
        await fn(next.value)
      } catch (err) {
        failure ??= { err }
      }
    }
  }
  await Promise.all(Array.from({ length: limit }, worker))
  if (failure != null) throw failure.err
}
