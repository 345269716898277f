/**
 * History of a share (D7): the versions apply replaces or deletes are kept
 * for a retention period, within a size cap. Just before a file is replaced
 * (it is still intact, the new version fully written beside it), the chunks
 * the replacement LOSES (in the old entry, not in the new one) are copied
 * from the file into the block store (deduplicated by CID), and a one-entry
 * snapshot naming all its chunks is pinned. Chunks shared with the new
 * version are not copied: they stay file-backed in the new file, which apply
 * indexes in the store, so a one-byte change to a big file costs one chunk,
 * not a copy of the file. The store's `get` serves both kinds (re-hashing
 * file reads), and restore also reads live files directly.
 *
 * The rule that keeps every version restorable: each replacement keeps what
 * it loses. A kept version's chunks are in the block store or in the live
 * file that replaced it; when that file is replaced or deleted in turn, its
 * own `keep` copies the chunks IT loses, shared ones included, so they move
 * into the block store before the file goes. Not covered: an edit or delete
 * made outside apply (by the user, in place) destroys the shared chunks of
 * older versions as it destroys the current one.
 *
 * Pins: the snapshot links every chunk, so GC keeps whichever of them are in
 * the block store (file chunks are never collected). Expired or over-cap
 * versions are unpinned, oldest first; the next GC frees their chunks.
 */
import { logger } from '@libp2p/logger'
import { chunkOffsets, type LocalEntry, type ShareEntry } from './entry.js'
import { VersionNotFoundError } from './errors.js'
import { kvKey, kvPrefix, type ShareKv } from './share-kv.js'
import { decodeRecord, encodeRecord } from './share-state.js'
import { encodeSnapshot, loadSnapshot } from './snapshot.js'
import type { ShareFs } from './fs.js'
import type { AbortOptions } from '@homecloud/interface'
import type { ChunkStore } from '@homecloud/store'
import type { CID } from 'multiformats/cid'

const log = logger('homecloud:sync:history')

export type HistoryReason = 'replaced' | 'deleted'

/** One kept version of a path. */
export interface HistoryVersion {
  /** Increasing per share: the newest version of a path has the highest number. */
  version: number
  path: string
  type: ShareEntry['type']
  size: number
  /** The version's own mtime (ms). */
  mtime: number
  modifiedBy: string
  /** When it was replaced or deleted on this device (ms since the epoch). */
  keptAt: number
  reason: HistoryReason
}

export interface HistoryLimits {
  /** How long versions are kept (ms). */
  retentionMs: number
  /** Most bytes of kept versions (their sizes added up); the oldest are dropped first. */
  maxBytes: number
}

export interface ShareHistoryInit extends HistoryLimits {
  share: string
  kv: ShareKv
  store: Pick<ChunkStore, 'put' | 'get' | 'pin' | 'unpin'>
  fs: ShareFs
  /** Absolute path of the share folder. */
  root: string
  now?(): number
}

interface KeptVersion extends HistoryVersion {
  snapshot: CID
}

const VERSION = 'v'

function versionKey (share: string, path: string, version: number): string {
  return kvKey(VERSION, share, path, String(version).padStart(16, '0'))
}

export class ShareHistory {
  readonly #init: ShareHistoryInit
  readonly #now: () => number
  /** Every kept version, oldest first. */
  #records: KeptVersion[] = []
  #next = 1
  #bytes = 0

  private constructor (init: ShareHistoryInit) {
    this.#init = init
    this.#now = init.now ?? Date.now
  }

  static async load (init: ShareHistoryInit): Promise<ShareHistory> {
    const history = new ShareHistory(init)
    for await (const [, value] of init.kv.entries(kvPrefix(VERSION, init.share))) {
      history.#records.push(decodeRecord<KeptVersion>(value))
    }
    history.#records.sort((a, b) => a.version - b.version)
    history.#next = (history.#records.at(-1)?.version ?? 0) + 1
    history.#bytes = history.#records.reduce((sum, r) => sum + r.size, 0)
    return history
  }

  /** Bytes of the kept versions (added up, before deduplication). */
  get bytes (): number {
    return this.#bytes
  }

