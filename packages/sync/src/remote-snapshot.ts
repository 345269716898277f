/**
 * Blocks of another device's snapshot while it is read: pages this device
 * already holds (unchanged pages keep their CID) come from the share
 * database, the rest from that device over the share protocol, fetched in
 * batches and hash-checked on arrival. What is held is capped, so a hostile
 * snapshot cannot fill memory.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { MAX_BLOCKS_PER_REQUEST, MAX_REMOTE_SNAPSHOT_BYTES, MAX_SNAPSHOT_PAGES } from './constants.js'
import { IntegrityError, LimitExceededError, NotFoundError } from './errors.js'
import { equalBytes, type SnapshotBlocks } from './snapshot.js'
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
  readonly #held = new Map<string, Uint8Array>()
  #bytes = 0

  constructor (init: RemoteSnapshotBlocksInit) {
    this.#init = init
  }

  async get (cid: CID, options: AbortOptions = {}): Promise<Uint8Array> {
    const held = this.#held.get(cid.toString()) ?? await this.#init.local(cid)
    if (held != null) return held
    await this.#fetch([cid], options)
    return this.#held.get(cid.toString()) ?? this.#missing(cid)
  }

  /** Fetches the root and every page this device lacks, in batches (instead of one round trip per page). */
  async prefetch (root: CID, options: AbortOptions = {}): Promise<void> {
    const bytes = await this.get(root, options)
    let pages: CID[] = []
    try {
      const value = dagCbor.decode<{ pages?: unknown }>(bytes)
      if (Array.isArray(value?.pages) && value.pages.length <= MAX_SNAPSHOT_PAGES) {
        pages = value.pages.map(p => CID.asCID(p)).filter((c): c is CID => c != null)
      }
    } catch {
      return // readSnapshot reports a malformed root
    }
    const missing: CID[] = []
    for (const cid of pages) {
      if (!this.#held.has(cid.toString()) && await this.#init.local(cid) == null) missing.push(cid)
    }
    for (let i = 0; i < missing.length; i += MAX_BLOCKS_PER_REQUEST) {
      await this.#fetch(missing.slice(i, i + MAX_BLOCKS_PER_REQUEST), options)
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
      this.#held.set(reply.cid.toString(), reply.bytes)
    }
  }

  #missing (cid: CID): never {
    throw new NotFoundError(`snapshot block ${cid.toString()} is not served by the device`)
  }
}
