/**
 * Blocks of another device's snapshot while it is read: blocks this device
 * already holds (unchanged pages and chunk lists keep their CID) come from the
 * share database, the rest from that device over the share protocol, fetched
 * in batches and hash-checked on arrival. What is held is capped, so a hostile
 * snapshot cannot fill memory.
 */
import { bytesKey } from '@homecloud/exchange'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { MAX_BLOCKS_PER_REQUEST, MAX_REMOTE_SNAPSHOT_BYTES } from './constants.js'
import { IntegrityError, LimitExceededError, NotFoundError } from './errors.js'
import { equalBytes, pageChunkLists, pageList, type ReadSnapshotOptions, type SnapshotBlocks } from './snapshot.js'
import type { BlockReply } from './share-protocol.js'
import type { AbortOptions } from '@homecloud/interface'

/** Asks the device for blocks (at most MAX_BLOCKS_PER_REQUEST at a time). */
export type FetchBlocks = (cids: CID[], options: AbortOptions) => Promise<BlockReply[]>

export interface RemoteSnapshotBlocksInit {
  /** Blocks of this device's own snapshots. */
  local(cid: CID): Promise<Uint8Array | undefined>
  remote: FetchBlocks
  maxBytes?: number
}

export class RemoteSnapshotBlocks implements SnapshotBlocks {
  readonly #init: RemoteSnapshotBlocksInit
  /** Keyed by the CID's bytes (`bytesKey`), not its string: see local-index.ts. */
  readonly #held = new Map<string, Uint8Array>()
  #bytes = 0

  constructor (init: RemoteSnapshotBlocksInit) {
    this.#init = init
  }

  async get (cid: CID, options: AbortOptions = {}): Promise<Uint8Array> {
    const held = this.#held.get(bytesKey(cid.bytes)) ?? await this.#init.local(cid)
    if (held != null) return held
    await this.#fetch([cid], options)
    return this.#held.get(bytesKey(cid.bytes)) ?? this.#missing(cid)
  }

  /**
   * Fetches the root and every index block, page and chunk list this device lacks, in
   * batches (instead of one round trip per block), but for `ownPage`s. Malformed blocks
   * are left for `readSnapshot` to report.
   */
  async prefetch (root: CID, options: ReadSnapshotOptions = {}): Promise<void> {
    const top = this.#decode(await this.get(root, options))
    if (top == null) return
    if (Array.isArray(top.idx)) await this.#fetchMissing(top.idx.map(c => CID.asCID(c)), options)
    let pages: CID[] | undefined
    try {
      pages = await pageList(top, this, options)
    } catch {
      return
    }
    if (pages == null) return
    // pages of this device's own snapshots are not read (readSnapshot skips them too)
    pages = pages.filter(cid => options.ownPage?.(cid) === undefined)
    await this.#fetchMissing(pages, options)
    const lists: CID[] = []
    for (const cid of pages) {
      const page = this.#held.get(bytesKey(cid.bytes)) ?? await this.#init.local(cid)
      if (page != null) lists.push(...pageChunkLists(this.#decode(page)))
    }
    await this.#fetchMissing(lists, options)
  }

  #decode (bytes: Uint8Array): Record<string, unknown> | undefined {
    try {
      const value = dagCbor.decode<unknown>(bytes)
      return value != null && typeof value === 'object' && !Array.isArray(value) ? value as Record<string, unknown> : undefined
    } catch {
      return undefined
    }
  }

  /** Fetches, in batches, those of `cids` that are neither held nor local. */
  async #fetchMissing (cids: Array<CID | null>, options: AbortOptions): Promise<void> {
    const missing = new Map<string, CID>()
    for (const cid of cids) {
      if (cid == null || missing.has(bytesKey(cid.bytes))) continue
      if (!this.#held.has(bytesKey(cid.bytes)) && await this.#init.local(cid) == null) missing.set(bytesKey(cid.bytes), cid)
    }
    const list = [...missing.values()]
    for (let i = 0; i < list.length; i += MAX_BLOCKS_PER_REQUEST) {
      options.signal?.throwIfAborted()
      await this.#fetch(list.slice(i, i + MAX_BLOCKS_PER_REQUEST), options)
    }
  }

  async #fetch (cids: CID[], options: AbortOptions): Promise<void> {
    for (const reply of await this.#init.remote(cids, options)) {
      if (reply.bytes == null) continue
      const digest = await sha256.digest(reply.bytes)
      if (reply.cid.multihash.code !== sha256.code || !equalBytes(digest.bytes, reply.cid.multihash.bytes)) {
        throw new IntegrityError(`snapshot block ${reply.cid.toString()} does not match its hash`)
      }
      this.#bytes += reply.bytes.byteLength
      if (this.#bytes > (this.#init.maxBytes ?? MAX_REMOTE_SNAPSHOT_BYTES)) {
        throw new LimitExceededError(`remote snapshot larger than ${this.#init.maxBytes ?? MAX_REMOTE_SNAPSHOT_BYTES} bytes`)
      }
      this.#held.set(bytesKey(reply.cid.bytes), reply.bytes)
    }
  }

  #missing (cid: CID): never {
    throw new NotFoundError(`snapshot block ${cid.toString()} is not served by the device`)
  }
}
