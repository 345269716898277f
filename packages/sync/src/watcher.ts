/**
 * Watches a share folder and asks for a scan once changes pause for
 * `quietMs`, and never later than the debounce (≤ 1 s) after a burst of
 * them began: a lone change (one write, one rename) is scanned at once, a
 * stream of writes (a copy into the share) after the debounce. Home
 * Cloud's own temp files are not changes. When the watcher cannot run or
 * fails (inotify limit, too many folders), it says so once and the share
 * falls back to periodic rescans.
 *
 * On Linux, one inotify watch per folder (fs.watch of a folder reports its
 * children by name): Node's own recursive watch there adds a watch and a
 * synchronous stat for every file and re-reads a whole folder on each event
 * in it, which costs seconds of main-thread time when 10,000 files arrive.
 * Elsewhere the platform's native recursive watch is used.
 *
 * The kernel queues a process's inotify events (one queue for all its
 * watches: libuv opens one inotify instance) and drops what comes past
 * `fs.inotify.max_queued_events` while the process is busy; libuv discards
 * the overflow marker, so Node never says. libuv reads the whole queue in
 * one turn of the event loop: a turn that delivers a full queue of events is
 * taken as an overflow, and every watcher asks for a scan of everything.
 */
import { readFileSync, watch, type FSWatcher } from 'node:fs'
import { lstat, readdir } from 'node:fs/promises'
import { logger } from '@libp2p/logger'
import { IGNORE_FILE, INTERNAL_PREFIX, TEMP_PREFIX } from './constants.js'
import { LimitExceededError } from './errors.js'

const log = logger('homecloud:sync:watch')

/** Errors that leave one folder unwatched rather than stopping the watcher. */
const SKIPPED = new Set(['ENOENT', 'ENOTDIR', 'EACCES', 'EPERM', 'ELOOP'])

/** Folders a scan is asked for at most; changes in more folders at once ask for a scan of everything. */
export const MAX_CHANGED_FOLDERS = 256

/** Folders watched at most (one inotify watch each; the kernel's default limit is often 8,192 to 65,536 a user). */
export const MAX_WATCHED_FOLDERS = 65_536

/**
 * A pause in changes this long ends a burst: the events of one save or one
 * rename come within a few ms of each other, and waiting the whole debounce
 * after them only delays the head (issue 5 b: 150 ms of a 3 s budget).
 */
export const WATCH_QUIET_MS = 50

/** The kernel's default `fs.inotify.max_queued_events`. */
const DEFAULT_INOTIFY_QUEUE = 16_384

let inotifyQueue: number | undefined

/** Events the kernel queues for a process's watches at most (`fs.inotify.max_queued_events`). */
export function inotifyQueueLimit (): number {
  if (inotifyQueue === undefined) {
    let limit = NaN
    try {
      limit = Number(readFileSync('/proc/sys/fs/inotify/max_queued_events', 'utf8').trim())
    } catch {
      // not Linux, or /proc not mounted: the kernel's default
    }
    inotifyQueue = Number.isSafeInteger(limit) && limit > 0 ? limit : DEFAULT_INOTIFY_QUEUE
  }
  return inotifyQueue
}

/** The watchers running in this process: an overflow of the queue they share concerns each. */
const running = new Set<ShareWatcher>()
/** Events delivered in this turn of the event loop, by every watcher (reset by a setImmediate). */
let turnEvents = 0
let turnOverflowed = false
let turnCounting = false

export interface ShareWatcherInit {
  root: string
  /** Milliseconds from the first change of a burst to the scan at most. */
  debounceMs: number
  /** A pause in changes this long asks for the scan sooner (default `WATCH_QUIET_MS`, at most `debounceMs`). */
  quietMs?: number
  /**
   * Changes were seen: scan now, `folders` (share-relative, `''` the root) with all below
   * them, or everything when undefined (too many folders, or no folder known).
   */
  onChange(folders?: string[]): void
  /** The watcher stopped working: rescan, and poll from now on. */
  onFailure(error: Error): void
  /** Folders a scan is asked for at most (default `MAX_CHANGED_FOLDERS`); changes in more ask for everything. */
  maxChangedFolders?: number
  /** Folders watched at most on Linux (default `MAX_WATCHED_FOLDERS`); more fails over to rescans. */
  maxFolders?: number
  /** Per-folder watches even where a native recursive watch exists (tests of the Linux path elsewhere). */
  perFolder?: boolean
  /**
   * Events in one turn of the event loop that mean the kernel's queue overflowed (default
   * `inotifyQueueLimit()`; tests use fewer). Every running watcher then asks for everything.
   */
  queueLimit?: number
  /** The kernel's queue overflowed (`events` came in one turn): changes may have been lost, a scan of everything follows. */
  onOverflow?(events: number): void
}

