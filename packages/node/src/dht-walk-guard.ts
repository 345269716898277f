/**
 * Keeps libp2p's random walk from spinning when the DHT knows no peer.
 *
 * libp2p's `RandomWalk` loops `while (walkers > 0)` over `peerRouting.getClosestPeers`.
 * With `allowQueryWithZeroPeers` (which a lone or first device needs, FACTS.md) and an empty
 * routing table, each query ends at once without I/O, so the loop runs on microtasks alone and
 * starves the event loop: timers, sockets and signals never run again. It is entered by the
 * relay transport's search for relays (listening on `/p2p-circuit`) and by AutoNAT v2 looking
 * for servers; the lab found it as a daemon that never finished starting, at 100% CPU.
 *
 * The guard wraps the DHT's peer routing: a `getClosestPeers` that found nobody waits
 * `EMPTY_QUERY_PAUSE_MS` (a real timer) before it returns, which bounds the walk to one empty
 * query per pause and lets everything else run.
 */
import { peerRoutingSymbol, type AbortOptions, type PeerInfo, type PeerRouting } from '@libp2p/interface'
import type { KadDHT } from '@libp2p/kad-dht'

/** How long an empty closest-peers query holds its caller (the random walk) back. */
export const EMPTY_QUERY_PAUSE_MS = 1_000

/** `dht` with its peer routing wrapped (see the module comment); returns the same object. */
export function guardEmptyWalks<T extends KadDHT> (dht: T, pauseMs = EMPTY_QUERY_PAUSE_MS): T {
  // kad-dht implements PeerRoutingProvider; its KadDHT type does not say so
  const inner = (dht as unknown as { [peerRoutingSymbol]: PeerRouting })[peerRoutingSymbol]
  const routing: PeerRouting = {
    findPeer: async (peerId, options) => inner.findPeer(peerId, options),
    async * getClosestPeers (key: Uint8Array, options?: AbortOptions): AsyncIterable<PeerInfo> {
      let found = 0
      for await (const peer of inner.getClosestPeers(key, options)) {
        found++
        yield peer
      }
      if (found === 0) {
        await pause(pauseMs, options?.signal)
      }
    }
  }
  // an own property shadows kad-dht's getter; libp2p reads it once, when it registers routers
  Object.defineProperty(dht, peerRoutingSymbol, { value: routing, configurable: true })
  return dht
}

async function pause (ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted === true) return
  await new Promise<void>(resolve => {
    const done = (): void => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done, { once: true })
  })
}
