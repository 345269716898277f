import type { FileLocation, FileRecord } from './store-index.js'

interface CachedFile {
  /** The file's index record, when known (its chunks were just indexed or it is open). */
  record?: FileRecord
  /** Block keys cached at a place in this file. */
  keys: Set<string>
}

/**
 * Block key → a place of that chunk in an indexed file, at most `max` of
 * them (the oldest go first), so serving a chunk needs no index lookup. It
 * only ever holds what the index holds: the owner drops a file's entries
 * (`dropPath`) whenever that file's index entry changes, and nothing else
 * invalidates an entry. Files of cached places may keep their record too (at
 * most one per cached file, so also bounded by `max`).
 */
export class LocationCache {
  readonly #max: number
  readonly #byKey = new Map<string, FileLocation>()
  readonly #byPath = new Map<string, CachedFile>()

  constructor (max: number) {
    this.#max = max
  }

  /** Places cached now. */
  get size (): number {
    return this.#byKey.size
  }

  /** Files with a cached place now. */
  get files (): number {
    return this.#byPath.size
  }

  get (key: string): FileLocation | undefined {
    return this.#byKey.get(key)
  }

  /** The index record of `path` if it is cached. */
  record (path: string): FileRecord | undefined {
    return this.#byPath.get(path)?.record
  }

  /** Caches one place of chunk `key` (the newest, so the last to go). */
  set (key: string, location: FileLocation): void {
    const old = this.#byKey.get(key)
    if (old?.path === location.path) {
      // the same file: only the place and its age change (its record stays)
      this.#byKey.delete(key)
      this.#byKey.set(key, location)
      return
    }
    this.#remove(key)
    this.#byKey.set(key, location)
    let file = this.#byPath.get(location.path)
    if (file === undefined) {
      file = { keys: new Set() }
      this.#byPath.set(location.path, file)
    }
    file.keys.add(key)
    for (const oldest of this.#byKey.keys()) {
      if (this.#byKey.size <= this.#max) break
      this.#remove(oldest)
    }
  }

  /** Keeps `record` with the cached places of its file (none cached: nothing to keep it with). */
  setRecord (record: FileRecord): void {
    const file = this.#byPath.get(record.path)
    if (file !== undefined) file.record = record
  }

  /** Forgets every place in `path` and its record. */
  dropPath (path: string): void {
    const file = this.#byPath.get(path)
    if (file === undefined) return
    this.#byPath.delete(path)
    for (const key of file.keys) this.#byKey.delete(key)
  }

  clear (): void {
    this.#byKey.clear()
    this.#byPath.clear()
  }

  #remove (key: string): void {
    const location = this.#byKey.get(key)
    if (location === undefined) return
    this.#byKey.delete(key)
    const file = this.#byPath.get(location.path)
    if (file === undefined) return
    file.keys.delete(key)
    if (file.keys.size === 0) this.#byPath.delete(location.path)
  }
}
