/**
 * A pull wants every chunk some member serves. One chunk only an offline
 * member holds must not starve the other files of its batch, retry after
 * retry (a "missing" answer is faster than a block, so a fetch that ends on
 * the first chunk nobody has drops every block still on its way). So the
 * exchange is asked to leave such chunks out and name them
 * (`missing: 'report'`): everything a member has arrives in the one fetch,
 * and apply fails only the files whose chunks did not arrive
 * (ERR_CHUNK_UNAVAILABLE, which the pull waits on).
 */
import { logger } from '@libp2p/logger'
import type { ChunkExchange, ChunkSink, FetchOptions, FetchResult } from '@homecloud/exchange'
import type { CID } from 'multiformats/cid'

const log = logger('homecloud:sync:fetch')

export type FetchAvailableOptions = Omit<FetchOptions, 'missing' | 'sink'> & { sink: ChunkSink }

/**
 * Fetches `cids` into `options.sink` in one exchange fetch, leaving out the
 * chunks no peer has (`result.missing` names them). Other failures (no peers,
 * every peer failed, an abort, the sink's own errors) are thrown as they are.
 */
export async function fetchAvailable (chunks: Pick<ChunkExchange, 'fetch'>, cids: CID[], options: FetchAvailableOptions): Promise<FetchResult> {
  const result = await chunks.fetch(cids, { ...options, missing: 'report' })
  if (result.missing.length > 0) {
    log('%d of %d chunks are at none of the %d peers asked, first %c', result.missing.length, cids.length, options.peers.length, result.missing[0].cid)
  }
  return result
}
