/**
 * Bounds of the chunk exchange (D8), sized for a box with 1 GiB of memory.
 */

/** The libp2p protocol id of the chunk exchange. */
export const PROTOCOL = '/homecloud/chunks/1.0.0'

/** Largest message on the wire, length prefix excluded. A bigger one resets the stream. */
export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024

/** Largest block accepted or served (the trustless-gateway cap, so any block we hold is servable to IPFS). */
export const MAX_BLOCK_BYTES = 2 * 1024 * 1024

/** Most CIDs a peer may have wanted from us at once, all of its streams together. */
export const MAX_WANTS_PER_PEER = 1024

/** Most entries (wants, cancels, blocks, not-found answers) in one message. */
export const MAX_ENTRIES_PER_MESSAGE = 1024

/** Longest CID accepted on the wire: CIDv1 prefix + a 64-byte digest with room to spare. */
export const MAX_CID_BYTES = 128

/** Inbound/outbound exchange streams per connection; one is normal, a few cover reconnect races. */
export const MAX_STREAMS_PER_CONNECTION = 4

/**
 * Blocks read from the source at once for one stream while serving. A read is
 * a few thread-pool round trips; on a busy box each waits for a core, so
 * enough of them in flight keep the stream full (16 blocks: ~4 MiB of memory).
 */
export const SERVE_CONCURRENCY = 16

/** Wants a fetch gives a peer before its rate is known. */
export const INITIAL_WINDOW = 8

/** Most wants a fetch keeps outstanding at one peer. */
export const MAX_WINDOW = 64

/** Most bytes a fetch expects outstanding at one peer (window count follows the mean block size). */
export const MAX_WINDOW_BYTES = 16 * 1024 * 1024

/** Seconds of a peer's measured rate a fetch keeps outstanding at it. */
export const WINDOW_SECONDS = 1

/** A peer that delivers nothing for this long while it holds wants has its wants moved elsewhere. */
export const STALL_TIMEOUT_MS = 5000

/** Stalls after which a peer is dropped from a fetch. */
export const MAX_STALLS = 3

/** How many peers may hold the same want during the end-game. */
export const END_GAME_COPIES = 2

/** Faults (wrong block, bad message, unrequested block) after which a peer is banned. */
export const BAN_AFTER_FAULTS = 3

/** How long a ban lasts. */
export const BAN_MS = 10 * 60 * 1000

/** Peers whose faults are remembered; the oldest record is forgotten past this. */
export const MAX_TRACKED_PEERS = 4096

/** A session (stream to one peer) with no wants for this long is closed. */
export const SESSION_IDLE_MS = 30_000

/** Received blocks a fetch may hold before they are stored (bounds memory when the sink is slow). */
export const MAX_BUFFERED_BYTES = 64 * 1024 * 1024

/** Sink checks (`has`: is it here already?) a fetch runs at once before asking peers. */
export const CHECK_CONCURRENCY = 16

/** Peers one fetch accepts. */
export const MAX_PEERS_PER_FETCH = 64
