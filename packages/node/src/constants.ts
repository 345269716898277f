/** Logger scope of this package. */
export const LOG_SCOPE = 'homecloud:node'

/** TCP listener when the config names none (issue 2). */
export const DEFAULT_TCP_LISTEN = '/ip4/0.0.0.0/tcp/4001'

/** WebSockets listener added to the default TCP one when WebSockets are on. */
export const DEFAULT_WS_LISTEN = '/ip4/0.0.0.0/tcp/4002/ws'

/** Longest device name; it travels to other members and lands in their UIs. */
export const MAX_NAME_LENGTH = 64

/** Most entries in each of `listen`, `announce` and `bootstrap`. */
export const MAX_CONFIG_ADDRESSES = 64

/** How long one bootstrap dial may take before it is given up (it is retried by the reconnect queue). */
export const BOOTSTRAP_DIAL_TIMEOUT_MS = 10_000

/** Bound on a ping made to fill in a connection's latency when libp2p has not measured it yet. */
export const LATENCY_PING_TIMEOUT_MS = 2_000

/** Pings run at once when `peers()` has to measure latency itself. */
export const LATENCY_PING_CONCURRENCY = 8

/** Tag name on peers dialled because the config lists them as bootstrap peers. */
export const BOOTSTRAP_TAG = 'homecloud-bootstrap'

/** mDNS service name: devices find each other on the LAN, not every IPFS node there. */
export const MDNS_SERVICE_TAG = '_homecloud._udp.local'

/** Kademlia protocol: the IPFS Amino DHT, so publications are findable from IPFS (D3). */
export const DHT_PROTOCOL = '/ipfs/kad/1.0.0'
