/**
 * A pull wants every chunk some member serves. The exchange ends a whole
 * fetch as soon as one chunk is found at none of its peers (each answered
 * "missing"), and the chunks still on their way from the members that have
 * them are dropped with it: one chunk only an offline member holds would
 * starve every other file of the batch, retry after retry (a "missing"
 * answer is faster than a block). So after such a failure the chunks that
 * did not arrive are fetched one per fetch (a few at a time): each chunk
 * nobody has then fails alone. The first fetch keeps the exchange's
 * spreading over peers; only a pull that meets a missing chunk pays for the
 * one-by-one fetches.
 */
import { eachLimit } from '@homecloud/store'
import { NotFoundError } from './errors.js'
import type { ChunkSink } from '@homecloud/exchange'
import type { AbortOptions } from '@homecloud/interface'
import type { CID } from 'multiformats/cid'

/** One-chunk fetches in flight after a fetch met a chunk nobody has. */
export const ONE_BY_ONE_CONCURRENCY = 16

export type FetchChunksFn = (cids: CID[], options: AbortOptions & { sink: ChunkSink }) => Promise<unknown>

export interface FetchAvailableResult {
  /** Chunks found at no peer asked. */
  unavailable: CID[]
}

/**
 * Fetches `cids` into `sink` with `fetch` (one exchange fetch), leaving out
 * the chunks no peer has. Other failures (no peers, every peer failed, an
 * abort, the sink's own errors) are thrown as they are.
 */
export async function fetchAvailable (fetch: FetchChunksFn, cids: CID[], sink: ChunkSink, options: AbortOptions = {}): Promise<FetchAvailableResult> {
  const arrived = new Set<string>()
  const tracked: ChunkSink = {
    has: async (cid, o) => sink.has(cid, o),
    put: async (cid, bytes, o) => {
      await sink.put(cid, bytes, o)
      arrived.add(cid.toString())
    },
    ...(sink.putPieces != null
      ? {
          putPieces: async (cid, pieces, o) => {
            await (sink.putPieces as NonNullable<ChunkSink['putPieces']>)(cid, pieces, o)
            arrived.add(cid.toString())
          }
        }
      : {}),
    ...(sink.get != null ? { get: sink.get.bind(sink) } : {})
  }
  try {
    await fetch(cids, { ...options, sink: tracked })
    return { unavailable: [] }
  } catch (err) {
    options.signal?.throwIfAborted()
    if (!isNotFound(err)) throw err
  }
  const rest = cids.filter(c => !arrived.has(c.toString()))
  const unavailable: CID[] = []
  // any other failure ends the rest: it is not about one chunk
  const stop = new AbortController()
  const signal = options.signal != null ? AbortSignal.any([options.signal, stop.signal]) : stop.signal
  await eachLimit(rest, ONE_BY_ONE_CONCURRENCY, async cid => {
    if (signal.aborted) return
    try {
      await fetch([cid], { ...options, signal, sink: tracked })
    } catch (err) {
      if (isNotFound(err) && !signal.aborted) {
        unavailable.push(cid)
        return
      }
      stop.abort()
      throw err
    }
  })
  return { unavailable }
}

function isNotFound (err: unknown): boolean {
  return (err as { code?: unknown } | undefined)?.code === NotFoundError.code
}
