/** Protocol a joiner speaks to any online member; ungated (the joiner is not a member yet). */
export const JOIN_PROTOCOL = '/homecloud/join/1.0.0'

/** Roster replication between members; behind the gate. */
export const ROSTER_SYNC_PROTOCOL = '/homecloud/roster-sync/1.0.0'

/** HKDF `info` strings: one per use of the swarm secret, so no derived key can stand in for another. */
export const RENDEZVOUS_INFO = 'homecloud/rendezvous/v1'
/** Domain of the hash that commits a roster entry to a swarm secret without revealing it. */
export const SECRET_COMMIT_DOMAIN = 'homecloud/secret-commit/v1'
/** Domain of the key derived from an invite token (its public half is recorded in the roster). */
export const INVITE_KEY_INFO = 'homecloud/invite-key/v1'
/** Domain of the join proof the joiner signs with the invite key. */
export const JOIN_PROOF_DOMAIN = 'homecloud/join-proof/v1'
/** Domain of roster entry signatures. */
export const ENTRY_SIGNATURE_DOMAIN = 'homecloud/roster-entry/v1'

/** Bytes of a swarm secret. */
export const SECRET_BYTES = 32
/** Bytes of an invite token (the part of the code that grants entry). */
export const INVITE_TOKEN_BYTES = 16
/** Bytes of the swarm id carried in an invite code. */
export const INVITE_SWARM_PREFIX_BYTES = 6
/** An invite code is one line a person can type or scan. */
export const MAX_INVITE_CODE_LENGTH = 200
/** Addresses of the inviter carried in an invite code, at most. */
export const MAX_INVITE_ADDRESSES = 4
/** Defaults of `invite()`. */
export const DEFAULT_INVITE_EXPIRY_MS = 24 * 60 * 60 * 1000
export const DEFAULT_INVITE_USES = 1
export const MAX_INVITE_USES = 100

/** Bounds of the roster (D8). */
export const MAX_ROSTER_ENTRIES = 4096
export const MAX_ENTRY_BYTES = 2048
export const MAX_ENTRY_PARENTS = 32
export const MAX_NAME_BYTES = 64
/** Swarms one device belongs to, at most. */
export const MAX_SWARMS = 64

/** Bounds of the wire protocols (D8). */
export const MAX_MESSAGE_BYTES = 256 * 1024
export const MAX_ENTRIES_PER_MESSAGE = 100
export const MAX_HEADS = 64
export const MAX_PEER_RECORDS_PER_MESSAGE = 32
export const MAX_PEER_RECORD_BYTES = 4096
/** Concurrent inbound streams per connection for each protocol. */
export const MAX_INBOUND_STREAMS = 4
/** Join handlers running at once, all peers together. */
export const MAX_CONCURRENT_JOINS = 16

/** Default time for one join or one roster sync exchange, end to end. */
export const DEFAULT_PROTOCOL_TIMEOUT_MS = 10_000
/** Default period of rendezvous (announce + look up members); 0 turns it off. */
export const DEFAULT_RENDEZVOUS_INTERVAL_MS = 5 * 60 * 1000
/** Members dialled at once during rendezvous or a push of roster changes. */
export const SYNC_CONCURRENCY = 8
/** A burst of address changes (a reservation, then observed addresses) settles this long before a rendezvous. */
export const RENDEZVOUS_SETTLE_MS = 1_000
/** Rendezvous runs on address changes are this far apart at first; the gap doubles while changes keep coming. */
export const RENDEZVOUS_MIN_GAP_MS = 2_000
