/**
 * Chunking parameters, chosen with `bench/chunking.mjs` (its candidate table):
 * - 128 KiB / 256 KiB / 1 MiB cuts chunks of ~300 KiB on average (`avg` is
 *   where normalised chunking switches masks, not the mean), ~3,400 a GiB in
 *   the index; an insert costs about one chunk of new bytes (10 bytes at the
 *   start of 1 GiB: < 0.5 MiB, the goal is ≤ 2 MiB);
 * - a `min` of half `avg` (as restic does) keeps the Gear loop off ~40% of the
 *   bytes (64 KiB: ~20%): 13–30% less chunking CPU than 64 KiB in the runs so
 *   far, for ~5% more new bytes per scattered insert (the mean chunk is ~5%
 *   bigger); a smaller `avg` dedups finer but multiplies index entries; chunks
 *   stay ≤ 1 MiB, the block size every IPFS implementation accepts.
 * Changing any of these (or the gear table) changes every CID: they are part of the format.
 */
export const CHUNK_MIN = 128 * 1024
export const CHUNK_AVG = 256 * 1024
export const CHUNK_MAX = 1024 * 1024

/** Normalisation level of FastCDC: the mask is 2 bits harder before `avg`, 2 bits easier after. */
export const NORMALISATION = 2

/** Largest block `put` accepts (D8; bitswap and trustless gateways use the same cap). */
export const MAX_BLOCK_SIZE = 2 * 1024 * 1024

/** Links per UnixFS file node, as kubo's balanced layout. */
export const MAX_LINKS_PER_NODE = 174

/** Bytes read from a file per read call while chunking (at least `max`). */
export const READ_SIZE = 4 * 1024 * 1024

/** The chunking buffer, one per `addPath`: the uncut tail, a read, and the batches being hashed. */
export const CHUNK_BUFFER_SIZE = 16 * 1024 * 1024

/**
 * Bytes hashed on the calling thread rather than on the hash worker: below
 * this a worker round trip costs more than sha2-256 itself (a file of a few
 * KiB: ~10 µs to hash, ~100 µs through the worker).
 */
export const INLINE_HASH_BYTES = 64 * 1024

/**
 * Share of a batch's bytes the chunking thread hashes itself at first while
 * the hash worker does the rest (the Gear loop costs about half as much as
 * sha2-256 a byte); the chunker then moves it towards whichever thread waits
 * less (chunker.ts).
 */
export const MAIN_THREAD_HASH_SHARE = 0.25

/** Read buffers of `INLINE_HASH_BYTES` a FileChunker keeps for small files (more are allocated while more files are in flight). */
export const SMALL_FILE_BUFFERS = 16

/** Batches of chunks (one batch per read) being hashed on the hash worker at a time. */
export const HASH_BATCHES_IN_FLIGHT = 2

/**
 * An idle daemon holds neither: the hash worker thread ends after this long
 * without a job (started again by the next), and a `ChunkReader` frees its
 * chunking buffer this long after its last file (a scan's back-to-back files
 * reuse both).
 */
export const HASH_WORKER_IDLE_MS = 30_000
export const CHUNK_BUFFER_IDLE_MS = 10_000

/** Limits on trees given to `addPath` (RELIABILITY: huge names, deep trees, huge directories). */
export const MAX_TREE_DEPTH = 256
export const MAX_TREE_ENTRIES = 1_000_000

/** A directory node bigger than this would need HAMT sharding, which is not implemented. */
export const MAX_DIRECTORY_NODE_SIZE = 1024 * 1024

/** How often a file that changes while it is being read is read again before giving up. */
export const FILE_READ_ATTEMPTS = 3

/**
 * Serving file-backed chunks (file-reads.ts): indexed files kept open between
 * reads, how long an unused one stays open (a deleted file's space is held
 * that long at most), how often an open file is compared with its index
 * record again (every read is hashed regardless), and how many index entries
 * of a file being read are loaded ahead at once (~256 MiB of chunks).
 */
export const MAX_OPEN_FILES = 16
export const OPEN_FILE_IDLE_MS = 2000
export const OPEN_FILE_RECHECK_MS = 250
export const FILE_READ_AHEAD_CHUNKS = 1024

/**
 * Places of chunks in files kept in memory for serving (~200 bytes each, so
 * ~1.6 MiB at most): those read ahead and the first
 * `INDEXED_CHUNKS_CACHED` chunks of every file just indexed (a changed file is
 * what peers ask for next; a small file is one chunk, whose place would
 * otherwise cost an index scan when it is served).
 */
export const MAX_CACHED_LOCATIONS = 8 * FILE_READ_AHEAD_CHUNKS
export const INDEXED_CHUNKS_CACHED = 64

/** Places of one chunk read from the index at once (the same chunk can be in many files). */
export const MAX_LOCATIONS_PER_LOOKUP = 64

/**
 * `hasMany`: chunks looked up in one batch (one `hasMany` of the block
 * store, one ordered pass over the places, each file checked once: a 1 GiB
 * file's ~3,400 chunks are one batch), and index entries read per step of
 * that pass (a step costs about as much for 64 entries as for 256, and where
 * the index is sparse among the keys asked one step settles many keys).
 */
export const HAS_MANY_BATCH = 4096
export const LOCATION_SCAN_STEP = 256
/** Bytes of entries one step holds at most (~512 a place with its path: a step of long paths stops short). */
export const LOCATION_SCAN_BYTES = LOCATION_SCAN_STEP * 512

/** Indexed files compared with their record (an lstat each) at once by `hasMany`. */
export const HAS_MANY_FILE_CHECKS = 16

/**
 * Most chunks of one file written to the LevelDB index in one batch (a batch
 * costs JS memory in proportion: ~2.5 KiB a chunk): a bigger file is indexed
 * in several batches (level-index.ts says how that stays safe).
 */
export const MAX_INDEX_BATCH_CHUNKS = 2048

/**
 * `indexFiles`: files recorded in one call to the index (an apply batch is
 * at most this many), and files stat'ed at once before they are (as many as
 * apply fsyncs at once; 64 measured no better in bench/share-bulk.mjs: the
 * lstats wait behind apply's fsyncs in the thread pool either way).
 */
export const MAX_INDEX_FILES_BATCH = 256
export const INDEX_FILE_CHECKS = 16
