/**
 * Rendezvous: where members of a private swarm meet in the DHT, and which of their addresses
 * this device believes (D2).
 *
 * The meeting point is a CID derived from the swarm secret with HKDF-SHA256 (salt: the swarm id,
 * info: `homecloud/rendezvous/v1`), so nobody without the secret can compute it, and it moves
 * when the secret is rotated. Providers found there are only dialled if they are on the roster;
 * the addresses the DHT gives are dial hints that Noise authenticates, never stored as the
 * member's addresses. A member's addresses are believed only from its signed peer record
 * (`PeerRecordGuard`): signed by that member's own key, with a sequence number strictly higher
 * than the one held.
 */
import { hkdfSync } from 'node:crypto'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { PeerRecord, RecordEnvelope } from '@libp2p/peer-record'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { withoutPeer } from './addresses.js'
import { MAX_PEER_RECORD_BYTES, RENDEZVOUS_INFO } from './constants.js'
import { equalBytes } from './entry.js'
import type { AbortOptions, ContentRouting, Libp2p, PeerId, PeerStore, PrivateKey } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** Addresses in one signed peer record, at most (RELIABILITY: a cap on addresses per peer). */
export const MAX_RECORD_ADDRESSES = 32
/** Providers examined per lookup, at most. */
export const MAX_PROVIDERS_PER_LOOKUP = 64

/** The DHT key members of a swarm provide and look up; a function of the secret and the swarm id. */
export async function rendezvousCid (secret: Uint8Array, swarmId: CID): Promise<CID> {
  const key = new Uint8Array(hkdfSync('sha256', secret, swarmId.bytes, RENDEZVOUS_INFO, 32))
  return CID.createV1(raw.code, await sha256.digest(key))
}

export type PeerRecordRejection = 'malformed' | 'wrong-signer' | 'replayed' | 'not-a-member' | 'too-many-addresses'

/** `unchanged`: the very record already held (passed on by another member); not a rejection. */
export type PeerRecordVerdict = { accepted: true, peer: PeerId } | { accepted: false, reason: PeerRecordRejection | 'unchanged' }

export interface PeerRecordGuardOptions extends AbortOptions {
  /** The device the record is expected to describe (and be signed by). */
  expectedPeer?: PeerId
  /** Only records of devices this returns true for are stored. */
  isMember?(peer: PeerId): boolean
}

/** Stores members' signed peer records, refusing forged, foreign-signed and replayed ones; counts refusals. */
export class PeerRecordGuard {
  private readonly rejected: Partial<Record<PeerRecordRejection, number>> = {}

  constructor (private readonly peerStore: Pick<PeerStore, 'get' | 'consumePeerRecord'>) {}

  async accept (envelopeBytes: Uint8Array, options: PeerRecordGuardOptions = {}): Promise<PeerRecordVerdict> {
    const verdict = await this.check(envelopeBytes, options)
    if (!verdict.accepted && verdict.reason !== 'unchanged') this.rejected[verdict.reason] = (this.rejected[verdict.reason] ?? 0) + 1
    return verdict
  }

  /** Refusals so far, by reason. */
  stats (): Partial<Record<PeerRecordRejection, number>> {
    return { ...this.rejected }
  }

  private async check (bytes: Uint8Array, options: PeerRecordGuardOptions): Promise<PeerRecordVerdict> {
    if (!(bytes instanceof Uint8Array) || bytes.byteLength > MAX_PEER_RECORD_BYTES) return { accepted: false, reason: 'malformed' }
    let signer: PeerId
    let record: PeerRecord
    try {
      // checks the signature against the key in the envelope, nothing more
      const envelope = await RecordEnvelope.openAndCertify(bytes, PeerRecord.DOMAIN, options)
      signer = peerIdFromPublicKey(envelope.publicKey)
      record = PeerRecord.createFromProtobuf(envelope.payload)
    } catch {
      return { accepted: false, reason: 'malformed' }
    }
    if (!record.peerId.equals(signer) || (options.expectedPeer != null && !options.expectedPeer.equals(signer))) {
      return { accepted: false, reason: 'wrong-signer' }
    }
    if (options.isMember != null && !options.isMember(signer)) return { accepted: false, reason: 'not-a-member' }
    if (record.multiaddrs.length > MAX_RECORD_ADDRESSES) return { accepted: false, reason: 'too-many-addresses' }
    const stored = await this.stored(signer, options)
    if (stored !== undefined && equalBytes(stored.bytes, bytes)) return { accepted: false, reason: 'unchanged' }
    if (stored !== undefined && stored.seq >= record.seqNumber) return { accepted: false, reason: 'replayed' }
    // the peer store checks signer and sequence again and writes the certified addresses
    const consumed = await this.peerStore.consumePeerRecord(bytes, { ...options, expectedPeer: signer })
    return consumed ? { accepted: true, peer: signer } : { accepted: false, reason: 'replayed' }
  }

