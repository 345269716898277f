/**
 * D2: signed address records are the only truth about where a device is.
 *
 * `PeerRecordGuard.consume` is the one door through which a peer's addresses
 * enter the peer store as `isCertified`. It checks what
 * `RecordEnvelope.openAndCertify` does not (that alone accepts a record naming
 * peer A signed by key B), keeps only strictly newer records, and counts every
 * rejection by reason.
 */
import { logger } from '@libp2p/logger'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { PeerRecord, RecordEnvelope } from '@libp2p/peer-record'
import { equals as uint8ArrayEquals } from 'uint8arrays/equals'
import { LOG_SCOPE } from './constants.js'
import type { AbortOptions, PeerId, PeerStore } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** Why a signed peer record was not believed. */
export type PeerRecordRejection =
  /** Larger than the identify message limit. */
  | 'too-large'
  /** Not a decodable envelope, bad signature, or not a peer record. */
  | 'invalid-envelope'
  /** The record names one peer and is signed by another key. */
  | 'signer-mismatch'
  /** Well signed, but for another peer than the one it came from or was asked about. */
  | 'unexpected-peer'
  /** Sequence number not above the stored record's (an older or replayed record). */
  | 'stale-seq'
  /** More addresses than `maxAddressesPerPeer`. */
  | 'too-many-addresses'

export const PEER_RECORD_REJECTIONS: readonly PeerRecordRejection[] = Object.freeze([
  'too-large', 'invalid-envelope', 'signer-mismatch', 'unexpected-peer', 'stale-seq', 'too-many-addresses'
])

export type PeerRecordVerdict =
  /** Newer than what was stored: its addresses replaced the peer's addresses, certified. */
  | { status: 'accepted', peerId: PeerId, seq: bigint, addresses: Multiaddr[] }
  /** Byte-identical to the stored record (identify sends it on every connection): nothing to do. */
  | { status: 'unchanged', peerId: PeerId, seq: bigint }
  | { status: 'rejected', reason: PeerRecordRejection }

export interface PeerRecordGuardInit {
  /** Largest envelope accepted, in bytes. */
  maxRecordBytes: number
  /** Most addresses one record may carry. */
  maxAddressesPerPeer: number
}

/** The part of the peer store the guard reads and writes. */
export type PeerRecordStore = Pick<PeerStore, 'get' | 'patch'>

export class PeerRecordGuard {
  private readonly log = logger(`${LOG_SCOPE}:peer-record-guard`)
  private readonly init: PeerRecordGuardInit
  private readonly counts = new Map<PeerRecordRejection, number>()
  /** Per-peer chains so that check-then-write on one peer's record never interleaves; entries leave when idle. */
  private readonly queues = new Map<string, Promise<unknown>>()

  constructor (init: PeerRecordGuardInit) {
    this.init = init
  }

  /**
   * Checks a marshalled signed peer record envelope that arrived for
   * `expectedPeer` and, when it is valid and newer than the stored one, stores
   * it with its addresses as the peer's only (certified) addresses.
   */
  async consume (peerStore: PeerRecordStore, envelopeBytes: Uint8Array, expectedPeer: PeerId, options: AbortOptions = {}): Promise<PeerRecordVerdict> {
    const key = expectedPeer.toString()
    const previous = this.queues.get(key) ?? Promise.resolve()
    const run = previous.catch(() => {}).then(async () => this.consumeNow(peerStore, envelopeBytes, expectedPeer, options))

    this.queues.set(key, run)

    try {
      return await run
    } finally {
      if (this.queues.get(key) === run) {
        this.queues.delete(key)
      }
    }
  }

  /** Rejections so far, by reason; every reason is present (0 when none). */
  rejections (): Record<PeerRecordRejection, number> {
    const out = {} as Record<PeerRecordRejection, number>

    for (const reason of PEER_RECORD_REJECTIONS) {
      out[reason] = this.counts.get(reason) ?? 0
    }

    return out
  }

  private reject (reason: PeerRecordRejection, expectedPeer: PeerId, detail?: unknown): PeerRecordVerdict {
    this.counts.set(reason, (this.counts.get(reason) ?? 0) + 1)
    this.log('rejected signed peer record for %p: %s %s', expectedPeer, reason, detail ?? '')
    return { status: 'rejected', reason }
  }

  private async consumeNow (peerStore: PeerRecordStore, envelopeBytes: Uint8Array, expectedPeer: PeerId, options: AbortOptions): Promise<PeerRecordVerdict> {
    options.signal?.throwIfAborted()

    if (envelopeBytes.byteLength > this.init.maxRecordBytes) {
      return this.reject('too-large', expectedPeer, envelopeBytes.byteLength)
    }

    let envelope: RecordEnvelope
    let record: PeerRecord

    try {
      envelope = await RecordEnvelope.openAndCertify(envelopeBytes, PeerRecord.DOMAIN, options)

      if (!uint8ArrayEquals(envelope.payloadType, PeerRecord.CODEC)) {
        return this.reject('invalid-envelope', expectedPeer, 'payload is not a peer record')
      }

      record = PeerRecord.createFromProtobuf(envelope.payload)
    } catch (err) {
      options.signal?.throwIfAborted()
      return this.reject('invalid-envelope', expectedPeer, err)
    }

    // openAndCertify only proves that *some* key signed the bytes
    const signer = peerIdFromPublicKey(envelope.publicKey)

    if (!signer.equals(record.peerId)) {
      return this.reject('signer-mismatch', expectedPeer, `record names ${record.peerId.toString()}, signed by ${signer.toString()}`)
    }

    if (!signer.equals(expectedPeer)) {
      return this.reject('unexpected-peer', expectedPeer, `record of ${signer.toString()}`)
    }

    if (record.multiaddrs.length > this.init.maxAddressesPerPeer) {
      return this.reject('too-many-addresses', expectedPeer, record.multiaddrs.length)
    }

    const stored = await storedEnvelope(peerStore, expectedPeer, options)

    if (stored != null) {
      if (uint8ArrayEquals(stored.bytes, envelopeBytes)) {
        return { status: 'unchanged', peerId: expectedPeer, seq: record.seqNumber }
      }

      if (record.seqNumber <= stored.seq) {
        return this.reject('stale-seq', expectedPeer, `seq ${record.seqNumber} <= stored ${stored.seq}`)
      }
    }

    const addresses = record.multiaddrs.filter(ma => ma.bytes.byteLength > 0)

    // patch replaces the address list: unsigned addresses learned earlier are dropped with the old record
    await peerStore.patch(expectedPeer, {
      peerRecordEnvelope: envelopeBytes,
      addresses: addresses.map(multiaddr => ({ multiaddr, isCertified: true }))
    }, options)

    return { status: 'accepted', peerId: expectedPeer, seq: record.seqNumber, addresses }
  }
}

async function storedEnvelope (peerStore: PeerRecordStore, peerId: PeerId, options: AbortOptions): Promise<{ bytes: Uint8Array, seq: bigint } | undefined> {
  let bytes: Uint8Array | undefined

  try {
    bytes = (await peerStore.get(peerId, options)).peerRecordEnvelope
  } catch (err) {
    if ((err as Error).name !== 'NotFoundError') {
      throw err
    }
  }

  if (bytes == null) {
    return undefined
  }

  // it was verified before it was stored
  const envelope = RecordEnvelope.createFromProtobuf(bytes)
  return { bytes, seq: PeerRecord.createFromProtobuf(envelope.payload).seqNumber }
}
