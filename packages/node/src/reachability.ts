import { isPrivate } from '@libp2p/utils'
import type { IsPublicAddress } from './address-ranges.js'
import type { Reachability } from '@homecloud/interface'
import type { AddressManager, NodeAddress } from '@libp2p/interface-internal'
import type { Multiaddr } from '@multiformats/multiaddr'

/**
 * Does traffic to the address go through a circuit relay? A WebRTC address
 * (`…/p2p-circuit/webrtc/p2p/<peer>`) uses the relay only to set up a direct
 * connection, so it does not.
 */
export function isRelayed (ma: Multiaddr): boolean {
  const names = ma.getComponents().map(c => c.name)
  const circuit = names.lastIndexOf('p2p-circuit')
  return circuit !== -1 && !names.includes('webrtc', circuit)
}

/** Is the address reached through a relay at all, even just for signalling? (a device's own relay and WebRTC addresses) */
function viaRelay (ma: Multiaddr): boolean {
  return ma.getComponents().some(c => c.name === 'p2p-circuit')
}

/**
 * How reachable the device is from the internet, read from its own addresses
 * as the address manager tracks them (AutoNAT v2 and UPnP confirm or
 * unconfirm the public ones):
 * - `public`: some public (non-private, non-relay) address is verified;
 * - `unknown`: no address yet, or a public candidate is still waiting for its
 *   first check (always the case while AutoNAT is off);
 * - `private`: every public candidate failed its check, or there is none at
 *   all (only LAN/loopback and relay addresses: nobody outside can dial it).
 *
 * `isPublic` says which addresses are public: libp2p's rule by default, or the
 * one of `config.publicAddressRanges` (`publicAddressRule`).
 */
export function reachabilityOf (addresses: ReadonlyArray<Pick<NodeAddress, 'multiaddr' | 'verified' | 'expires' | 'lastVerified'>>, isPublic: IsPublicAddress = (ma) => !isPrivate(ma)): Reachability {
  if (addresses.length === 0) {
    return 'unknown'
  }

  const candidates = addresses.filter(a => !viaRelay(a.multiaddr) && isPublic(a.multiaddr))

  if (candidates.some(a => a.verified)) {
    return 'public'
  }

  // never checked: a failed check (unconfirm) sets `expires` for the retry
  if (candidates.some(a => a.lastVerified == null && a.expires === 0)) {
    return 'unknown'
  }

  return 'private'
}

/** The one thing the device reads from libp2p's internal address manager. */
export interface NodeAddresses {
  withMetadata(): NodeAddress[]
  /** `reachabilityOf` the addresses, with the device's public-address rule. */
  reachability(): Reachability
}

/**
 * A libp2p service exposing the address manager's view of the device's own
 * addresses (verified or not), which `Libp2p` does not expose.
 */
export function nodeAddresses (init: { isPublic?: IsPublicAddress } = {}) {
  return (components: { addressManager: Pick<AddressManager, 'getAddressesWithMetadata'> }): NodeAddresses => ({
    withMetadata: () => components.addressManager.getAddressesWithMetadata(),
    reachability: () => reachabilityOf(components.addressManager.getAddressesWithMetadata(), init.isPublic)
  })
}
