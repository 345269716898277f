/**
 * The narrow inputs the exchange takes and the shapes it hands back.
 */
import type { AbortOptions, ProgressEvent, ProgressOptions } from '@homecloud/interface'
import type { PeerId, Stream, StreamHandler, StreamHandlerOptions } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import type { PeerPenalty } from './penalties.js'
import type { Uint8ArrayList } from 'uint8arraylist'

/** Where served blocks come from. Must return verified bytes (the store re-hashes file-backed chunks). */
export interface ChunkSource {
  get(cid: CID, options?: AbortOptions): Promise<Uint8Array | undefined>
}

/** Where fetched blocks go. `get` is needed only to walk a DAG whose inner blocks are already held. */
export interface ChunkSink {
  has(cid: CID, options?: AbortOptions): Promise<boolean>
  put(cid: CID, bytes: Uint8Array, options?: AbortOptions): Promise<void>
  /**
   * `put` for a block that arrived in pieces (a big one usually does): with it
   * the exchange hands the pieces over as they are; without it they are joined
   * into one array (a copy of the block) for `put`.
   */
  putPieces?(cid: CID, pieces: Uint8ArrayList, options?: AbortOptions): Promise<void>
  get?(cid: CID, options?: AbortOptions): Promise<Uint8Array | undefined>
}

/** May `peer` be served `cid`? A denial is answered exactly like a block we do not hold. */
export type ServePolicy = (peer: PeerId, cid: CID) => boolean | Promise<boolean>

/** The CIDs a block links to, so a fetch can walk a DAG from its root. Called on verified bytes only. */
export type LinkResolver = (cid: CID, bytes: Uint8Array) => Iterable<CID>

/** The parts of libp2p the exchange uses: it registers a handler and opens streams, nothing more. */
export interface ChunkExchangeComponents {
  registrar: {
    handle(protocol: string, handler: StreamHandler, options?: StreamHandlerOptions): Promise<void>
    unhandle(protocol: string, options?: AbortOptions): Promise<void>
  }
  connectionManager: {
    openStream(peer: PeerId, protocol: string, options?: AbortOptions): Promise<Stream>
  }
}

export interface ChunkExchangeInit {
  /** Serve blocks from `source` to peers `policy` allows. Without it the protocol is not handled. */
  serve?: { source: ChunkSource, policy: ServePolicy }
  /** Default sink of fetches. */
  sink?: ChunkSink
  /** A peer that delivers nothing for this long while holding wants has them moved elsewhere (ms). */
  stallTimeout?: number
  /** Stalls after which a peer is dropped from a fetch. */
  maxStalls?: number
  /** Peers that may hold the same want during the end-game. */
  endGameCopies?: number
  /** Wants given to a peer before its rate is known. */
  initialWindow?: number
  /** Most wants outstanding at one peer in one fetch (at most 1024). */
  maxWindow?: number
  /** Faults after which a peer is banned. */
  banAfterFaults?: number
  /** How long a ban lasts (ms). */
  banMs?: number
  /** A stream to a peer with no wants for this long is closed (ms). */
  sessionIdleTimeout?: number
}

export interface PeerRate {
  peer: string
  /** Bytes received from this peer in this fetch. */
  bytes: number
  chunks: number
  /** Smoothed receive rate. */
  bytesPerSecond: number
  /** Wants outstanding at this peer now. */
  outstanding: number
}

export interface FetchProgress {
  chunksDone: number
  /** Chunks known so far; grows while a DAG is walked. */
  chunksTotal: number
  /** Chunks the sink already held (a resumed fetch). */
  chunksSkipped: number
  /** Bytes received in this fetch. */
  bytes: number
  peers: PeerRate[]
}

export type FetchProgressEvents =
  | ProgressEvent<'exchange:fetch:chunk', { cid: CID, peer: string, bytes: number, progress: FetchProgress }>
  | ProgressEvent<'exchange:fetch:skipped', { cid: CID, progress: FetchProgress }>
  | ProgressEvent<'exchange:fetch:peer-dropped', { peer: string, code: string, message: string, progress: FetchProgress }>
  | ProgressEvent<'exchange:fetch:missing', { cid: CID, peers: string[], progress: FetchProgress }>

/**
 * What a fetch does with a block every peer still in it answered "missing":
 * `fail` ends the whole fetch with a `NotFoundError` (blocks still on their
 * way are dropped); `report` leaves that block out, names it in
 * `FetchResult.missing` and completes every other block.
 */
export type MissingBlocks = 'fail' | 'report'

/** A block no peer of a fetch had (`missing: 'report'`). */
export interface MissingBlock {
  cid: CID
  /** The peers (PeerId strings) that answered "missing" for it. */
  peers: string[]
}

export interface FetchOptions extends AbortOptions, ProgressOptions<FetchProgressEvents> {
  /** Peers that hold the content. Banned peers are left out. */
  peers: PeerId[]
  /** Walk a DAG: the blocks each fetched (or already held) block links to are fetched too. */
  links?: LinkResolver
  /** Where blocks go; defaults to the exchange's `sink`. */
  sink?: ChunkSink
  /** A block no peer has: end the fetch (`fail`, the default) or leave it out and name it in the result (`report`). */
  missing?: MissingBlocks
}

export interface FetchResult {
  /** Chunks received and stored. */
  chunks: number
  /** Chunks the sink already held. */
  skipped: number
  bytes: number
  peers: PeerRate[]
  /** Blocks no peer had, in the order they were given up (`missing: 'report'` only; at most one entry per block of the fetch). */
  missing: MissingBlock[]
}

export interface ExchangeStats {
  blocksServed: number
  bytesServed: number
  /** `missing` answers sent, denials included. */
  missingServed: number
  /** Wants the policy denied. */
  denied: number
  blocksReceived: number
  bytesReceived: number
  wrongBlocks: number
  unrequestedBlocks: number
  /** Blocks that arrived after their want was cancelled (end-game duplicates). */
  lateBlocks: number
  badMessages: number
  openSessions: number
  servedStreams: number
}

export interface ChunkExchange {
  start(): Promise<void>
  stop(): Promise<void>
  /** Fetches `cids` (and, with `links`, everything they link to) from `options.peers` into the sink. */
  fetch(cids: CID | Iterable<CID>, options: FetchOptions): Promise<FetchResult>
  /** Faults counted against a peer, kept across fetches. */
  penalty(peer: PeerId): Readonly<PeerPenalty> | undefined
  stats(): ExchangeStats
}
