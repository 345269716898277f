import { CustomProgressEvent, NotFoundError } from '@homecloud/interface'
import { logger } from '@libp2p/logger'
import { MAX_ENTRIES_PER_DIRECTORY, TEMP_PREFIX } from './constants.js'
import { ScanEntryError } from './errors.js'
import { fsErrorCode, type FsStat, type ShareFs } from './fs.js'
import { IGNORE_NOTHING, type IgnoreMatcher } from './ignore.js'
import { checkChildPath, isInternalName, type CheckedPath, type PathLimits } from './path-policy.js'
import { chunkOffsets, type ChunkRef, type EntryType, type LocalEntry } from './entry.js'
import type { AbortOptions, ProgressEvent, ProgressOptions } from '@homecloud/interface'
import type { CID } from 'multiformats/cid'

/** What a chunker returns for one file: its chunks in order, covering it exactly. */
export interface ChunkFile {
  chunks: Array<{ cid: CID, offset: number, length: number }>
  /**
   * The file's size, mtime and inode after its chunks were read (the store's
   * `chunkFile` gives them, from the open file): the scanner compares them
   * with its own lstat from before. Absent: it lstats the file again.
   */
  stat?: { size: number, mtimeMs: number, ino: number }
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
  /** A file that took its chunks, unread, from this path of the previous index (a rename, a move, a hard link). */
  movedFrom?: string
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
  /** Entries of a directory stat'ed and hashed at once (default `SCAN_CONCURRENCY`); results still come in name order. */
  concurrency?: number
  /**
   * Files at least this big that need hashing are hashed once the rest of
   * the walk is done (at most `MAX_HASHED_LAST` of them; more are hashed in
   * place) and reported then, out of name order, so a big file does not hold
   * back every entry after it (default `HASH_LAST_BYTES`, which says when
   * one starts hashing sooner; `Infinity`: strict name order).
   */
  hashLastBytes?: number
  /**
   * Records the chunks of a file that were not read (the store's
   * `indexFile`). Given, a file at a new path whose inode, size and mtime
   * match a file of the previous index (a rename, a move, a hard link) takes
   * that file's chunks instead of being hashed again; absent, it is hashed.
   */
  indexFile?: IndexFileFn
  /**
   * Folders (share-relative, `''` the root) to scan, each with all below it, instead of
   * the whole share: where the watcher saw changes. Entries and deletions are reported
   * only under them. A folder that is no longer a folder (gone, a file, a link) widens to
   * its parent; an ignored or internal one is skipped.
   */
  scope?: readonly string[]
}

/** Records `chunks` (in order, covering it) as the content of the file at an absolute path, without reading it. */
export type IndexFileFn = (path: string, chunks: Array<{ cid: CID, offset: number, length: number }>, options: AbortOptions) => Promise<void>

/**
 * Entries in flight at once: lstat and small-file reads are syscalls on the
 * libuv pool, so a window keeps them overlapped where one at a time left the
 * scan waiting on each (10,000 tiny files: ~0.5 ms each, one by one).
 */
export const SCAN_CONCURRENCY = 16

/**
 * A file this big is hashed after the rest of the walk: its hashing streams
 * through the store's worker for a while (~1 s a GiB), and in name order
 * every entry after it (a folder of small files beside it) would wait that
 * long. Hashed beside the small files instead, both slow down (one disk, one
 * worker, the main thread), and the big file's head comes later. One
 * exception: the first such file that is an edit of an indexed file (a byte
 * changed in place, an insert saved over it) starts hashing as soon as the
 * walk finds it — a scan for an edit mostly lstats unchanged entries, and its
 * head should not wait for that walk — and is still reported at the end.
 */
export const HASH_LAST_BYTES = 16 * 1024 * 1024

/** Big files a scan puts off to its end at most (a path and a stat each). */
export const MAX_HASHED_LAST = 10_000

/** A big file put off to the end of the walk; `result` set once its hashing began (an edit: see `scanShare`). */
interface PutOff {
  path: string
  stat: FsStat
  result?: Promise<ScanResult>
}

