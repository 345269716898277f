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

/** Relay reservations kept for members of this device's swarms on top of `maxRelayReservations` (D4). */
export const FAMILY_RELAY_RESERVATIONS = 32

/** Default period of rendezvous (announce + look up members in the DHT) for each private swarm. */
export const SWARM_RENDEZVOUS_INTERVAL_MS = 5 * 60 * 1000

// bounds of content operations (add, get), D8

/** How long `add` waits for the DHT announce of a new root before it answers (the announce is then given up and logged). */
export const PROVIDE_TIMEOUT_MS = 15_000

/** How long `get` looks for providers in the DHT, and how many it keeps. */
export const FIND_PROVIDERS_TIMEOUT_MS = 15_000
export const MAX_PROVIDERS = 16

/** Bound on dialling one peer of a `get`. */
export const GET_DIAL_TIMEOUT_MS = 15_000

/** File chunks handed to the exchange per fetch: bounds the bookkeeping of one step of a large get. */
export const GET_BATCH_CHUNKS = 2048

/** Files of a get held open at once while chunks are written. */
export const GET_OPEN_FILES = 32

/** Depth of the file nodes of one UnixFS file (a balanced 174-ary tree of 2^53 bytes is 7 levels). */
export const MAX_FILE_DAG_DEPTH = 32

/** Longest name of a directory entry in bytes (Linux NAME_MAX). */
export const MAX_ENTRY_NAME_BYTES = 255

/** Public chunks (reachable from a pinned UnixFS root) the serve policy remembers: ~128 GB of content at the 256 KiB average chunk, ~35 MB of memory (D8). */
export const MAX_PUBLIC_CHUNKS = 500_000

/** A miss in the public set looks at the pins again at most this often (pins made outside `add`/`get`, DAGs still arriving). */
export const PUBLIC_RECHECK_MS = 1_000