  private async stored (peer: PeerId, options: AbortOptions): Promise<{ bytes: Uint8Array, seq: bigint } | undefined> {
    try {
      const bytes = (await this.peerStore.get(peer, options)).peerRecordEnvelope
      if (bytes == null) return undefined
      return { bytes, seq: PeerRecord.createFromProtobuf(RecordEnvelope.createFromProtobuf(bytes).payload).seqNumber }
    } catch (err) {
      if ((err as { name?: string }).name === 'NotFoundError') return undefined
      throw err
    }
  }
}

/** A member found at the rendezvous point, with addresses to try (authenticated only by dialling). */
export interface FoundMember {
  peerId: PeerId
  dialHints: Multiaddr[]
}

export interface RendezvousComponents {
  peerId: PeerId
  contentRouting: Pick<ContentRouting, 'provide' | 'findProviders'>
}

/** Members kept in `Rendezvous.stats().found`, at most. */
export const MAX_FOUND_KEPT = 256

export interface RendezvousStats {
  /** Announcements tried (one per swarm per run). */
  runs: number
  /** Of which reached the DHT. */
  announced: number
  /** Members found at a rendezvous point since start, with the dial hints of the latest find. */
  found: Array<{ peerId: string, dialHints: string[] }>
}

/** Announce this device at, and find members at, a swarm's rendezvous point. */
export class Rendezvous {
  private runs = 0
  private announced = 0
  private readonly found = new Map<string, string[]>()

  constructor (private readonly components: RendezvousComponents) {}

  async announce (cid: CID, options: AbortOptions = {}): Promise<void> {
    this.runs++
    // kad-dht sends this device's current addresses with the record, relay (p2p-circuit) ones
    // included: the only way into a member behind NAT
    await this.components.contentRouting.provide(cid, options)
    this.announced++
  }

  stats (): RendezvousStats {
    return { runs: this.runs, announced: this.announced, found: [...this.found].map(([peerId, dialHints]) => ({ peerId, dialHints })) }
  }

  /** Providers of `cid` that `isMember` accepts, self excluded; at most `MAX_PROVIDERS_PER_LOOKUP` examined. */
  async * findMembers (cid: CID, isMember: (peer: PeerId) => boolean, options: AbortOptions = {}): AsyncGenerator<FoundMember> {
    let examined = 0
    const seen = new Set<string>()
    for await (const provider of this.components.contentRouting.findProviders(cid, options)) {
      if (++examined > MAX_PROVIDERS_PER_LOOKUP) return
      const key = provider.id.toString()
      if (seen.has(key) || provider.id.equals(this.components.peerId) || !isMember(provider.id)) continue
      seen.add(key)
      const dialHints = provider.multiaddrs.slice(0, MAX_RECORD_ADDRESSES)
      if (this.found.has(key) || this.found.size < MAX_FOUND_KEPT) this.found.set(key, dialHints.map(String))
      yield { peerId: provider.id, dialHints }
    }
  }
}

/** Signs this device's own peer record for passing on to members, with a strictly increasing sequence number. */
export class OwnPeerRecord {
  private lastSeq = 0n

  constructor (private readonly components: { peerId: PeerId, privateKey: PrivateKey, addresses: Pick<Libp2p, 'getMultiaddrs'> }) {}

  async seal (options: AbortOptions = {}): Promise<Uint8Array> {
    const multiaddrs = this.components.addresses.getMultiaddrs().map(withoutPeer)
    // milliseconds like libp2p's identify, so neither kind of record of ours outranks the other for
    // long; bumped within one millisecond so two fresh records never tie
    const now = BigInt(Date.now())
    this.lastSeq = now > this.lastSeq ? now : this.lastSeq + 1n
    const record = new PeerRecord({ peerId: this.components.peerId, multiaddrs, seqNumber: this.lastSeq })
    return (await RecordEnvelope.seal(record, this.components.privateKey, options)).marshal()
  }
}