interface Visited {
  result: ScanResult
  /** Set for entries that passed the path checks (a directory to walk into). */
  checked?: CheckedPath
}

export interface ScanOptions extends AbortOptions, ProgressOptions<ScanProgressEvents> {}

const log = logger('homecloud:sync:scan')

/** Files at least this big have their hashing time logged. */
const LOG_HASH_BYTES = 16 * 1024 * 1024

const EMPTY: PreviousIndex = { get: () => undefined, keys: () => [] }

/**
 * Walks a share without recursion (any depth) using lstat only: symlinks
 * are reported as links and never followed. Ignored paths, Home Cloud's own
 * names and temp files are skipped. Files whose size, mtime and inode match
 * the previous index are not read again, nor are files moved or renamed
 * (when `indexFile` is given). Up to `concurrency` entries of a directory are
 * stat'ed and hashed at once (`chunkFile` must allow concurrent calls);
 * results come in name order regardless, except big files reported at the end
 * (`hashLastBytes`). Every problem is one `error`
 * result for that path; the scan only throws when the share root itself is
 * unusable (missing, not a directory) or it is aborted.
 */
export async function * scanShare (init: ScanInit, options: ScanOptions = {}): AsyncGenerator<ScanResult> {
  const { fs, root, chunkFile } = init
  const previous = init.previous ?? EMPTY
  const ignore = init.ignore ?? IGNORE_NOTHING
  const maxEntries = init.maxEntriesPerDirectory ?? MAX_ENTRIES_PER_DIRECTORY
  const progress: ScanProgress = { directories: 0, entries: 0, hashedFiles: 0, hashedBytes: 0, errors: 0 }
  const started = performance.now()
  log('scanning %s', root)
  const concurrency = Math.max(1, init.concurrency ?? SCAN_CONCURRENCY)
  const inFlight: Array<Promise<Visited | undefined>> = []
  const lastBytes = init.hashLastBytes ?? HASH_LAST_BYTES
  /** Big files to report once the walk is done. */
  const hashLast: PutOff[] = []
  /** The one big file hashed beside the walk (an edit of an indexed file), if any. */
  let early: Promise<ScanResult> | undefined
  // the previous index's live files by inode, for moves
  let byIno: Map<number, LocalEntry> | undefined
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

  const scope = init.scope === undefined ? undefined : await scopeFolders(init.scope)
  try {
    yield * walk(scope ?? [undefined])
    for (const { path, stat, result } of hashLast) {
      options.signal?.throwIfAborted()
      const r = await (result ?? scanOne(path, stat))
      if (r.kind === 'entry') progress.entries++
      yield r
    }
  } finally {
    // nothing this scan started may run on after it returns (aborted, or the consumer stopped)
    await early?.catch(() => {})
  }

  log('scanned %s: %o in %d ms', root, progress, Math.round(performance.now() - started))

  for (const path of previous.keys()) {
    if (seen.has(path) || !isInScope(path) || previous.get(path)?.deleted === true) continue
    if (isUnder(path, unknown) || ignore.ignores(path, previous.get(path)?.type === 'dir')) continue
    yield { kind: 'deleted', path }
  }

  /** Is `path` below a folder of the scope (or is there no scope)? */
  function isInScope (path: string): boolean {
    return scope === undefined || scope.some(folder => folder !== undefined && path.startsWith(`${folder.path}/`))
  }

  /**
   * The walk's starting folders for `folders`: each checked down from the root (a real
   * folder at every step: a link is never walked through), widened to the nearest folder
   * that still is one; none under another. Undefined when the root is among them.
   */
  async function scopeFolders (folders: readonly string[]): Promise<CheckedPath[] | undefined> {
    const starts = new Map<string, CheckedPath>()
    for (const folder of folders) {
      let checked: CheckedPath | undefined
      let skipped = false
      for (const name of folder === '' ? [] : folder.split('/')) {
        // what the walk would skip is not scanned (a change in an ignored folder costs nothing)
        if (isInternalName(name) || name.startsWith(TEMP_PREFIX)) {
          skipped = true
          break
        }
        let next: CheckedPath
        try {
          next = checkChildPath(checked, name, init.pathLimits)
        } catch {
          break // the walk of its parent reports it
        }
        if (ignore.ignores(next.path, true)) {
          skipped = true
          break
        }
        const stat = await fs.lstat(`${root}/${next.path}`).catch(() => undefined)
        if (stat?.type !== 'dir') break
        checked = next
      }
      if (skipped) continue
      if (checked === undefined) return undefined
      starts.set(checked.path, checked)
    }
    const sorted = [...starts.values()].sort((a, b) => a.path < b.path ? -1 : 1)
    return sorted.filter((f, i) => !sorted.slice(0, i).some(o => f.path.startsWith(`${o.path}/`)))
  }

  /** Depth-first from `starts`, names sorted, a directory's entries before its subdirectories: an explicit stack, no recursion. */
  async function * walk (starts: Array<CheckedPath | undefined>): AsyncGenerator<ScanResult> {
    const stack = [...starts].reverse()
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
      // several entries in flight (lstat, hashing), results taken in name order
      let next = 0
      try {
        while (next < names.length || inFlight.length > 0) {
          while (inFlight.length < concurrency && next < names.length) {
            const visit = visitEntry(parent, names[next++])
            visit.catch(() => {}) // awaited below; an abort must not go unhandled meanwhile
            inFlight.push(visit)
          }
          const visited = await inFlight.shift()
          if (visited === undefined) continue
          const { result, checked } = visited
          if (result.kind === 'entry') {
            progress.entries++
            if (result.entry.type === 'dir' && checked !== undefined) subdirs.push(checked)
          }
          yield result
        }
      } finally {
        // nothing this scan started may run on after it returns (aborted, or the consumer stopped)
        await Promise.allSettled(inFlight.splice(0))
      }
      for (let i = subdirs.length - 1; i >= 0; i--) stack.push(subdirs[i])
      options.onProgress?.(new CustomProgressEvent('sync:scan:progress', { ...progress }))
    }
  }

  /** A file of the previous index with this inode, size and mtime (built on first use: a scan with no new path never pays for it). */
  function movedFrom (stat: FsStat): LocalEntry | undefined {
    if (byIno === undefined) {
      byIno = new Map()
      for (const key of previous.keys()) {
        const e = previous.get(key)
        if (e?.type === 'file' && e.deleted !== true && e.local != null) byIno.set(e.local.ino, e)
      }
    }
    const e = byIno.get(stat.ino)
    return e !== undefined && e.size === stat.size && e.local?.mtimeMs === stat.mtimeMs ? e : undefined
  }

  /** lstat, ignore rules, name checks and `scanOne` for one directory entry; undefined when it is skipped. */
  async function visitEntry (parent: CheckedPath | undefined, name: string): Promise<Visited | undefined> {
    options.signal?.throwIfAborted()
    // Home Cloud's own files (temp files, the ignore file) are never synced
    if (isInternalName(name) || name.startsWith(TEMP_PREFIX)) return undefined
    const path = parent === undefined ? name : `${parent.path}/${name}`
    let stat: FsStat
    try {
      stat = await fs.lstat(`${root}/${path}`)
    } catch (err) {
      if (fsErrorCode(err) === 'ENOENT') return undefined // gone since readdir: reported deleted if it was indexed
      return { result: fail(path, new ScanEntryError(path, `lstat failed: ${(err as Error).message}`, { cause: err })) }
    }
    if (ignore.ignores(path, stat.type === 'dir')) return undefined
    let checked: CheckedPath
    try {
      checked = checkChildPath(parent, name, init.pathLimits)
    } catch (err) {
      return { result: fail(path, err as Error) }
    }
    seen.add(path)
    if (stat.type === 'file' && stat.size >= lastBytes && hashLast.length < MAX_HASHED_LAST && needsHash(path, stat)) {
      const putOff: PutOff = { path, stat }
      if (early === undefined && isEdit(path)) {
        // an edit of a big indexed file (a byte changed, an insert): hashing starts now, beside the rest of the walk
        // (mostly lstats of unchanged entries then), and is still reported last; a new one (a folder moved in) waits
        early = putOff.result = scanOne(path, stat)
        early.catch(() => {}) // awaited at the end; an abort must not go unhandled meanwhile
      }
      hashLast.push(putOff)
      return undefined
    }
    return { result: await scanOne(path, stat), checked }
  }

  /** Is `path` a live file of the previous index (what is found there now is an edit of it)? */
  function isEdit (path: string): boolean {
    const prev = previous.get(path)
    return prev != null && prev.deleted !== true && prev.type === 'file'
  }

  /** Does the file at `path` have to be read (not unchanged, not a move)? */
  function needsHash (path: string, stat: FsStat): boolean {
    const prev = previous.get(path)
    // the same file: unchanged, or edited in place (no move: the index by inode is not built for it)
    if (isSameFile(prev, stat)) return !isUnchanged(prev, stat)
    return init.indexFile === undefined || movedFrom(stat)?.chunks == null
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
    if (isSameFile(prev, stat) && isUnchanged(prev, stat)) {
      if (prev.mode === file.mode) return { kind: 'entry', entry: { ...file, changed: false } }
      return { kind: 'entry', entry: { ...file, changed: true, chunks: prev.chunks } }
    }
    // the same file edited in place is no move (see needsHash)
    const moved = init.indexFile === undefined || isSameFile(prev, stat) ? undefined : movedFrom(stat)
    if (moved?.chunks != null && init.indexFile !== undefined) {
      // the same inode, size and mtime as an indexed file: its bytes, under a new name (the rule that skips unchanged files)
      const offsets = chunkOffsets(moved.chunks)
      try {
        await init.indexFile(`${root}/${path}`, moved.chunks.map((c, i) => ({ cid: c.cid, offset: offsets[i], length: c.length })), { signal: options.signal })
        return { kind: 'entry', entry: { ...file, changed: true, chunks: moved.chunks, movedFrom: moved.path } }
      } catch (err) {
        options.signal?.throwIfAborted()
        log('indexing %s as a move of %s failed, hashing it: %e', path, moved.path, err)
      }
    }
    options.signal?.throwIfAborted()
    options.onProgress?.(new CustomProgressEvent('sync:scan:hash', { path, size: stat.size }))
    const hashStart = performance.now()
    try {
      const { chunks, stat: read } = await chunkFile(`${root}/${path}`, { signal: options.signal })
      const after = read ?? await fs.lstat(`${root}/${path}`)
      if (after.size !== stat.size || after.mtimeMs !== stat.mtimeMs || after.ino !== stat.ino) {
        return fail(path, new ScanEntryError(path, 'changed while it was being hashed: picked up by the next scan'))
      }
      let offset = 0
      for (const c of chunks) {
        if (c.offset !== offset || c.length <= 0) throw new Error(`chunker returned a gap or overlap at byte ${offset}`)
        offset += c.length
      }
      if (offset !== stat.size) throw new Error(`chunker covered ${offset} of ${stat.size} bytes`)
      if (stat.size >= LOG_HASH_BYTES) log('hashed %s (%d bytes) in %d ms', path, stat.size, Math.round(performance.now() - hashStart))
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
/** Is `prev` the live indexed file that `stat` (a file) is, by inode? Then it is unchanged or edited in place, not moved here. */
function isSameFile (prev: LocalEntry | undefined, stat: FsStat): prev is LocalEntry {
  return prev != null && prev.deleted !== true && prev.type === 'file' && prev.local?.ino === stat.ino
}

/** The same file with the size and mtime the index has: not read again. */
function isUnchanged (prev: LocalEntry, stat: FsStat): boolean {
  return prev.size === stat.size && prev.local?.mtimeMs === stat.mtimeMs
}

function isUnder (path: string, prefixes: ReadonlySet<string>): boolean {
  if (prefixes.size === 0) return false
  if (prefixes.has('') || prefixes.has(path)) return true
  for (let i = path.indexOf('/'); i !== -1; i = path.indexOf('/', i + 1)) {
    if (prefixes.has(path.slice(0, i))) return true
  }
  return false
}
