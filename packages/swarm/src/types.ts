/**
 * The public shapes of the swarm service: its components, options, and what it reports.
 */
import type { SwarmDatastore } from './datastore.js'
import type { ForgedEntryReason } from './errors.js'
import type { GateStats } from './gate.js'
import type { PeerRecordRejection, RendezvousStats } from './rendezvous.js'
import type { AbortOptions, ContentRouting, Libp2p, PeerId, PeerStore, PrivateKey } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** What the service needs from the device; `packages/node` passes the libp2p node for the `Pick`s. */
export interface SwarmComponents {
  peerId: PeerId
  /** The device key: signs roster entries. */
  privateKey: PrivateKey
  registrar: Pick<Libp2p, 'handle' | 'unhandle'>
  dialer: Pick<Libp2p, 'dialProtocol'>
  connectionManager: Pick<Libp2p, 'getConnections' | 'hangUp'>
  events: Pick<Libp2p, 'addEventListener' | 'removeEventListener'>
  addresses: Pick<Libp2p, 'getMultiaddrs'>
  peerStore: Pick<PeerStore, 'get' | 'consumePeerRecord'>
  contentRouting: Pick<ContentRouting, 'provide' | 'findProviders'>
  datastore: SwarmDatastore
}

export interface SwarmServiceInit {
  /** This device's human name, shown to other members. */
  deviceName: string
  /** One join or roster sync exchange, end to end. */
  protocolTimeoutMs?: number
  /** Period of rendezvous (announce + look up members); 0 turns the timer off. */
  rendezvousIntervalMs?: number
  /** Milliseconds since the epoch; tests move it to expire invites. */
  now?(): number
}

export interface SwarmInfo {
  id: string
  name: string
  members: number
  /** Rotations of the secret so far. */
  epoch: number
  /** This device holds the current secret. */
  secretKnown: boolean
}

export interface SwarmMemberInfo {
  peerId: string
  name: string
  addedBy: string
  self: boolean
  online: boolean
  /** How the device is connected now, when online. */
  path?: 'direct' | 'relayed'
  /** Milliseconds since the epoch when this device last saw it connect or disconnect. */
  lastSeen?: number
}

export interface SwarmInviteInfo {
  /** Hex of the invite's public key. */
  id: string
  createdBy: string
  expires: number
  uses: number
  used: number
  /** Not expired and not used up. */
  usable: boolean
}

export interface InviteOptions extends AbortOptions {
  expiresInMs?: number
  uses?: number
  /** Addresses to put in the code instead of this device's own (by preference). */
  addresses?: Multiaddr[]
}

export interface CreatedInvite {
  code: string
  swarmId: string
  expires: number
  uses: number
}

export interface JoinOptions extends AbortOptions {
  /** This device's name on the roster (default: the service's `deviceName`). */
  name?: string
  /** Other members to try (multiaddrs ending in `/p2p/<id>`) if the inviter does not answer. */
  via?: Multiaddr[]
}

export interface RendezvousResult {
  announced: boolean
  /** Members found at the rendezvous point and synced with. */
  synced: string[]
}

export interface SwarmStats {
  gate: GateStats
  rejectedEntries: Partial<Record<ForgedEntryReason, number>>
  rejectedPeerRecords: Partial<Record<PeerRecordRejection, number>>
  joins: Record<string, number>
  /** Rendezvous so far; `triggeredRuns`: runs caused by this device's addresses changing. */
  rendezvous: RendezvousStats & { triggeredRuns: number }
}

export interface SwarmEvents {
  /** A roster (or the secret) changed. */
  'swarm:change': CustomEvent<{ swarmId: string }>
  /** A device left a roster; its streams of that swarm were reset. */
  'swarm:member-removed': CustomEvent<{ swarmId: string, peerId: string }>
  /** This device is no longer in a swarm (left, or removed). */
  'swarm:left': CustomEvent<{ swarmId: string }>
}
