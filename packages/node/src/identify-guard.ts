/**
 * Puts identify and identify-push behind the {@link PeerRecordGuard} (D2).
 *
 * What @libp2p/identify 4.1 does on its own (src/utils.ts,
 * `consumeIdentifyMessage`), read for this package:
 * - signed record present: it checks the signature, that the record's PeerId
 *   is the signer and that it is the connection's remote peer (throwing
 *   otherwise, before touching the peer store); if the stored record's seq is
 *   >= the new one it silently keeps the stored record; then it patches the
 *   peer with the record's addresses only (`isCertified: true`). The unsigned
 *   `listenAddrs` of the same message are dropped. Stale records are not
 *   counted anywhere.
 * - signed record absent: it patches the peer's addresses with the unsigned
 *   `listenAddrs` (`isCertified: false`), replacing what was there.
 *
 * So identify and identify-push get a peer store in which
 * - `patch` sends any signed record through the guard (which compares seqs
 *   against the real store, keeps strictly newer records only, and counts
 *   rejections) and never writes addresses itself: unsigned `listenAddrs` are
 *   not believed;
 * - `get` of a remote peer hides the stored envelope, so identify does not
 *   swap a stale incoming record for the stored one before the guard can see
 *   (and count) it. The device's own record is passed through untouched
 *   (identify serves it).
 *
 * Records failing identify's own signer checks never reach the store; they are
 * logged by libp2p and not counted here. Addresses that other parts of libp2p
 * add (the address a dial succeeded on, DHT and mDNS hints) stay
 * `isCertified: false`: dialling hints, never the truth about a device.
 */
import { logger } from '@libp2p/logger'
import { LOG_SCOPE } from './constants.js'
import type { PeerRecordGuard } from './peer-record-guard.js'
import type { AbortOptions, Peer, PeerData, PeerId, PeerStore } from '@libp2p/interface'

const log = logger(`${LOG_SCOPE}:identify-guard`)

/** A view of `peerStore` for identify: addresses only through `guard` (see the module comment). */
export function identifyPeerStore (peerStore: PeerStore, self: PeerId, guard: PeerRecordGuard): PeerStore {
  const get = async (peerId: PeerId, options?: AbortOptions): Promise<Peer> => {
    const peer = await peerStore.get(peerId, options)
    return self.equals(peerId) ? peer : { ...peer, peerRecordEnvelope: undefined }
  }

  const patch = async (peerId: PeerId, data: PeerData, options?: AbortOptions): Promise<Peer> => {
    const { addresses, multiaddrs, peerRecordEnvelope, ...rest } = data

    if (self.equals(peerId)) {
      return peerStore.patch(peerId, data, options)
    }

    if (peerRecordEnvelope != null) {
      await guard.consume(peerStore, peerRecordEnvelope, peerId, options)
    } else if ((addresses?.length ?? 0) + (multiaddrs?.length ?? 0) > 0) {
      log('%p sent addresses without a signed peer record; not believed', peerId)
    }

    return peerStore.patch(peerId, rest, options)
  }

  return new Proxy(peerStore, {
    get (target, prop) {
      if (prop === 'get') {
        return get
      }

      if (prop === 'patch') {
        return patch
      }

      const value: unknown = Reflect.get(target, prop, target)
      // the real store keeps private fields: call its methods on itself, not on the proxy
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
}

/** The components identify reads; only `peerStore` is replaced. */
interface IdentifyLikeComponents {
  peerId: PeerId
  peerStore: PeerStore
}

/**
 * Wraps an identify or identify-push service factory so the service sees
 * {@link identifyPeerStore} instead of the real peer store.
 */
export function withPeerRecordGuard<C extends IdentifyLikeComponents, S> (factory: (components: C) => S, guard: PeerRecordGuard): (components: C) => S {
  return (components: C): S => {
    const guarded = identifyPeerStore(components.peerStore, components.peerId, guard)

    return factory(new Proxy(components, {
      get (target, prop, receiver) {
        return prop === 'peerStore' ? guarded : Reflect.get(target, prop, receiver)
      }
    }))
  }
}
