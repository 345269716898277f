import type { DeviceIdentity, DeviceStatus, PeerConnectionInfo, AbortOptions } from '@homecloud/interface'
import type { PeerRecordGuard, PeerRecordVerdict } from './peer-record-guard.js'
import type { Libp2p, PeerId, PrivateKey, StreamHandler, StreamHandlerOptions } from '@libp2p/interface'
import type { DeviceLimits } from './limits.js'
import type { RosterGate, SwarmService } from '@homecloud/swarm'
import type { DeviceContentApi } from './content-types.js'
import type { ServePolicy } from '@homecloud/exchange'
import type { ShareMode, ShareService } from '@homecloud/sync'

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
  /**
   * Serve circuit relay v2 reservations to others (D4): `auto` = only while the device is publicly
   * reachable (AutoNAT or UPnP confirmed an address), `true` = always, `false` = never.
   * The relay transport (using others' relays) is always on.
   */
  relayServer: boolean | 'auto'
  /** Direct connection upgrade through relay. */
  dcutr: boolean
  /** A WebSockets listener next to TCP. */
  websockets: boolean
  /**
   * WebRTC private-to-private: relayed member connections are upgraded to direct ones (hole
   * punching). Runs without it, with a log line, where its native module cannot load.
   */
  webrtc: boolean
  /** Serve STUN (UDP, `stunServerPort`) to members for their WebRTC hole punching; for public devices. */
  stunServer: boolean
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
  /**
   * IP ranges (CIDR, e.g. `['10.77.0.0/24']`) that count as public although
   * js-libp2p calls them private: a routed company network, a NAT lab. An
   * address of the device in one of them makes it `public` and, with the DHT in
   * `auto` mode, a DHT server. Empty by default (libp2p's rule alone).
   */
  publicAddressRanges?: string[]
  /** Peers to dial at start; empty by default (no public bootstrap list, D3). */
  bootstrap?: string[]
  /**
   * STUN servers for WebRTC (`HOST:PORT`), on top of those learned from members that run one.
   * Empty by default: never libp2p's public defaults.
   */
  stunServers?: string[]
  /** UDP port of this device's STUN server when `services.stunServer` is on (default 3478). */
  stunServerPort?: number
  services?: Partial<DeviceServices>
  limits?: Partial<DeviceLimits>
  /** Start the device before `createHomecloudNode` returns (like `createLibp2p`); default true. */
  start?: boolean
  /** LevelDB folder for private swarms (rosters, secrets); in memory when absent (tests). */
  swarmDatastorePath?: string
  /** Tuning of the private swarms; the defaults suit a device. */
  swarm?: Partial<SwarmTuning>
  /** LevelDB folder of the chunk store (absolute; the app uses `<repo>/store`); in memory when absent (tests). */
  storePath?: string
  /**
   * Which peer may be served which block, on top of the device's own rule
   * (public content to anyone, share content to the share's roster only);
   * default: no further limit (`SERVE_WHAT_IS_HELD`).
   */
  servePolicy?: ServePolicy
  /** LevelDB folder of the shares (definitions, indexes, heads, history records; absolute); in memory when absent (tests). */
  shareDatastorePath?: string
  /** Options of the shares; the defaults suit a device. */
  shares?: ShareTuning
}

/** Options of the shares of a device (issue 5). */
export interface ShareTuning {
  /** Accept every share offered by a member of this device's swarms into `<autoAcceptDir>/<share name>` (a backup box). */
  autoAcceptDir?: string
  /** Mode of auto-accepted shares (default `receive-only`). */
  autoAcceptMode?: ShareMode
  /** How long replaced and deleted versions are kept (default 30 days). */
  historyRetentionMs?: number
  /** Most bytes of kept versions per share. */
  historyMaxBytes?: number
  /** Free space kept on a share's filesystem, as a fraction (default 0.01); below it the share pauses. */
  minFreeFraction?: number
  /** Watch share folders (default true); without it, changes are found by periodic rescans. */
  watch?: boolean
  /** From the first change of a burst to its scan (ms, at most 1000). */
  watchDebounceMs?: number
  /** Full rescan period (ms). */
  rescanIntervalMs?: number
  /** Retry period of a paused or failed pull (ms). */
  retryIntervalMs?: number
}

/** Timing of the private swarms. */
export interface SwarmTuning {
  /** Period of rendezvous in the DHT (announce, look up members); 0 turns it off. Off when the DHT is. */
  rendezvousIntervalMs: number
  /** Time for one join or roster sync exchange with a member. */
  protocolTimeoutMs: number
}

/** One running device: its libp2p node, the questions the CLI asks of it, and its content (`add`, `get`, `blocks`). */
export interface HomecloudNode extends DeviceContentApi {
  readonly libp2p: Libp2p
  readonly peerId: PeerId
  readonly name: string
  /** The limits in force (defaults merged with the config's). */
  readonly limits: Readonly<DeviceLimits>
  /** The one door for signed peer records (D2); its rejection counts are in `status()`. */
  readonly peerRecordGuard: PeerRecordGuard
  /** The private swarms of this device: create, invite, join, members, remove, leave (issue 4). */
  readonly swarms: SwarmService
  /** The access gate every private protocol registers through (`swarms.gate`, D1). */
  readonly gate: RosterGate
  /** The shares of this device: folders kept identical on the members of a private swarm (issue 5). */
  readonly shares: ShareService
  start(): Promise<void>
  stop(): Promise<void>
  /**
   * Drops what the device caches only for speed (the chunk store's places of chunks in
   * indexed files, its open files; the write buffers of the store's and the shares' databases): the daemon calls
   * it when idle, before it trims its memory (issue 5 f). Nothing is lost; the next reads
   * look places up in the index.
   */
  releaseCaches(): Promise<void>
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
