/**
 * @packageDocumentation
 *
 * The chunk exchange (`/homecloud/chunks/1.0.0`): serves blocks by CID to the
 * peers a policy allows, and fetches blocks from many peers at once, spread
 * by each peer's measured rate, every block hashed before it is stored.
 *
 * It is a libp2p service: it only registers a protocol handler and opens
 * streams, and takes its blocks from a narrow `ChunkSource` / `ChunkSink`.
 *
 * @example
 *
 * ```ts
 * import { chunkExchange } from '@homecloud/exchange'
 *
 * const node = await createLibp2p({
 *   // transports, encrypters, muxers...
 *   services: {
 *     chunks: chunkExchange({
 *       serve: { source: store, policy: (peer, cid) => roster.allows(peer, cid) },
 *       sink: store
 *     })
 *   }
 * })
 *
 * await node.services.chunks.fetch(chunkCids, {
 *   peers: [providerA, providerB],
 *   onProgress: evt => { if (evt.type === 'exchange:fetch:chunk') bar.update(evt.detail.progress) }
 * })
 * ```
 */
import { ChunkExchangeService } from './exchange.js'
import type { ChunkExchange, ChunkExchangeComponents, ChunkExchangeInit } from './types.js'

export type * from './types.js'
export type { PeerPenalty } from './penalties.js'
export type { Block, Entry, WireLimits } from './wire.js'
export { encodeMessage, decodeMessage, FrameReader, WIRE_LIMITS } from './wire.js'
export { blockMatches, isVerifiable } from './verify.js'
export { bytesKey } from './keys.js'
export * from './errors.js'
export {
  PROTOCOL, MAX_MESSAGE_BYTES, MAX_BLOCK_BYTES, MAX_WANTS_PER_PEER, MAX_ENTRIES_PER_MESSAGE, MAX_CID_BYTES, MAX_PEERS_PER_FETCH
} from './constants.js'
export { ChunkExchangeService }

/** The exchange as a libp2p service factory: `services: { chunks: chunkExchange(init) }`. */
export function chunkExchange (init: ChunkExchangeInit = {}): (components: ChunkExchangeComponents) => ChunkExchange {
  return (components) => new ChunkExchangeService(components, init)
}

/** The exchange over components given directly (no libp2p service wiring). */
export function createChunkExchange (components: ChunkExchangeComponents, init: ChunkExchangeInit = {}): ChunkExchange {
  return new ChunkExchangeService(components, init)
}
