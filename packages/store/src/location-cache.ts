import type { FileLocation, FileRecord } from './store-index.js'

interface CachedFile {
  /** The path, stored flat (`flat`): every cached place and the record of the file share it. */
  path: string
  /** The file's index record, when known (its chunks were just indexed or it is open). */
  record?: FileRecord
  /** Block keys cached at a place in this file. */
  keys: Set<string>
}

/**
 * A flat copy of `text`. Strings built piece by piece (multiformats' base32 encoder adds
 * one character at a time; path joins) are V8 rope trees: a 56-character block key held
 * that way costs ~1.5 KB instead of ~90 B. Measured after the vs-syncthing scenarios: a
 * full cache (8,192 places) held 11.9 MiB of such trees. Slicing the one-character-longer
 * string makes V8 flatten it once; the result shares that flat string.
 */
function flat (text: string): string {
  return (' ' + text).slice(1)
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
      // the same file: only the place and its age change (its record stays); re-inserted, the key is the one given
      this.#byKey.delete(key)
      this.#byKey.set(flat(key), old.offset === location.offset && old.length === location.length ? old : { path: old.path, offset: location.offset, length: location.length })
      return
    }
    this.#remove(key)
    let file = this.#byPath.get(location.path)
    if (file === undefined) {
      file = { path: flat(location.path), keys: new Set() }
      this.#byPath.set(file.path, file)
    }
    const stored = flat(key)
    this.#byKey.set(stored, { path: file.path, offset: location.offset, length: location.length })
    file.keys.add(stored)
    for (const oldest of this.#byKey.keys()) {
      if (this.#byKey.size <= this.#max) break
      this.#remove(oldest)
    }
  }

  /** Keeps `record` with the cached places of its file (none cached: nothing to keep it with). */
  setRecord (record: FileRecord): void {
    const file = this.#byPath.get(record.path)
    if (file !== undefined) file.record = { ...record, path: file.path }
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
