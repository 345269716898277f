/**
 * Which IP ranges count as public (`config.publicAddressRanges`).
 *
 * js-libp2p calls every address in 10/8, 172.16/12, 192.168/16, 100.64/10 and
 * the TEST-NETs private (`isPrivate` in @libp2p/utils). That is right on the
 * internet, wrong on a routed company network or a NAT lab whose "internet" is
 * 10.77.0.0/24: there a device that is reachable would never call itself
 * public, and a DHT in `auto` mode would never serve. The ranges given here are
 * public for the decisions Home Cloud makes itself:
 * - the device's reachability (`reachabilityOf`, `homecloud id`/`status`);
 * - the DHT's `auto` mode (server once a verified address is public;
 *   {@link dhtAutoMode} replaces kad-dht's own switch, which hardcodes `isPrivate`).
 *
 * Announcing such an address needs no hook: libp2p's address manager marks a
 * listening address it thinks private as verified at once (no AutoNAT check),
 * so a device bound to an address in these ranges announces it and, with the
 * range configured, counts as public. The libp2p parts that hardcode the
 * private check with no option stay as they are (see interop-tests/README.md):
 * identify's observed addresses (it drops every TCP one anyway), the address
 * manager's observed list, AutoNAT v2 client and server, DCUtR and UPnP.
 */
import { BlockList, isIP } from 'node:net'
import { InvalidParametersError } from '@homecloud/interface'
import { getNetConfig, isPrivate } from '@libp2p/utils'
import { isRelayed } from './reachability.js'
import type { KadDHT } from '@libp2p/kad-dht'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { TypedEventTarget, Libp2pEvents, Startable } from '@libp2p/interface'

/** Most entries in `publicAddressRanges` (each is checked on every address decision). */
export const MAX_PUBLIC_ADDRESS_RANGES = 32

/** "Is this one of the device's public addresses?" — libp2p's rule plus the configured ranges. */
export type IsPublicAddress = (ma: Multiaddr) => boolean

/**
 * Checks a list of CIDR ranges (`10.77.0.0/24`, `fd00:77::/64`) and returns
 * them normalised (`10.77.0.0/24`); the host bits must be zero.
 *
 * @throws {InvalidParametersError} naming the bad entry
 */
export function parsePublicAddressRanges (value: unknown, what = 'config.publicAddressRanges'): string[] {
  if (!Array.isArray(value)) {
    throw new InvalidParametersError(`${what} must be an array of CIDR ranges such as "10.77.0.0/24"`)
  }

  if (value.length > MAX_PUBLIC_ADDRESS_RANGES) {
    throw new InvalidParametersError(`${what} has ${value.length} entries, at most ${MAX_PUBLIC_ADDRESS_RANGES} are allowed`)
  }

  return value.map(entry => parseCidr(entry, what))
}

function parseCidr (entry: unknown, what: string): string {
  const match = typeof entry === 'string' ? /^([0-9a-fA-F:.]+)\/(\d{1,3})$/.exec(entry) : null
  const family = match === null ? 0 : isIP(match[1])
  const bits = family === 4 ? 32 : 128
  const prefix = Number(match?.[2])

  if (match === null || family === 0 || prefix > bits) {
    throw new InvalidParametersError(`${what}: ${JSON.stringify(entry)} is not a CIDR range such as "10.77.0.0/24" or "fd00::/8"`)
  }

  // an IPv4 range with host bits set is most likely a typo for another range
  const lowest = family === 4 ? maskIpv4(match[1], prefix) : undefined

  if (lowest !== undefined && lowest !== match[1]) {
    throw new InvalidParametersError(`${what}: ${JSON.stringify(entry)} has host bits set; did you mean "${lowest}/${prefix}"?`)
  }

  return `${match[1].toLowerCase()}/${prefix}`
}

function maskIpv4 (ip: string, prefix: number): string {
  const n = ip.split('.').reduce((acc, octet) => (acc * 256) + Number(octet), 0)
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0
  const masked = (n & mask) >>> 0
  return [24, 16, 8, 0].map(shift => (masked >>> shift) & 0xff).join('.')
}

/**
 * The public-address rule for `ranges` (already parsed): an address is public
 * when libp2p thinks so, or when its IP lies in one of the ranges. Relay
 * addresses and names (`/dns4/...`) are judged as libp2p judges them.
 */
export function publicAddressRule (ranges: readonly string[]): IsPublicAddress {
  if (ranges.length === 0) {
    return (ma) => !isPrivate(ma)
  }

  const list = new BlockList()

  for (const range of ranges) {
    const [ip, prefix] = range.split('/')
    list.addSubnet(ip, Number(prefix), isIP(ip) === 4 ? 'ipv4' : 'ipv6')
  }

  return (ma) => {
    if (!isPrivate(ma)) {
      return true
    }

    try {
      const config = getNetConfig(ma)

      if (config.type === 'ip4' || config.type === 'ip6') {
        return list.check(config.host, config.type === 'ip4' ? 'ipv4' : 'ipv6')
      }
    } catch {
      // not an IP address: libp2p's answer stands
    }

    return false
  }
}

export interface DhtAutoModeInit {
  isPublic: IsPublicAddress
  /** Name of the kad-dht service on `libp2p.services` (read from the components at start). */
  service: string
  onError(err: Error): void
}

/** The events, and the kad-dht service under `init.service` (libp2p puts every service on its components). */
export type DhtAutoModeComponents = { events: TypedEventTarget<Libp2pEvents> } & Record<string, unknown>

/**
 * kad-dht's `auto` mode with the device's public-address rule: server while
 * the device's own (verified, announced) addresses include a public one that
 * is not a relay address, client otherwise (D3). kad-dht must be built with
 * `clientMode: true` so that its own switch, which hardcodes `isPrivate`, is
 * not installed next to this one.
 */
export function dhtAutoMode (init: DhtAutoModeInit) {
  return (components: DhtAutoModeComponents): Startable => {
    let dht: KadDHT | undefined

    const onUpdate = (evt: Libp2pEvents['self:peer:update']): void => {
      if (dht == null) {
        return
      }

      const wanted = evt.detail.peer.addresses.some(({ multiaddr }) => !isRelayed(multiaddr) && init.isPublic(multiaddr)) ? 'server' : 'client'

      if (dht.getMode() !== wanted) {
        dht.setMode(wanted).catch(init.onError)
      }
    }

    return {
      start () {
        dht = components[init.service] as KadDHT
        components.events.addEventListener('self:peer:update', onUpdate)
      },
      stop () {
        components.events.removeEventListener('self:peer:update', onUpdate)
        dht = undefined
      }
    }
  }
}
