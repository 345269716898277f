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
/** Most pages in one snapshot (over all its index blocks). */
export const MAX_SNAPSHOT_PAGES = 100_000
/** A root lists its pages itself up to this many (~2.6 KiB); above, it lists index blocks of pages. */
export const MAX_ROOT_PAGES = 64
/** Index blocks end after a page whose CID hits this mask (≈ 64 pages each), so a changed page changes one index block. */
export const INDEX_BOUNDARY_MASK = 0x3f
/** An index block is cut at this many pages even without a boundary. */
export const MAX_INDEX_PAGES = 4096
/**
 * Pages end where a hash of the path hits this mask (≈ 64 entries, ~13 KiB a page), so an
 * insert, a delete or a rename re-sends one or two small pages (with 512-entry pages a
 * rename in a 2,000-file share cost ~150 KiB on the wire; bench/snapshot-delta.mjs).
 */
export const PAGE_BOUNDARY_MASK = 0x3f
/** A page is cut at this many entries even without a boundary, or before reaching PAGE_TARGET_BYTES. */
export const MAX_PAGE_ENTRIES = 2048
export const PAGE_TARGET_BYTES = 512 * 1024
/**
 * A file with more chunks keeps its chunk list in separate blocks, shared by every entry
 * with the same chunks: a renamed or moved big file re-uses them and costs ~200 bytes in its page.
 */
export const MAX_INLINE_CHUNKS = 64
/** Chunk-list blocks end after a chunk whose CID hits this mask (≈ 1,024 chunks, ~40 KiB), so a changed chunk changes one list block. */
export const LIST_BOUNDARY_MASK = 0x3ff
/** A chunk-list block is cut at this many chunks even without a boundary (~40 bytes each). */
export const CHUNKS_PER_LIST_BLOCK = 16_384
/** Chunk-list blocks per file (their CIDs sit in the file's entry: ≤ ~670 KiB). */
export const MAX_CHUNK_LISTS_PER_FILE = 16_384
/** Chunks per file (8 Mi × ~300 KiB ≈ 2.4 TB). */
export const MAX_CHUNKS_PER_FILE = 8 * 1024 * 1024
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
/**
 * A failed announce to a member still connected is tried again after this
 * long, doubling up to ANNOUNCE_RETRY_MAX_MS: across a partition the
 * connection stays open (no close or open event would ask again), so
 * without a retry the heads published meanwhile never cross once it heals.
 */
export const ANNOUNCE_RETRY_FIRST_MS = 1_000
export const ANNOUNCE_RETRY_MAX_MS = 30_000
/** The watcher waits this long after a change before scanning (≤ 1 s). */
export const DEFAULT_WATCH_DEBOUNCE_MS = 200
/** Full rescan period while the watcher runs. */
export const DEFAULT_RESCAN_INTERVAL_MS = 60 * 60 * 1000
/** Rescan period when the watcher failed (overflow, inotify limit). */
export const DEFAULT_POLL_INTERVAL_MS = 10_000
/** A paused (disk full) or failed pull is retried this often. */
export const DEFAULT_RETRY_INTERVAL_MS = 5_000
/**
 * A head whose pull failed only for chunks no member serves (the member
 * holding them is offline) is retried after the retry interval, doubling up
 * to this; a new head, a member online or a new connection starts over.
 */
export const UNAVAILABLE_RETRY_MAX_MS = 5 * 60 * 1000
/** Replaced and deleted versions are kept this long. */
export const DEFAULT_HISTORY_RETENTION_MS = 30 * 24 * 60 * 60 * 1000
/** Bytes of kept versions per share; the oldest go first. */
export const DEFAULT_HISTORY_MAX_BYTES = 10 * 1024 * 1024 * 1024

/** Block store lookups in flight while a pull plan sorts chunks into local and to fetch. */
export const PLAN_HAS_CONCURRENCY = 32
/** Files written in one apply batch: their temp files are renamed together, each directory fsynced once, the index written once (also the bound on temp files open at once). */
export const APPLY_BATCH_FILES = 256
/** Chunks placed in one apply batch (a bigger file is a batch of its own; its chunk list is in the plan anyway). */
export const APPLY_BATCH_CHUNKS = 2048
/** File bytes in one apply batch: a bigger file is a batch of its own, so the small files around it commit while it still loads. */
export const APPLY_BATCH_BYTES = 64 * 1024 * 1024
/** Apply batches loading (temp files written, chunks fetched) at once, while the one before commits; as many big files (a batch each) beside them. */
export const APPLY_BATCHES_LOADING = 2
/** Apply batches not recorded yet (loading, or loaded with their temp files open), and as many big files: bounds open files at this × (APPLY_BATCH_FILES + 1). */
export const APPLY_BATCHES_IN_FLIGHT = 3
/** Local files a batch keeps open to copy chunks from; reads from others open and close the file each time. */
export const APPLY_OPEN_SOURCES = 64
/** File and directory fsyncs (and local chunk copies) in flight at once: the journal commits them together. */
export const APPLY_IO_CONCURRENCY = 16
/**
 * Metadata calls of a batch (lstat, open, rename) in flight at once:
 * each is microseconds of disk work but a turn of the event loop, and a
 * running transfer makes turns long, so a few at a time add up to seconds.
 */
export const APPLY_META_CONCURRENCY = 64
/**
 * Bytes written to one temp file after which a background fsync starts: the
 * disk writes while chunks still arrive, so the fsync at its end finds little
 * left (with a big page cache nothing else writes it back before then).
 */
export const APPLY_SYNC_EVERY_BYTES = 32 * 1024 * 1024
/**
 * A replacement starts as a kernel copy of the old file when at least this
 * fraction of its bytes are chunks at the same offsets there: then only the
 * chunks that differ are written.
 */
export const APPLY_CLONE_MIN_FRACTION = 0.5
/**
 * A file at least this big is hard-linked aside (a temp name in its directory)
 * before a rename replaces it, or renamed aside when apply deletes it or puts a
 * directory in its place, and that name removed after the step is recorded:
 * on ext4 mounted with `discard`, freeing a 1 GiB file's blocks inside the
 * rename or unlink took ~230–300 ms on the pull's critical path. Small files
 * free quickly: the extra name would cost more than it saves.
 */
export const APPLY_ASIDE_MIN_BYTES = 64 * 1024 * 1024