export class ShareWatcher {
  #watcher?: FSWatcher
  /** Per-folder mode: share-relative folder ('' is the root) → its watch. */
  readonly #folders = new Map<string, FSWatcher>()
  /** Names seen in 'rename' events, checked for folders come or gone. */
  readonly #renamed = new Set<string>()
  #checking = false
  /** Folders with changes since the last scan was asked for; undefined: everything. */
  #changedIn: Set<string> | undefined = new Set()
  #timer?: ReturnType<typeof setTimeout>
  /** When the burst began and when its last change came (performance.now()). */
  #first = 0
  #last = 0
  #failed = false
  #stopped = true

  constructor (private readonly init: ShareWatcherInit) {}

  /** Starts watching; false (after `onFailure`) when the platform or the limits do not allow it. */
  start (): boolean {
    this.#stopped = false
    running.add(this)
    if (this.init.perFolder === true || process.platform === 'linux') {
      try {
        this.#watchFolder('')
      } catch (err) {
        this.#fail(err as Error)
        return false
      }
      void this.#watchBelow('')
      return true
    }
    try {
      this.#watcher = watch(this.init.root, { recursive: true, persistent: false }, (_event, name) => {
        const path = name?.toString()
        this.#changed(path ?? null, path == null ? undefined : parentOf(path))
      })
    } catch (err) {
      this.#fail(err as Error)
      return false
    }
    this.#watcher.on('error', (err) => { this.#fail(err) })
    return true
  }

  stop (): void {
    this.#stopped = true
    running.delete(this)
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#watcher?.close()
    this.#watcher = undefined
    for (const w of this.#folders.values()) w.close()
    this.#folders.clear()
    this.#renamed.clear()
  }

  get failed (): boolean {
    return this.#failed
  }

  /** A scan is due (the debounce runs) or renamed names are still being checked for folders. */
  get busy (): boolean {
    return this.#timer != null || this.#checking
  }

  /** Folders watched one by one (Linux), for status and tests. */
  get watchedFolders (): number {
    return this.#folders.size
  }

  /** A change of `name` in `folder` (undefined: not known, so everything is scanned). */
  #changed (name: string | null, folder: string | undefined): boolean {
    const path = name ?? ''
    const base = path.slice(path.lastIndexOf('/') + 1)
    // apply's temp files come and go on every write; the rename that follows is the change
    if (base.startsWith(TEMP_PREFIX) || (base.startsWith(INTERNAL_PREFIX) && base !== IGNORE_FILE)) return false
    // an event without a name is about the watched folder itself: its parent lists it
    this.#schedule(name == null && folder !== undefined && folder !== '' ? parentOf(folder) : name == null ? undefined : folder)
    return true
  }

  #schedule (folder: string | undefined): void {
    if (this.#stopped) return
    if (folder === undefined || (this.#changedIn?.add(folder).size ?? 0) > (this.init.maxChangedFolders ?? MAX_CHANGED_FOLDERS)) this.#changedIn = undefined
    this.#last = performance.now()
    if (this.#timer != null) return
    this.#first = this.#last
    this.#arm(this.#quietMs)
  }

  get #quietMs (): number {
    return Math.min(this.init.quietMs ?? WATCH_QUIET_MS, this.init.debounceMs)
  }

  /** One timer a burst: when it fires early (changes came meanwhile), it waits for what is left. */
  #arm (delay: number): void {
    this.#timer = setTimeout(() => {
      const due = Math.min(this.#last + this.#quietMs, this.#first + this.init.debounceMs)
      const left = due - performance.now()
      if (left > 0) {
        this.#arm(left)
        return
      }
      this.#timer = undefined
      const folders = this.#changedIn
      this.#changedIn = new Set()
      this.init.onChange(folders === undefined ? undefined : [...folders])
    }, delay)
  }

  /** Adds the watch of one folder (share-relative); throws when the limits say no. */
  #watchFolder (folder: string): void {
    if (this.#folders.has(folder) || this.#stopped) return
    if (this.#folders.size >= (this.init.maxFolders ?? MAX_WATCHED_FOLDERS)) {
      throw new LimitExceededError(`more than ${this.init.maxFolders ?? MAX_WATCHED_FOLDERS} folders to watch`)
    }
    let w: FSWatcher
    try {
      w = watch(folder === '' ? this.init.root : `${this.init.root}/${folder}`, { persistent: false }, (event, name) => {
        this.#counted()
        const child = name == null ? null : name.toString()
        if (!this.#changed(child, folder) || child == null) return
        // a folder may have come (watch it) or gone (drop its watches): files only change
        if (event === 'rename') this.#check(folder === '' ? child : `${folder}/${child}`)
      })
    } catch (err) {
      // a folder gone meanwhile or not readable is left out (the scan reports it); the root, limits and the rest fail
      if (folder !== '' && SKIPPED.has((err as { code?: string }).code ?? '')) return
      throw err
    }
    // a folder removed under its watch just stops reporting; an error here is the watch itself failing
    w.on('error', (err) => { this.#fail(err) })
    this.#folders.set(folder, w)
  }

  /** Counts one event of this turn; at the queue's length, every running watcher rescans everything. */
  #counted (): void {
    if (!turnCounting) {
      turnCounting = true
      setImmediate(() => {
        turnCounting = false
        turnEvents = 0
        turnOverflowed = false
      })
    }
    turnEvents++
    if (turnOverflowed || turnEvents < (this.init.queueLimit ?? inotifyQueueLimit())) return
    turnOverflowed = true
    log.error('%d watch events in one turn: the kernel\'s queue (fs.inotify.max_queued_events) overflowed, rescanning every share', turnEvents)
    for (const w of running) w.#overflowed(turnEvents)
  }

  #overflowed (events: number): void {
    this.#schedule(undefined)
    this.init.onOverflow?.(events)
  }

  /** Watches every folder below `folder` (already watched), without recursion. */
  async #watchBelow (folder: string): Promise<void> {
    const stack = [folder]
    try {
      while (stack.length > 0 && !this.#stopped) {
        const dir = stack.pop() as string
        let entries
        try {
          entries = await readdir(dir === '' ? this.init.root : `${this.init.root}/${dir}`, { withFileTypes: true })
        } catch {
          continue // gone meanwhile: its parent's event drops it
        }
        for (const e of entries) {
          // symlinks are not followed; Home Cloud's own folders are never synced
          if (!e.isDirectory() || e.name.startsWith(INTERNAL_PREFIX)) continue
          const child = dir === '' ? e.name : `${dir}/${e.name}`
          this.#watchFolder(child)
          stack.push(child)
        }
      }
    } catch (err) {
      this.#fail(err as Error)
    }
  }

  /** Queues a renamed name for the folder check (one lstat each, one at a time). */
  #check (path: string): void {
    this.#renamed.add(path)
    if (this.#checking) return
    this.#checking = true
    void this.#drain().finally(() => { this.#checking = false })
  }

  async #drain (): Promise<void> {
    for (const path of this.#renamed) {
      this.#renamed.delete(path)
      if (this.#stopped) return
      const isDir = await lstat(`${this.init.root}/${path}`).then(s => s.isDirectory(), () => false)
      if (this.#stopped) return
      if (isDir && !this.#folders.has(path) && !path.split('/').some(n => n.startsWith(INTERNAL_PREFIX))) {
        try {
          this.#watchFolder(path)
        } catch (err) {
          this.#fail(err as Error)
          return
        }
        await this.#watchBelow(path)
        // changes made in it before its watch began are found by a scan that starts after it
        this.#schedule(path)
      } else if (!isDir) {
        this.#unwatchBelow(path)
      }
    }
  }

  /** Drops the watches of `path` and every folder below it (gone or no longer a folder). */
  #unwatchBelow (path: string): void {
    // folders are watched top down: nothing below an unwatched path is watched
    if (!this.#folders.has(path)) return
    for (const [folder, w] of this.#folders) {
      if (folder === path || folder.startsWith(`${path}/`)) {
        w.close()
        this.#folders.delete(folder)
      }
    }
  }

  #fail (err: Error): void {
    if (this.#failed) return
    this.#failed = true
    log.error('watching %s failed, falling back to rescans: %e', this.init.root, err)
    this.stop()
    this.init.onFailure(err)
  }
}

/** The folder a share-relative path is in (`''`: the root). */
function parentOf (path: string): string {
  const slash = path.lastIndexOf('/')
  return slash === -1 ? '' : path.slice(0, slash)
}
