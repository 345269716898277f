import { CustomProgressEvent, NotFoundError } from '@homecloud/interface'
import { MAX_ENTRIES_PER_DIRECTORY, TEMP_PREFIX } from './constants.js'
import { ScanEntryError } from './errors.js'
import { fsErrorCode, type FsStat, type ShareFs } from './fs.js'
import { IGNORE_NOTHING, type IgnoreMatcher } from './ignore.js'
import { checkChildPath, isInternalName, type CheckedPath, type PathLimits } from './path-policy.js'
import type { ChunkRef, EntryType, LocalEntry } from './entry.js'
import type { AbortOptions, ProgressEvent, ProgressOptions } from '@homecloud/interface'
import type { CID } from 'multiformats/cid'

/** What a chunker returns for one file: its chunks in order, covering it exactly. */
export interface ChunkFile {
  chunks: Array<{ cid: CID, offset: number, length: number }>
}

/** Cuts and hashes the file at an absolute path (the store's chunker in production). */
export type ChunkFileFn = (path: string, options: AbortOptions) => Promise<ChunkFile>

/** One path found on disk. */
export interface ScannedEntry {
  path: string
  type: EntryType
  size: number
  /** Exact, as the filesystem reports it. */
  mtimeMs: number
  /** Permission bits `& 0o777`. */
  mode: number
  ino: number
  /** Symlinks: the target, not followed. */
  target?: string
  /** New or different from the previous index entry. */
  changed: boolean
  /** Files that changed: the chunk list (from the chunker, or the previous one when only the mode changed). */
  chunks?: ChunkRef[]
}

export type ScanResult =
  | { kind: 'entry', entry: ScannedEntry }
  /** This path is skipped (bad name, unsupported type, unreadable, over a cap); the rest of the scan goes on. */
  | { kind: 'error', path: string, error: Error }
  /** A path of the previous index that is gone from disk (never reported under a directory that could not be read). */
  | { kind: 'deleted', path: string }

/** Read-only view of the previous index: a `Map` will do. */
export interface PreviousIndex {
  get(path: string): LocalEntry | undefined
  keys(): Iterable<string>
}

export interface ScanProgress {
  directories: number
  entries: number
  hashedFiles: number
  hashedBytes: number
  errors: number
}

export type ScanProgressEvents =
  | ProgressEvent<'sync:scan:progress', ScanProgress>
  | ProgressEvent<'sync:scan:hash', { path: string, size: number }>
  | ProgressEvent<'sync:scan:error', { path: string, code: string, message: string }>

export interface ScanInit {
  fs: ShareFs
  /** Absolute path of the share folder. */
  root: string
  chunkFile: ChunkFileFn
  previous?: PreviousIndex
  ignore?: IgnoreMatcher
  maxEntriesPerDirectory?: number
  pathLimits?: Partial<PathLimits>
}

export interface ScanOptions extends AbortOptions, ProgressOptions<ScanProgressEvents> {}

const EMPTY: PreviousIndex = { get: () => undefined, keys: () => [] }

/**
 * Walks a share without recursion (any depth) using lstat only: symlinks
 * are reported as links and never followed. Ignored paths, Home Cloud's own
 * names and temp files are skipped. Files whose size, mtime and inode match
 * the previous index are not read again. Every problem is one `error`
 * result for that path; the scan only throws when the share root itself is
 * unusable (missing, not a directory) or it is aborted.
 */
