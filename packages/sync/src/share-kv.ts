/**
 * The narrow key-value store the share service keeps its state in: share
 * definitions, local indexes, heads, snapshot blocks and history records.
 * LevelDB on a device, a sorted map in tests. Keys are strings of
 * `\x00`-separated parts (names from peers never hold NUL: path policy), so
 * every prefix of parts ends with `\x00` and its range ends at `\x01`.
 */
import { Level } from 'level'
import { RepoError } from '@homecloud/interface'
import { releaseWriteBuffer } from '@homecloud/store'

export type KvOperation =
  | { type: 'put', key: string, value: Uint8Array }
  | { type: 'del', key: string }

export interface ShareKv {
  get(key: string): Promise<Uint8Array | undefined>
  /** All operations or none. */
  batch(ops: KvOperation[]): Promise<void>
  /** Entries whose key starts with `prefix` (a prefix ending in `\x00`), in key order. */
  entries(prefix: string): AsyncIterable<[string, Uint8Array]>
  /** Gives back memory held for recent writes (an idle device); nothing is lost. */
  release?(): Promise<void>
  close(): Promise<void>
}

/** The key made of `parts`, joined by NUL. */
export function kvKey (...parts: string[]): string {
  return parts.join('\x00')
}

/** The prefix matching every key that starts with `parts`. */
export function kvPrefix (...parts: string[]): string {
  return `${parts.join('\x00')}\x00`
}

/** In memory, for tests and for a device without a repo. */
export class MemoryShareKv implements ShareKv {
  readonly #map = new Map<string, Uint8Array>()

  async get (key: string): Promise<Uint8Array | undefined> {
    return this.#map.get(key)
  }

  async batch (ops: KvOperation[]): Promise<void> {
    for (const op of ops) {
      if (op.type === 'put') this.#map.set(op.key, op.value)
      else this.#map.delete(op.key)
    }
  }

  async * entries (prefix: string): AsyncGenerator<[string, Uint8Array]> {
    const keys = [...this.#map.keys()].filter(k => k.startsWith(prefix)).sort()
    for (const key of keys) {
      const value = this.#map.get(key)
      if (value != null) yield [key, value]
    }
  }

  async close (): Promise<void> {}
}

/**
 * LevelDB's block cache of the share database. Its default (8 MiB) fills with the snapshot
 * pages read during a session and is never given back: measured, 5.6 MiB after reading a
 * share of 20,000 files, most of what an idle daemon holds over a fresh one in malloc
 * (issue 5 f). A miss costs a read from the page cache and a checksum, microseconds.
 */
export const SHARE_DB_CACHE_BYTES = 1024 * 1024

/** LevelDB at a path (created when missing). */
export class LevelShareKv implements ShareKv {
  private constructor (private readonly db: Level<string, Uint8Array>) {}

  static async open (path: string): Promise<LevelShareKv> {
    const db = new Level<string, Uint8Array>(path, { keyEncoding: 'utf8', valueEncoding: 'view', cacheSize: SHARE_DB_CACHE_BYTES })
    try {
      await db.open()
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause
      const why = cause?.code === 'LEVEL_LOCKED' ? 'it is in use by another process' : (err as Error).message
      throw new RepoError(`cannot open the share database ${path}: ${why}`, { cause: err })
    }
    return new LevelShareKv(db)
  }

  async get (key: string): Promise<Uint8Array | undefined> {
    return this.db.get(key)
  }

  async batch (ops: KvOperation[]): Promise<void> {
    if (ops.length === 0) return
    await this.db.batch(ops)
  }

  async * entries (prefix: string): AsyncGenerator<[string, Uint8Array]> {
    const end = `${prefix.slice(0, -1)}\x01`
    for await (const [key, value] of this.db.iterator({ gte: prefix, lt: end })) {
      yield [key, value]
    }
  }

  /** LevelDB's own estimate of the memory it holds (write buffer and block cache), bytes. */
  async memoryUsage (): Promise<number> {
    // classic-level has it; `level`'s types cover the browser's too
    const db = this.db as unknown as { getProperty(property: string): Promise<string> }
    return Number(await db.getProperty('leveldb.approximate-memory-usage'))
  }

  /** LevelDB's write buffer to disk, and freed (~3–5 MiB after a sync of 12,000 files). */
  async release (): Promise<void> {
    await releaseWriteBuffer(this.db)
  }

  async close (): Promise<void> {
    await this.db.close()
  }
}
