/**
 * What the share service keeps about each share, in its key-value store:
 * the definition, the local index, this device's head and snapshot blocks,
 * the heads accepted from other devices. One place knows the key layout and
 * the encodings (dag-cbor, CIDs as links).
 */
import * as dagCbor from '@ipld/dag-cbor'
import { base32 } from 'multiformats/bases/base32'
import { CID } from 'multiformats/cid'
import { InvalidSnapshotError } from './errors.js'
import { kvKey, kvPrefix, type KvOperation, type ShareKv } from './share-kv.js'
import type { LocalEntry } from './entry.js'
import type { RefusedRecord } from './refused-entries.js'

/**
 * `send-receive`: changes flow both ways. `receive-only` (a backup box): local
 * changes are not sent and can be reverted. `send-only`: remote changes are
 * not applied.
 */
export type ShareMode = 'send-receive' | 'receive-only' | 'send-only'

export const SHARE_MODES: readonly ShareMode[] = ['send-receive', 'receive-only', 'send-only']

/** A share as this device holds it. */
export interface ShareDefinition {
  /** Random, the same on every device of the share. */
  id: string
  name: string
  /** Id of the private swarm whose roster may replicate it. */
  swarm: string
  /** Absolute path of the folder on this device. */
  path: string
  mode: ShareMode
  /** Milliseconds since the epoch. */
  createdAt: number
}

/** This device's current head, and the snapshot blocks it (and the one before) consist of. */
export interface OwnHead {
  seq: number
  root: CID
  /** The signed head as sent to peers. */
  signed: Uint8Array
  blocks: CID[]
  /** The previous snapshot, still served to peers that started reading it. */
  prev?: { root: CID, blocks: CID[] }
}

/** The newest verified head of another device. */
export interface PeerHead {
  seq: number
  snapshot: CID
  signed: Uint8Array
  /** The snapshot last pulled from this device without errors. */
  applied?: CID
}

const SHARE = 's'
const ENTRY = 'e'
const HEAD = 'h'
const BLOCK = 'b'
const PEER = 'p'
const PENDING = 'r'
const REFUSED = 'f'

/**
 * Refused paths kept per member's head: a hostile head could name up to a
 * snapshot's million entries; beyond this many only whether the head is
 * settled is kept (a retry of an unsettled one refuses the rest again).
 */
export const MAX_KEPT_REFUSED_PATHS = 10_000

/** The keys of one share's records (prefixes end in NUL). */
export const shareKeys = {
  definition: (share: string) => kvKey(SHARE, share),
  definitions: () => kvPrefix(SHARE),
  entry: (share: string, path: string) => kvKey(ENTRY, share, path),
  entries: (share: string) => kvPrefix(ENTRY, share),
  head: (share: string) => kvKey(HEAD, share),
  // `toString`'s form for a CIDv1, built without caching it on the CID (a head's CIDs are long-lived)
  block: (share: string, cid: CID) => kvKey(BLOCK, share, cid.version === 1 ? base32.encode(cid.bytes) : cid.toString()),
  blocks: (share: string) => kvPrefix(BLOCK, share),
  peer: (share: string, device: string) => kvKey(PEER, share, device),
  peers: (share: string) => kvPrefix(PEER, share),
  /** A file renamed into place whose index entry may not be written yet (see `PendingRename`). */
  pending: (share: string, path: string) => kvKey(PENDING, share, path),
  pendings: (share: string) => kvPrefix(PENDING, share),
  /** A member's head whose entries this device refuses for good (refused-entries.ts). */
  refused: (share: string, device: string) => kvKey(REFUSED, share, device),
  refusedAll: (share: string) => kvPrefix(REFUSED, share)
}

export function encodeRecord (value: unknown): Uint8Array {
  return dagCbor.encode(value)
}

export function decodeRecord<T> (bytes: Uint8Array): T {
  return dagCbor.decode<T>(bytes)
}

/** dag-cbor refuses `undefined`: only the fields an entry has are written. */
export function encodeEntry (e: LocalEntry): Uint8Array {
  const out: Record<string, unknown> = {
    path: e.path, type: e.type, size: e.size, mtime: e.mtime, mode: e.mode, version: e.version, modifiedBy: e.modifiedBy
  }
  if (e.chunks != null) out.chunks = e.chunks.map(c => ({ cid: c.cid, length: c.length }))
  if (e.target != null) out.target = e.target
  if (e.deleted === true) out.deleted = true
  if (e.local != null) out.local = { ino: e.local.ino, mtimeMs: e.local.mtimeMs }
  return dagCbor.encode(out)
}