  /**
   * Keeps `old` (intact on disk at its path) before it is replaced by
   * `next` (absent or a tombstone: deleted). Only chunks `next` does not
   * hold are copied. Directories have nothing to keep; a file larger than
   * the cap is not kept (and says so in the log).
   */
  async keep (old: LocalEntry, reason: HistoryReason, next?: ShareEntry, options: AbortOptions = {}): Promise<void> {
    if (old.deleted === true || old.type === 'dir') return
    if (old.size > this.#init.maxBytes) {
      log('%s (%d bytes) is larger than the history cap: not kept', old.path, old.size)
      return
    }
    if (old.type === 'file') await this.#copyLost(old, next, options)
    const { local: _local, ...entry } = old
    const snapshot = await encodeSnapshot([entry])
    for (const block of snapshot.blocks) await this.#init.store.put(block.cid, block.bytes, options)
    await this.#init.store.pin(snapshot.root, options)
    const record: KeptVersion = {
      version: this.#next++,
      path: old.path,
      type: old.type,
      size: old.size,
      mtime: old.mtime,
      modifiedBy: old.modifiedBy,
      keptAt: this.#now(),
      reason,
      snapshot: snapshot.root
    }
    await this.#init.kv.batch([{ type: 'put', key: versionKey(this.#init.share, record.path, record.version), value: encodeRecord(record) }])
    this.#records.push(record)
    this.#bytes += record.size
    await this.prune(options)
  }

  /**
   * The chunks of `old` that `next` does not hold into the block store,
   * read from the file itself (store.put checks every hash and skips blocks
   * it already has). Shared chunks stay in the new file.
   */
  async #copyLost (old: LocalEntry, next: ShareEntry | undefined, options: AbortOptions): Promise<void> {
    const chunks = old.chunks ?? []
    const stays = new Set(next != null && next.deleted !== true && next.type === 'file' ? (next.chunks ?? []).map(c => c.cid.toString()) : [])
    const offsets = chunkOffsets(chunks)
    const lost: number[] = []
    for (let i = 0; i < chunks.length; i++) {
      const key = chunks[i].cid.toString()
      // a chunk repeated in the file is copied once
      if (!stays.has(key)) lost.push(i)
      stays.add(key)
    }
    if (lost.length === 0) return
    const handle = await this.#init.fs.openRead(`${this.#init.root}/${old.path}`)
    try {
      for (const i of lost) {
        options.signal?.throwIfAborted()
        const buf = new Uint8Array(chunks[i].length)
        let done = 0
        while (done < buf.byteLength) {
          const n = await handle.read(buf.subarray(done), offsets[i] + done)
          if (n === 0) break
          done += n
        }
        await this.#init.store.put(chunks[i].cid, buf, options)
      }
    } finally {
      await handle.close()
    }
  }

  /** Kept versions of `path` (every path when absent), newest first. */
  list (path?: string): HistoryVersion[] {
    return this.#records
      .filter(r => path === undefined || r.path === path)
      .map(({ snapshot: _s, ...v }) => v)
      .reverse()
  }

  /** The entry of a kept version (the newest of `path` when `version` is absent). */
  async entry (path: string, version?: number, options: AbortOptions = {}): Promise<{ version: HistoryVersion, entry: ShareEntry }> {
    const record = [...this.#records].reverse().find(r => r.path === path && (version === undefined || r.version === version))
    if (record == null) {
      throw new VersionNotFoundError(version === undefined ? `no kept version of ${path}` : `no version ${version} of ${path}`)
    }
    const [entry] = await loadSnapshot(record.snapshot, { get: async (cid, opts) => this.#init.store.get(cid, opts) }, options)
    const { snapshot: _s, ...v } = record
    return { version: v, entry }
  }

  /** Drops versions past the retention period, then the oldest while over the size cap. Returns how many went. */
  async prune (options: AbortOptions = {}): Promise<number> {
    const cutoff = this.#now() - this.#init.retentionMs
    let removed = 0
    while (this.#records.length > 0 && (this.#records[0].keptAt < cutoff || this.#bytes > this.#init.maxBytes)) {
      await this.#drop(this.#records[0], options)
      removed++
    }
    return removed
  }

  /** Forgets every version (the share was removed). */
  async clear (options: AbortOptions = {}): Promise<void> {
    while (this.#records.length > 0) await this.#drop(this.#records[0], options)
  }

  async #drop (record: KeptVersion, options: AbortOptions): Promise<void> {
    // pins are not counted: two versions with the same entry share one
    if (!this.#records.some(r => r !== record && r.snapshot.equals(record.snapshot))) {
      await this.#init.store.unpin(record.snapshot, options).catch(err => { log('unpin of %s failed: %e', record.path, err) })
    }
    await this.#init.kv.batch([{ type: 'del', key: versionKey(this.#init.share, record.path, record.version) }])
    this.#records.shift()
    this.#bytes -= record.size
  }
}
