/**
 * Watches a share folder (fs.watch, recursive) and asks for a scan a short
 * while after the last burst of changes began (never later than the
 * debounce, ≤ 1 s). Home Cloud's own temp files are not changes. When the
 * watcher cannot run or fails (inotify limit, overflow), it says so once and
 * the share falls back to periodic rescans.
 */
import { watch, type FSWatcher } from 'node:fs'
import { logger } from '@libp2p/logger'
import { IGNORE_FILE, INTERNAL_PREFIX, TEMP_PREFIX } from './constants.js'

const log = logger('homecloud:sync:watch')

export interface ShareWatcherInit {
  root: string
  /** Milliseconds from the first change of a burst to the scan. */
  debounceMs: number
  /** A change was seen: scan now. */
  onChange(): void
  /** The watcher stopped working: rescan, and poll from now on. */
  onFailure(error: Error): void
}

export class ShareWatcher {
  #watcher?: FSWatcher
  #timer?: ReturnType<typeof setTimeout>
  #failed = false

  constructor (private readonly init: ShareWatcherInit) {}

  /** Starts watching; false (after `onFailure`) when the platform or the limits do not allow it. */
  start (): boolean {
    try {
      this.#watcher = watch(this.init.root, { recursive: true, persistent: false }, (_event, name) => { this.#changed(name) })
    } catch (err) {
      this.#fail(err as Error)
      return false
    }
    this.#watcher.on('error', (err) => { this.#fail(err) })
    return true
  }

  stop (): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#watcher?.close()
    this.#watcher = undefined
  }

  get failed (): boolean {
    return this.#failed
  }

  #changed (name: string | Buffer | null): void {
    const path = name == null ? '' : name.toString()
    const base = path.slice(path.lastIndexOf('/') + 1)
    // apply's temp files come and go on every write; the rename that follows is the change
    if (base.startsWith(TEMP_PREFIX) || (base.startsWith(INTERNAL_PREFIX) && base !== IGNORE_FILE)) return
    if (this.#timer != null) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.init.onChange()
    }, this.init.debounceMs)
  }

  #fail (err: Error): void {
    if (this.#failed) return
    this.#failed = true
    log.error('watching %s failed, falling back to rescans: %e', this.init.root, err)
    this.stop()
    this.init.onFailure(err)
  }
}
