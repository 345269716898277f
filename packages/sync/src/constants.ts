/** Path caps (RELIABILITY: huge names, deep trees): bytes of UTF-8. */
export const MAX_NAME_BYTES = 255
export const MAX_PATH_BYTES = 4096
/** Deepest share-relative path (segments); the 4096-byte cap allows ~2,000 one-letter levels. */
export const MAX_PATH_DEPTH = 256

/** Names starting with this are Home Cloud's own (temp files, ignore file): never synced. */
export const INTERNAL_PREFIX = '.homecloud'
/** Temp files written by apply, in the target's own directory (D7). */
export const TEMP_PREFIX = '.homecloud-tmp-'
/** The share's ignore file, at the share root (gitignore syntax). */
export const IGNORE_FILE = '.homecloudignore'
/** Largest ignore file read. */
export const MAX_IGNORE_FILE_BYTES = 256 * 1024

/** Entries read from one directory; more are reported as one error. */
export const MAX_ENTRIES_PER_DIRECTORY = 200_000

/** Free space kept on the share's filesystem (fraction of its size). */
export const DEFAULT_MIN_FREE_FRACTION = 0.01

/** Largest snapshot block (root, page or chunk list): below the 2 MiB block cap. */
export const MAX_SNAPSHOT_BLOCK_BYTES = 1024 * 1024
/** Most entries in one snapshot. */
export const MAX_SNAPSHOT_ENTRIES = 1_000_000
/** Most pages in one snapshot root. */
export const MAX_SNAPSHOT_PAGES = 20_000
/** Pages end where a path's hash hits this mask (≈ 512 entries a page), so an insert changes one page. */
export const PAGE_BOUNDARY_MASK = 0x1ff
/** A page is cut at this many entries even without a boundary, or before reaching PAGE_TARGET_BYTES. */
export const MAX_PAGE_ENTRIES = 2048
export const PAGE_TARGET_BYTES = 512 * 1024
/** A file with more chunks keeps its chunk list in separate blocks. */
export const MAX_INLINE_CHUNKS = 1024
/** Chunks per chunk-list block (~40 bytes each). */
export const CHUNKS_PER_LIST_BLOCK = 16_384
/** Chunk-list blocks per file (16,384 × 1,024 × ~300 KiB ≈ 5 TB). */
export const MAX_CHUNK_LISTS_PER_FILE = 1024
/** Devices in one version vector. */
export const MAX_VERSION_VECTOR_DEVICES = 256
/** Longest device id and share id accepted. */
export const MAX_ID_LENGTH = 128
/** Longest symlink target. */
export const MAX_LINK_TARGET_BYTES = 4096

/** Largest encoded signed head. */
export const MAX_HEAD_BYTES = 4096
/** Signatures over heads are made over this prefix + the dag-cbor head, so they mean nothing elsewhere. */
export const HEAD_SIGNATURE_DOMAIN = 'homecloud-sync-head-v1:'

/** The share protocol (heads, offers, snapshot blocks), gated by the swarm roster. */
export const SHARE_PROTOCOL = '/homecloud/share/1.0.0'
/** Largest share protocol message: one snapshot block (≤ 1 MiB) plus framing. */
export const MAX_SHARE_MESSAGE_BYTES = MAX_SNAPSHOT_BLOCK_BYTES + 64 * 1024
/** Shares listed in one announce. */
export const MAX_ANNOUNCED_SHARES = 256
/** Snapshot blocks asked for in one request. */
export const MAX_BLOCKS_PER_REQUEST = 64
/** Bytes of one remote snapshot held while it is read (a hostile peer cannot make us hold more). */
export const MAX_REMOTE_SNAPSHOT_BYTES = 256 * 1024 * 1024
/** Share streams per connection, each way. */
export const MAX_SHARE_STREAMS = 32
/** Offers from other members remembered (not yet accepted). */
export const MAX_OFFERS = 1024
/** Longest share name (bytes of UTF-8). */
export const MAX_SHARE_NAME_BYTES = 255
/** Path errors kept per share for status. */
export const MAX_STATUS_PATH_ERRORS = 100

/** One share protocol exchange, end to end. */
export const DEFAULT_SHARE_PROTOCOL_TIMEOUT_MS = 10_000
/** The watcher waits this long after a change before scanning (≤ 1 s). */
export const DEFAULT_WATCH_DEBOUNCE_MS = 200
/** Full rescan period while the watcher runs. */
export const DEFAULT_RESCAN_INTERVAL_MS = 60 * 60 * 1000
/** Rescan period when the watcher failed (overflow, inotify limit). */
export const DEFAULT_POLL_INTERVAL_MS = 10_000
/** A paused (disk full) or failed pull is retried this often. */
export const DEFAULT_RETRY_INTERVAL_MS = 5_000
/** Replaced and deleted versions are kept this long. */
export const DEFAULT_HISTORY_RETENTION_MS = 30 * 24 * 60 * 60 * 1000
/** Bytes of kept versions per share; the oldest go first. */
export const DEFAULT_HISTORY_MAX_BYTES = 10 * 1024 * 1024 * 1024
