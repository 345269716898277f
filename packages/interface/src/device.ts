/** How the device believes the outside world sees it (AutoNAT, UPnP). */
export type Reachability = 'public' | 'private' | 'unknown'

/** What `homecloud id` prints. */
export interface DeviceIdentity {
  peerId: string
  name: string
  addresses: string[]
  reachability: Reachability
}

/** A path to a connected peer. */
export interface PeerConnectionInfo {
  peerId: string
  address: string
  /** `relayed` when the connection runs through a circuit relay. */
  path: 'direct' | 'relayed'
  direction: 'inbound' | 'outbound'
  /** Round-trip time of the last ping, in milliseconds, when known. */
  latencyMs?: number
}

/** What `homecloud status` prints. */
export interface DeviceStatus {
  peerId: string
  name: string
  uptimeMs: number
  connections: number
  peers: number
  reachability: Reachability
  dhtMode: 'server' | 'client' | 'off'
  relayReservations: string[]
  /** Signed peer records rejected so far (D2), by reason. */
  rejectedPeerRecords: Record<string, number>
}
