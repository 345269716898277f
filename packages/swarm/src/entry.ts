/**
 * Roster entries: one signed dag-cbor block each. The block is `{ body, sig }`; `sig` is the
 * ed25519 signature of the member in `body.signer` over `ENTRY_SIGNATURE_DOMAIN || dagCbor(body)`.
 * The entry's CID (dag-cbor, sha2-256) is its identity; `body.parents` links the heads its signer
 * knew, which makes the roster a DAG. The swarm id is the CID of the genesis entry.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { peerIdFromMultihash, peerIdFromPrivateKey } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { sha256 } from 'multiformats/hashes/sha2'
import { ENTRY_SIGNATURE_DOMAIN, MAX_ENTRY_BYTES, MAX_ENTRY_PARENTS, MAX_NAME_BYTES } from './constants.js'
import { ForgedEntryError } from './errors.js'
import type { PeerId, PrivateKey } from '@libp2p/interface'

interface BodyBase {
  v: 1
  /** The swarm id's bytes; empty in the genesis entry, whose CID is the swarm id. */
  swarm: Uint8Array
  parents: CID[]
  /** Multihash of the signer's PeerId. */
  signer: Uint8Array
  /** Milliseconds since the epoch when signed: shown to people, never used for ordering. */
  ts: number
}

export interface GenesisBody extends BodyBase {
  type: 'genesis'
  /** Human name of the swarm. */
  name: string
  /** Human name of the creating device. */
  device: string
  /** Makes two swarms created with the same name by the same device distinct. */
  nonce: Uint8Array
  /** Commitment to the first swarm secret. */
  commit: Uint8Array
}

export interface AddBody extends BodyBase {
  type: 'add'
  /** Multihash of the added device's PeerId. */
  device: Uint8Array
  name: string
  /** Public invite key this add spends one use of, when the device joined with an invite. */
  invite?: Uint8Array
}

export interface RemoveBody extends BodyBase {
  type: 'remove'
  device: Uint8Array
}

export interface RotateBody extends BodyBase {
  type: 'rotate'
  /** Commitment to the new swarm secret; the secret itself travels only over gated streams. */
  commit: Uint8Array
}

export interface InviteBody extends BodyBase {
  type: 'invite'
  /** Raw ed25519 public key derived from the invite token. */
  key: Uint8Array
  /** Milliseconds since the epoch after which members refuse it. */
  expires: number
  uses: number
}

export type EntryBody = GenesisBody | AddBody | RemoveBody | RotateBody | InviteBody
export type EntryType = EntryBody['type']

/** What a caller supplies to sign an entry; `v`, `signer` and `ts` are filled in. */
export type EntryDraft = DistributiveOmit<EntryBody, 'v' | 'signer' | 'ts'>
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never

/** A verified entry. */
export interface RosterEntry {
  readonly cid: CID
  /** `cid.toString()`, the key used in maps and the store. */
  readonly key: string
  readonly bytes: Uint8Array
  readonly body: EntryBody
  readonly signer: PeerId
}

const encoder = new TextEncoder()
const domain = encoder.encode(ENTRY_SIGNATURE_DOMAIN)

function signingBytes (body: EntryBody): Uint8Array {
  const encoded = dagCbor.encode(body)
  const out = new Uint8Array(domain.byteLength + encoded.byteLength)
  out.set(domain, 0)
  out.set(encoded, domain.byteLength)
  return out
}

/** Sign an entry with the device key. */
export async function createEntry (draft: EntryDraft, privateKey: PrivateKey, ts: number): Promise<RosterEntry> {
  const signer = peerIdFromPrivateKey(privateKey)
  const body = { ...draft, v: 1, signer: signer.toMultihash().bytes, ts } as EntryBody
  if (body.type === 'add' && body.invite === undefined) {
    delete body.invite // dag-cbor cannot encode undefined
  }
  checkBody(body)
  const sig = await privateKey.sign(signingBytes(body))
  const bytes = dagCbor.encode({ body, sig })
  if (bytes.byteLength > MAX_ENTRY_BYTES) {
    throw new ForgedEntryError(`entry of ${bytes.byteLength} bytes exceeds ${MAX_ENTRY_BYTES}`, 'malformed')
  }
  return withKey(CID.createV1(dagCbor.code, await sha256.digest(bytes)), bytes, body, signer)
}

function withKey (cid: CID, bytes: Uint8Array, body: EntryBody, signer: PeerId): RosterEntry {
  return { cid, key: cid.toString(), bytes, body, signer }
}

/** Decode a batch; the forged entries are returned apart, not thrown. */
export async function decodeEntries (list: Uint8Array[]): Promise<{ entries: RosterEntry[], rejected: ForgedEntryError[] }> {
  const entries: RosterEntry[] = []
  const rejected: ForgedEntryError[] = []
  for (const bytes of list) {
    try {
      entries.push(await decodeEntry(bytes))
    } catch (err) {
      if (!(err instanceof ForgedEntryError)) throw err
      rejected.push(err)
    }
  }
  return { entries, rejected }
}

/**
 * Decode and verify an entry received from anyone: size, canonical encoding, shape, ed25519
 * signature. Whether the signer may make it is the roster's question (see `RosterLog`).
 */
