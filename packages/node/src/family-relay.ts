/**
 * Relays for the family (issue 4, D4): libp2p's circuit relay v2 server, with reservations and
 * relayed connections unlimited in bytes and time when both ends are members of this device's
 * swarms, and libp2p's default limits for everyone else.
 *
 * How: the relay server takes a reservation's limit from its reservation map, both when it
 * answers a RESERVE and when it bridges a CONNECT (`reservations.get(destination)`). This device
 * answers that lookup per pair: the hop stream's remote (the reserving or dialling peer) is held
 * in an `AsyncLocalStorage` for the duration of the hop handler, and the map's `get` returns the
 * reservation with no limit when both that peer and the reserving peer are members, and with the
 * default limit otherwise. Membership is asked at every lookup, so a removed device falls back to
 * the defaults at once (the swarm service also hangs up its connections).
 *
 * Strangers cannot crowd the family out: they hold at most `maxReservations` slots; members get
 * `memberReservations` more.
 *
 * A device serves as a relay only while it is publicly reachable (`services.relayServer: 'auto'`):
 * the service always runs, and `acceptsReservations()` is asked at every RESERVE. While it says no,
 * the connection gater hook below refuses with the relay's own PERMISSION_DENIED status, so
 * clients move on to another relay. Existing reservations are kept; they expire as usual.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { circuitRelayServer, RELAY_V2_HOP_CODEC } from '@libp2p/circuit-relay-v2'
import type { CircuitRelayServerComponents, CircuitRelayService } from '@libp2p/circuit-relay-v2'
import type { ConnectionGater, PeerId, StreamHandler } from '@libp2p/interface'
import type { Registrar } from '@libp2p/interface-internal'

/** libp2p's own defaults (go-libp2p's resources.go), restated because circuit-relay-v2 does not export them. */
export const RELAY_DEFAULT_DATA_LIMIT = 128n * 1024n
export const RELAY_DEFAULT_DURATION_LIMIT_MS = 2 * 60 * 1000

type RelayReservation = NonNullable<ReturnType<CircuitRelayService['reservations']['get']>>
type RelayLimit = NonNullable<RelayReservation['limit']>

export interface FamilyRelayInit {
  /** Reservations held by non-members, at most. */
  maxReservations: number
  /** Extra reservations for members, on top of `maxReservations`. */
  memberReservations: number
  /** Is `peer` on the roster of one of this device's swarms? */
  isMember(peer: PeerId): boolean
  /** May the relay take new reservations now? (publicly reachable, in `auto` mode); always when absent. */
  acceptsReservations?(): boolean
}

/** Who the relay treats as family: the decisions, apart from the libp2p plumbing below. */
export class FamilyRelayPolicy {
  constructor (private readonly init: FamilyRelayInit) {}

  /** The limit of a relayed connection (or reservation, when `other` is the reserving peer itself). */
  limitFor (reserving: PeerId, other: PeerId): RelayLimit | undefined {
    if (this.init.isMember(reserving) && this.init.isMember(other)) return undefined
    return { data: RELAY_DEFAULT_DATA_LIMIT, duration: RELAY_DEFAULT_DURATION_LIMIT_MS }
  }

  /**
   * Refuse every reservation while `acceptsReservations()` says no, and a stranger's when strangers
   * already hold `maxReservations` (not counting `peer`'s own).
   */
  denyReservation (peer: PeerId, holders: Iterable<PeerId>): boolean {
    if (this.init.acceptsReservations?.() === false) return true
    if (this.init.isMember(peer)) return false
    let strangers = 0
    for (const holder of holders) {
      if (!holder.equals(peer) && !this.init.isMember(holder)) strangers++
    }
    return strangers >= this.init.maxReservations
  }
}

/** A circuit relay v2 server service for `ServiceFactoryMap`, with the family policy above. */
export function familyRelayServer (init: FamilyRelayInit): (components: CircuitRelayServerComponents) => CircuitRelayService {
  const policy = new FamilyRelayPolicy(init)
  const factory = circuitRelayServer({
    reservations: {
      maxReservations: init.maxReservations + init.memberReservations,
      defaultDataLimit: RELAY_DEFAULT_DATA_LIMIT,
      defaultDurationLimit: RELAY_DEFAULT_DURATION_LIMIT_MS
    }
  })
  return (components) => {
    const hopCaller = new AsyncLocalStorage<PeerId>()

    const registrar = overlay<Registrar>(components.registrar, {
      handle: async (protocol, handler, options) => {
        const wrapped: StreamHandler = protocol === RELAY_V2_HOP_CODEC
          ? async (stream, connection) => hopCaller.run(connection.remotePeer, async () => handler(stream, connection))
          : handler
        await components.registrar.handle(protocol, wrapped, options)
      }
    })

    const gater = components.connectionGater
    const connectionGater = overlay<ConnectionGater>(gater, {
      denyInboundRelayReservation: async (peer) => {
        if ((await gater.denyInboundRelayReservation?.(peer)) === true) return true
        // called only once the server runs, so `server` below is set
        return policy.denyReservation(peer, server.reservations.keys())
      }
    })

    const server = factory(overlay(components, { registrar, connectionGater }))
    const reservations = server.reservations
    const stored = reservations.get.bind(reservations)
    reservations.get = (peer: PeerId): RelayReservation | undefined => {
      const reservation = stored(peer)
      if (reservation == null) return undefined
      return { ...reservation, limit: policy.limitFor(peer, hopCaller.getStore() ?? peer) }
    }
    return server
  }
}

/** `base` with some properties replaced; other methods stay bound to `base`. */
function overlay<T extends object> (base: T, overrides: Partial<T>): T {
  return new Proxy(base, {
    get (target, prop) {
      if (Object.hasOwn(overrides, prop)) return overrides[prop as keyof T]
      const value: unknown = Reflect.get(target, prop)
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
}
