/**
 * The local index of one share: the LocalEntry of every path this device
 * knows (tombstones included), in memory for the scanner and the pull plan
 * (which read it synchronously) and written through to the share database.
 * It also counts which chunks the share's live files hold, so the serve
 * policy can answer "is this chunk part of that share?" without a lookup.
 */
import { encodeEntry, shareKeys, type ShareRecords } from './share-state.js'
import type { LocalEntry, ShareEntry } from './entry.js'
import type { KvOperation } from './share-kv.js'
import type { LocalIndexView } from './plan.js'
import type { PreviousIndex } from './scanner.js'
import type { CID } from 'multiformats/cid'

export class LocalIndex implements LocalIndexView, PreviousIndex {
  readonly #entries = new Map<string, LocalEntry>()
  readonly #chunks = new Map<string, number>()

  private constructor (private readonly share: string, private readonly records: ShareRecords) {}

  /** The index as stored. */
  static async load (share: string, records: ShareRecords): Promise<LocalIndex> {
    const index = new LocalIndex(share, records)
    for await (const e of records.entries(share)) index.#remember(e)
    return index
  }

  get (path: string): LocalEntry | undefined {
    return this.#entries.get(path)
  }

  keys (): IterableIterator<string> {
    return this.#entries.keys()
  }

  values (): IterableIterator<LocalEntry> {
    return this.#entries.values()
  }

  get size (): number {
    return this.#entries.size
  }

  /** Does a live file of this share hold the chunk? */
  hasChunk (cid: CID): boolean {
    return this.#chunks.has(cid.toString())
  }

  /** Records entries (replacing what was there for their paths), with `also` in the same write; durable when it resolves. */
  async set (entries: LocalEntry[], also: KvOperation[] = []): Promise<void> {
    if (entries.length === 0 && also.length === 0) return
    const ops: KvOperation[] = entries.map(e => ({ type: 'put', key: shareKeys.entry(this.share, e.path), value: encodeEntry(e) }))
    await this.records.kv.batch([...ops, ...also])
    for (const e of entries) this.#remember(e)
  }

  /** Forgets paths entirely (no tombstone): a reverted local addition. */
  async delete (paths: string[]): Promise<void> {
    if (paths.length === 0) return
    await this.records.kv.batch(paths.map(path => ({ type: 'del', key: shareKeys.entry(this.share, path) })))
    for (const path of paths) this.#forget(path)
  }

  /** The entries as every device agrees on them (no local stat), for a snapshot. */
  * shareEntries (): Generator<ShareEntry> {
    for (const { local: _local, ...entry } of this.#entries.values()) yield entry
  }

  #remember (e: LocalEntry): void {
    this.#forget(e.path)
    this.#entries.set(e.path, e)
    if (e.deleted === true || e.chunks == null) return
    for (const c of e.chunks) {
      const key = c.cid.toString()
      this.#chunks.set(key, (this.#chunks.get(key) ?? 0) + 1)
    }
  }

  #forget (path: string): void {
    const old = this.#entries.get(path)
    if (old == null) return
    this.#entries.delete(path)
    if (old.deleted === true || old.chunks == null) return
    for (const c of old.chunks) {
      const key = c.cid.toString()
      const n = (this.#chunks.get(key) ?? 0) - 1
      if (n <= 0) this.#chunks.delete(key)
      else this.#chunks.set(key, n)
    }
  }
}
