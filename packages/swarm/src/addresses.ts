/**
 * Address helpers: adding or removing this device's `/p2p/<id>` and ordering addresses for an
 * invite code, where only the first few fit.
 */
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

const P2P = 421
const CIRCUIT = 290

/** `addr` ending in `/p2p/<peer>`, ready to dial. */
export function withPeer (addr: Multiaddr, peer: PeerId): Multiaddr {
  return addr.getComponents().at(-1)?.code === P2P ? addr : addr.encapsulate(`/p2p/${peer.toString()}`)
}

/** `addr` without a trailing `/p2p/<id>` (a relay address keeps the relay's). */
export function withoutPeer (addr: Multiaddr): Multiaddr {
  return addr.getComponents().at(-1)?.code === P2P ? addr.decapsulateCode(P2P) : addr
}

/**
 * Order addresses by how likely a device elsewhere reaches this one through them: public
 * addresses, then relay addresses, then private ones, loopback last.
 */
export function rankForInvite (addrs: Multiaddr[]): Multiaddr[] {
  const rank = (a: Multiaddr): number => {
    if (a.getComponents().some(c => c.code === CIRCUIT)) return 1
    const host = a.getComponents()[0]?.value ?? ''
    if (/^(127\.|::1$)/.test(host)) return 3
    if (/^(10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|169\.254\.|f[cd]|fe80)/i.test(host)) return 2
    return 0
  }
  return addrs.map(withoutPeer).map((a, i) => ({ a, r: rank(a), i })).sort((x, y) => x.r - y.r || x.i - y.i).map(x => x.a)
}