export async function * scanShare (init: ScanInit, options: ScanOptions = {}): AsyncGenerator<ScanResult> {
  const { fs, root, chunkFile } = init
  const previous = init.previous ?? EMPTY
  const ignore = init.ignore ?? IGNORE_NOTHING
  const maxEntries = init.maxEntriesPerDirectory ?? MAX_ENTRIES_PER_DIRECTORY
  const progress: ScanProgress = { directories: 0, entries: 0, hashedFiles: 0, hashedBytes: 0, errors: 0 }
  const seen = new Set<string>()
  // paths whose subtree was not fully read: nothing below them is reported deleted
  const unknown = new Set<string>()

  let rootStat: FsStat
  try {
    rootStat = await fs.lstat(root)
  } catch (err) {
    throw new NotFoundError(`share folder ${root} is not readable: ${(err as Error).message}`, { cause: err })
  }
  if (rootStat.type !== 'dir') throw new NotFoundError(`share folder ${root} is not a directory`)

  const fail = (path: string, error: Error): ScanResult => {
    unknown.add(path)
    progress.errors++
    options.onProgress?.(new CustomProgressEvent('sync:scan:error', { path, code: (error as { code?: string }).code ?? 'ERR_SCAN_ENTRY', message: error.message }))
    return { kind: 'error', path, error }
  }

  // depth-first, names sorted, a directory's entries before its subdirectories: an explicit stack, no recursion
  const stack: Array<CheckedPath | undefined> = [undefined]
  while (stack.length > 0) {
    options.signal?.throwIfAborted()
    const parent = stack.pop()
    const dir = parent?.path ?? ''
    let names: string[]
    try {
      names = await fs.readdir(dir === '' ? root : `${root}/${dir}`)
    } catch (err) {
      yield fail(dir, new ScanEntryError(dir, `directory not readable: ${(err as Error).message}`, { cause: err }))
      continue
    }
    names.sort()
    if (names.length > maxEntries) {
      yield fail(dir, new ScanEntryError(dir, `${names.length} entries, over the cap of ${maxEntries}: the rest is not scanned`))
      names = names.slice(0, maxEntries)
    }
    progress.directories++
    const subdirs: CheckedPath[] = []
    for (const name of names) {
      options.signal?.throwIfAborted()
      // Home Cloud's own files (temp files, the ignore file) are never synced
      if (isInternalName(name) || name.startsWith(TEMP_PREFIX)) continue
      const path = dir === '' ? name : `${dir}/${name}`
      let stat: FsStat
      try {
        stat = await fs.lstat(`${root}/${path}`)
      } catch (err) {
        if (fsErrorCode(err) === 'ENOENT') continue // gone since readdir: reported deleted if it was indexed
        yield fail(path, new ScanEntryError(path, `lstat failed: ${(err as Error).message}`, { cause: err }))
        continue
      }
      if (ignore.ignores(path, stat.type === 'dir')) continue
      let checked: CheckedPath
      try {
        checked = checkChildPath(parent, name, init.pathLimits)
      } catch (err) {
        yield fail(path, err as Error)
        continue
      }
      seen.add(path)
      const result = await scanOne(path, stat)
      if (result.kind === 'entry') {
        progress.entries++
        if (result.entry.type === 'dir') subdirs.push(checked)
      }
      yield result
    }
    for (let i = subdirs.length - 1; i >= 0; i--) stack.push(subdirs[i])
    options.onProgress?.(new CustomProgressEvent('sync:scan:progress', { ...progress }))
  }

  for (const path of previous.keys()) {
    if (seen.has(path) || previous.get(path)?.deleted === true) continue
    if (isUnder(path, unknown) || ignore.ignores(path, previous.get(path)?.type === 'dir')) continue
    yield { kind: 'deleted', path }
  }

  async function scanOne (path: string, stat: FsStat): Promise<ScanResult> {
    const prev = previous.get(path)
    const base = { path, size: 0, mtimeMs: stat.mtimeMs, mode: stat.mode & 0o777, ino: stat.ino }
    const same = prev != null && prev.deleted !== true && prev.type === stat.type
    if (stat.type === 'dir') {
      return { kind: 'entry', entry: { ...base, type: 'dir', changed: !same || prev.mode !== base.mode } }
    }
    if (stat.type === 'symlink') {
      let target: string
      try {
        target = await fs.readlink(`${root}/${path}`)
      } catch (err) {
        return fail(path, new ScanEntryError(path, `readlink failed: ${(err as Error).message}`, { cause: err }))
      }
      return { kind: 'entry', entry: { ...base, type: 'symlink', target, changed: !same || prev.target !== target } }
    }
    if (stat.type !== 'file') return fail(path, new ScanEntryError(path, 'not a file, directory or symlink (socket, fifo or device): not synced'))
    const file = { ...base, type: 'file' as const, size: stat.size }
    if (same && prev.size === stat.size && prev.local?.mtimeMs === stat.mtimeMs && prev.local.ino === stat.ino) {
      if (prev.mode === file.mode) return { kind: 'entry', entry: { ...file, changed: false } }
      return { kind: 'entry', entry: { ...file, changed: true, chunks: prev.chunks } }
    }
    options.onProgress?.(new CustomProgressEvent('sync:scan:hash', { path, size: stat.size }))
    try {
      const { chunks } = await chunkFile(`${root}/${path}`, { signal: options.signal })
      const after = await fs.lstat(`${root}/${path}`)
      if (after.size !== stat.size || after.mtimeMs !== stat.mtimeMs || after.ino !== stat.ino) {
        return fail(path, new ScanEntryError(path, 'changed while it was being hashed: picked up by the next scan'))
      }
      let offset = 0
      for (const c of chunks) {
        if (c.offset !== offset || c.length <= 0) throw new Error(`chunker returned a gap or overlap at byte ${offset}`)
        offset += c.length
      }
      if (offset !== stat.size) throw new Error(`chunker covered ${offset} of ${stat.size} bytes`)
      progress.hashedFiles++
      progress.hashedBytes += stat.size
      return { kind: 'entry', entry: { ...file, changed: true, chunks: chunks.map(c => ({ cid: c.cid, length: c.length })) } }
    } catch (err) {
      options.signal?.throwIfAborted()
      return fail(path, new ScanEntryError(path, `could not be hashed: ${(err as Error).message}`, { cause: err }))
    }
  }
}

/** Is `path` equal to or below one of `prefixes`? ('' is the root: everything.) */
function isUnder (path: string, prefixes: ReadonlySet<string>): boolean {
  if (prefixes.size === 0) return false
  if (prefixes.has('') || prefixes.has(path)) return true
  for (let i = path.indexOf('/'); i !== -1; i = path.indexOf('/', i + 1)) {
    if (prefixes.has(path.slice(0, i))) return true
  }
  return false
}
