import type { DeviceIdentity, DeviceStatus, PeerConnectionInfo, AbortOptions } from '@homecloud/interface'
import type { PeerRecordGuard, PeerRecordVerdict } from './peer-record-guard.js'
import type { Libp2p, PeerId, PrivateKey, StreamHandler, StreamHandlerOptions } from '@libp2p/interface'
import type { DeviceLimits } from './limits.js'

/** Which libp2p services a device runs; each can be turned off. */
export interface DeviceServices {
  /** Multicast discovery on the LAN. Tests and the demo turn it off. */
  mdns: boolean
  /** Port mapping on the home router. Tests and the demo turn it off. */
  upnp: boolean
  /** Kademlia DHT; `auto` = server when publicly reachable, client otherwise (D3). */
  dht: 'auto' | 'server' | 'client' | 'off'
  /** AutoNAT v2 reachability checks (client and server). */
  autonat: boolean
  /** Serve circuit relay v2 reservations to others (D4). The relay transport is always on. */
  relayServer: boolean
  /** Direct connection upgrade through relay. */
  dcutr: boolean
  /** A WebSockets listener next to TCP. */
  websockets: boolean
}

/** Everything `createHomecloudNode` needs; apps/homecloud reads it from the repo and the command line. */
export interface HomecloudNodeConfig {
  /** The device's ed25519 key: its identity (the app loads it from the repo). */
  privateKey: PrivateKey
  /** Human name of the device, shown to other members. */
  name: string
  /** LevelDB folder for the peer store and DHT records; in memory when absent (tests). */
  datastorePath?: string
  /** Listen multiaddrs; port 0 picks a free port. */
  listen?: string[]
  /** Extra addresses to announce (a port forward the device cannot discover). */
  announce?: string[]
  /** Peers to dial at start; empty by default (no public bootstrap list, D3). */
  bootstrap?: string[]
  services?: Partial<DeviceServices>
  limits?: Partial<DeviceLimits>
  /** Start the device before `createHomecloudNode` returns (like `createLibp2p`); default true. */
  start?: boolean
}

/** One running device: its libp2p node and the questions the CLI asks of it. */
export interface HomecloudNode {
  readonly libp2p: Libp2p
  readonly peerId: PeerId
  readonly name: string
  /** The limits in force (defaults merged with the config's). */
  readonly limits: Readonly<DeviceLimits>
  /** The one door for signed peer records (D2); its rejection counts are in `status()`. */
  readonly peerRecordGuard: PeerRecordGuard
  start(): Promise<void>
  stop(): Promise<void>
  /** What `homecloud id` prints. */
  identity(): DeviceIdentity
  /** What `homecloud status` prints. */
  status(): DeviceStatus
  /** Connected peers, one row per connection. */
  peers(options?: AbortOptions): Promise<PeerConnectionInfo[]>
  /** Dial a multiaddr (with `/p2p/<id>`) and return the resulting connection. */
  connect(multiaddr: string, options?: AbortOptions): Promise<PeerConnectionInfo>
  /**
   * Register a Home Cloud protocol; stream counts default to
   * `limits.maxStreamsPerProtocol` in each direction.
   */
  handle(protocol: string, handler: StreamHandler, options?: StreamHandlerOptions): Promise<void>
  unhandle(protocol: string, options?: AbortOptions): Promise<void>
  /**
   * Check a signed peer record obtained elsewhere (a DHT answer, a roster) for
   * `expectedPeer` and store its addresses if it is valid and newer (D2).
   */
  consumePeerRecord(envelope: Uint8Array, expectedPeer: PeerId, options?: AbortOptions): Promise<PeerRecordVerdict>
}