export function decodeEntry (bytes: Uint8Array): LocalEntry {
  const e = dagCbor.decode<LocalEntry>(bytes)
  if (e == null || typeof e.path !== 'string') throw new InvalidSnapshotError('corrupt local index entry')
  if (e.chunks != null) e.chunks = e.chunks.map(c => ({ cid: CID.asCID(c.cid) as CID, length: c.length }))
  return e
}

/** The records of every share, over one key-value store. */
export class ShareRecords {
  constructor (readonly kv: ShareKv) {}

  async definitions (): Promise<ShareDefinition[]> {
    const out: ShareDefinition[] = []
    for await (const [, value] of this.kv.entries(shareKeys.definitions())) out.push(decodeRecord<ShareDefinition>(value))
    return out
  }

  async putDefinition (def: ShareDefinition): Promise<void> {
    await this.kv.batch([{ type: 'put', key: shareKeys.definition(def.id), value: encodeRecord(def) }])
  }

  async * entries (share: string): AsyncGenerator<LocalEntry> {
    for await (const [, value] of this.kv.entries(shareKeys.entries(share))) yield decodeEntry(value)
  }

  async head (share: string): Promise<OwnHead | undefined> {
    const bytes = await this.kv.get(shareKeys.head(share))
    return bytes == null ? undefined : decodeRecord<OwnHead>(bytes)
  }

  async block (share: string, cid: CID): Promise<Uint8Array | undefined> {
    return this.kv.get(shareKeys.block(share, cid))
  }

  async peerHeads (share: string): Promise<Map<string, PeerHead>> {
    const out = new Map<string, PeerHead>()
    const prefix = shareKeys.peers(share)
    for await (const [key, value] of this.kv.entries(prefix)) out.set(key.slice(prefix.length), decodeRecord<PeerHead>(value))
    return out
  }

  async putPeerHead (share: string, device: string, head: PeerHead): Promise<void> {
    const value: Record<string, unknown> = { seq: head.seq, snapshot: head.snapshot, signed: head.signed }
    if (head.applied != null) value.applied = head.applied
    await this.kv.batch([{ type: 'put', key: shareKeys.peer(share, device), value: encodeRecord(value) }])
  }

  async deletePeerHead (share: string, device: string): Promise<void> {
    await this.kv.batch([{ type: 'del', key: shareKeys.peer(share, device) }])
  }

  /** Members' heads with entries refused for good, as the last run left them. */
  async refused (share: string): Promise<Map<string, RefusedRecord>> {
    const out = new Map<string, RefusedRecord>()
    const prefix = shareKeys.refusedAll(share)
    for await (const [key, value] of this.kv.entries(prefix)) {
      const r = decodeRecord<RefusedRecord>(value)
      const snapshot = CID.asCID(r?.snapshot)
      // a record this version cannot read is only a head pulled once more
      if (snapshot == null || !Array.isArray(r.paths) || typeof r.settled !== 'boolean') continue
      out.set(key.slice(prefix.length), { snapshot, paths: r.paths.filter(p => typeof p === 'string'), settled: r.settled })
    }
    return out
  }

  /** Keeps (or, with no record, forgets) what a member's head has refused. */
  async putRefused (share: string, device: string, record: RefusedRecord | undefined): Promise<void> {
    const key = shareKeys.refused(share, device)
    if (record == null) {
      await this.kv.batch([{ type: 'del', key }])
      return
    }
    await this.kv.batch([{ type: 'put', key, value: encodeRecord({ ...record, paths: record.paths.slice(0, MAX_KEPT_REFUSED_PATHS) }) }])
  }

  /** Every record of a share (history records are removed by the history, which unpins them). */
  async deleteShare (share: string): Promise<void> {
    const ops: KvOperation[] = [{ type: 'del', key: shareKeys.definition(share) }, { type: 'del', key: shareKeys.head(share) }]
    for (const prefix of [shareKeys.entries(share), shareKeys.blocks(share), shareKeys.peers(share), shareKeys.refusedAll(share)]) {
      for await (const [key] of this.kv.entries(prefix)) {
        ops.push({ type: 'del', key })
        if (ops.length >= 1000) await this.kv.batch(ops.splice(0))
      }
    }
    await this.kv.batch(ops)
  }
}