export async function decodeEntry (bytes: Uint8Array): Promise<RosterEntry> {
  if (!(bytes instanceof Uint8Array) || bytes.byteLength > MAX_ENTRY_BYTES) {
    throw new ForgedEntryError('entry missing or larger than the limit', 'malformed')
  }
  let block: unknown
  try {
    block = dagCbor.decode(bytes)
  } catch (err) {
    throw new ForgedEntryError('entry is not dag-cbor', 'malformed', { cause: err })
  }
  if (!isRecord(block) || !(block.sig instanceof Uint8Array) || !isRecord(block.body) || Object.keys(block).length !== 2) {
    throw new ForgedEntryError('entry is not { body, sig }', 'malformed')
  }
  const body = block.body as unknown as EntryBody
  checkBody(body)
  // Re-encoding must give the same bytes, or one signed body could travel under many CIDs.
  if (!equalBytes(dagCbor.encode({ body, sig: block.sig }), bytes)) {
    throw new ForgedEntryError('entry is not canonically encoded', 'malformed')
  }
  let signer: PeerId
  try {
    signer = peerIdFromMultihash(Digest.decode(body.signer))
  } catch (err) {
    throw new ForgedEntryError('entry signer is not a PeerId', 'malformed', { cause: err })
  }
  if (signer.type !== 'Ed25519' || signer.publicKey == null) {
    throw new ForgedEntryError('entry signer is not an ed25519 device key', 'malformed')
  }
  const valid = await signer.publicKey.verify(signingBytes(body), block.sig)
  if (!valid) {
    throw new ForgedEntryError(`bad signature on a roster entry claimed by ${signer.toString()}`, 'bad-signature')
  }
  return withKey(CID.createV1(dagCbor.code, await sha256.digest(bytes)), bytes, body, signer)
}

/** Throws `ForgedEntryError('malformed')` unless `body` has exactly the shape of its type. */
function checkBody (body: EntryBody): void {
  const b = body as unknown as Record<string, unknown>
  const fail = (why: string): never => { throw new ForgedEntryError(`malformed roster entry: ${why}`, 'malformed') }
  if (b.v !== 1) fail('unknown version')
  if (!(b.swarm instanceof Uint8Array) || b.swarm.byteLength > 64) fail('swarm')
  if (!Array.isArray(b.parents) || b.parents.length > MAX_ENTRY_PARENTS) fail('parents')
  const parents = b.parents as unknown[]
  if (!parents.every(p => CID.asCID(p) != null)) fail('parents must be CIDs')
  if (new Set(parents.map(p => String(p))).size !== parents.length) fail('duplicate parents')
  if (!(b.signer instanceof Uint8Array) || b.signer.byteLength > 64) fail('signer')
  if (!isUint(b.ts)) fail('ts')
  const isGenesis = b.type === 'genesis'
  if (isGenesis !== (parents.length === 0)) fail('only the genesis entry has no parents')
  if (isGenesis !== ((b.swarm as Uint8Array).byteLength === 0)) fail('only the genesis entry omits the swarm id')
  const fields: Record<EntryType, Record<string, (v: unknown) => boolean>> = {
    genesis: { name: isName, device: isName, nonce: v => isBytes(v, 16), commit: v => isBytes(v, 32) },
    add: { device: isPeerBytes, name: isName, invite: v => v === undefined || isBytes(v, 32) },
    remove: { device: isPeerBytes },
    rotate: { commit: v => isBytes(v, 32) },
    invite: { key: v => isBytes(v, 32), expires: isUint, uses: v => isUint(v) && (v as number) >= 1 && (v as number) <= 1000 }
  }
  const spec = fields[b.type as EntryType]
  if (spec === undefined) fail('unknown type')
  const allowed = new Set(['v', 'type', 'swarm', 'parents', 'signer', 'ts', ...Object.keys(spec)])
  for (const key of Object.keys(b)) {
    if (!allowed.has(key)) fail(`unexpected field ${key}`)
  }
  for (const [key, check] of Object.entries(spec)) {
    if (!check(b[key])) fail(`field ${key}`)
  }
}

function isRecord (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array)
}

function isUint (v: unknown): boolean {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
}

function isBytes (v: unknown, length: number): boolean {
  return v instanceof Uint8Array && v.byteLength === length
}

function isPeerBytes (v: unknown): boolean {
  return v instanceof Uint8Array && v.byteLength > 0 && v.byteLength <= 64
}

function isName (v: unknown): boolean {
  return typeof v === 'string' && v.length > 0 && encoder.encode(v).byteLength <= MAX_NAME_BYTES
}

export function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) {
    if (a[i] !== b[i]) return false
  }
  return true
}

/** Lexicographic order of bytes: the tie-break of the roster order. */
export function compareBytes (a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.byteLength, b.byteLength)
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i] - b[i]
  }
  return a.byteLength - b.byteLength
}

/** The PeerId in an entry's `device` field. */
export function devicePeerId (bytes: Uint8Array): PeerId {
  return peerIdFromMultihash(Digest.decode(bytes))
}
