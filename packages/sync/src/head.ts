import * as dagCbor from '@ipld/dag-cbor'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { HEAD_SIGNATURE_DOMAIN, MAX_HEAD_BYTES, MAX_ID_LENGTH } from './constants.js'
import { InvalidHeadError, InvalidParametersError } from './errors.js'
import type { PrivateKey } from '@libp2p/interface'

/** A device's latest snapshot of a share. `seq` only orders heads of one device; it is never a time. */
export interface Head {
  share: string
  /** PeerId of the device that signed it. */
  device: string
  seq: number
  snapshot: CID
}

export interface VerifyHeadOptions {
  /** The share the head must be for. */
  share?: string
  /** The device the head must come from (e.g. the peer that sent it). */
  device?: string
  /** The highest seq already accepted from this device: the head must be newer. */
  lastSeq?: number
}

const domain = new TextEncoder().encode(HEAD_SIGNATURE_DOMAIN)

function signedBytes (head: Head): Uint8Array {
  const body = dagCbor.encode({ share: head.share, device: head.device, seq: head.seq, snapshot: head.snapshot })
  const out = new Uint8Array(domain.byteLength + body.byteLength)
  out.set(domain)
  out.set(body, domain.byteLength)
  return out
}

/** Signs a head with the device's key; the key must be the one `head.device` names. */
export async function signHead (head: Head, key: PrivateKey): Promise<Uint8Array> {
  if (peerIdFromPrivateKey(key).toString() !== head.device) {
    throw new InvalidParametersError(`head names device ${head.device} but the key is another device's`)
  }
  if (!Number.isSafeInteger(head.seq) || head.seq < 1) throw new InvalidParametersError('head seq must be a positive integer')
  if (head.share.length === 0 || head.share.length > MAX_ID_LENGTH) throw new InvalidParametersError('bad share id')
  const sig = await key.sign(signedBytes(head))
  const bytes = dagCbor.encode({ head: { share: head.share, device: head.device, seq: head.seq, snapshot: head.snapshot }, sig })
  if (bytes.byteLength > MAX_HEAD_BYTES) throw new InvalidParametersError('head too large')
  return bytes
}

/**
 * Decodes and checks a signed head: bounded size and shape, the signature
 * made by the key of the device it names, and (when given) the expected
 * share, device and a seq strictly above the last one accepted.
 */
export async function verifyHead (bytes: Uint8Array, expect: VerifyHeadOptions = {}): Promise<Head> {
  if (bytes.byteLength > MAX_HEAD_BYTES) throw new InvalidHeadError('too-large', `${bytes.byteLength} bytes`)
  let value: unknown
  try {
    value = dagCbor.decode(bytes)
  } catch (err) {
    throw new InvalidHeadError('malformed', 'not dag-cbor', { cause: err })
  }
  const { head, sig } = (value ?? {}) as { head?: Record<string, unknown>, sig?: unknown }
  if (head == null || typeof head !== 'object' || !(sig instanceof Uint8Array)) throw new InvalidHeadError('malformed', 'missing head or signature')
  const { share, device, seq } = head
  const snapshot = CID.asCID(head.snapshot)
  if (typeof share !== 'string' || share.length === 0 || share.length > MAX_ID_LENGTH) throw new InvalidHeadError('malformed', 'bad share')
  if (typeof device !== 'string' || device.length === 0 || device.length > MAX_ID_LENGTH) throw new InvalidHeadError('malformed', 'bad device')
  if (!Number.isSafeInteger(seq) || (seq as number) < 1) throw new InvalidHeadError('malformed', 'bad seq')
  if (snapshot == null || snapshot.version !== 1 || snapshot.code !== dagCbor.code || snapshot.multihash.code !== sha256.code) {
    throw new InvalidHeadError('malformed', 'bad snapshot CID')
  }
  const parsed: Head = { share, device, seq: seq as number, snapshot }
  let publicKey
  try {
    publicKey = peerIdFromString(device).publicKey
  } catch (err) {
    throw new InvalidHeadError('malformed', 'device is not a PeerId', { cause: err })
  }
  if (publicKey == null) throw new InvalidHeadError('malformed', 'device PeerId carries no public key')
  if (!(await publicKey.verify(signedBytes(parsed), sig))) throw new InvalidHeadError('bad-signature', `not signed by ${device}`)
  if (expect.share !== undefined && expect.share !== share) throw new InvalidHeadError('wrong-share', `for share ${share}, expected ${expect.share}`)
  if (expect.device !== undefined && expect.device !== device) throw new InvalidHeadError('wrong-device', `from ${device}, expected ${expect.device}`)
  if (expect.lastSeq !== undefined && parsed.seq <= expect.lastSeq) throw new InvalidHeadError('stale-seq', `seq ${parsed.seq} ≤ ${expect.lastSeq} already accepted`)
  return parsed
}
