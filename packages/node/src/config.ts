import { InvalidParametersError } from '@homecloud/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { DEFAULT_TCP_LISTEN, DEFAULT_WS_LISTEN, MAX_CONFIG_ADDRESSES, MAX_NAME_LENGTH } from './constants.js'
import { parsePublicAddressRanges } from './address-ranges.js'
import { resolveLimits, type DeviceLimits } from './limits.js'
import { DEFAULT_STUN_PORT } from './stun-server.js'
import { resolveSwarmConfig } from './swarm-wiring.js'
import { parseStunServers } from './webrtc.js'
import type { DeviceServices, HomecloudNodeConfig, SwarmTuning } from './types.js'
import type { PrivateKey } from '@libp2p/interface'

/** Services of a device when the config says nothing: everything on, relaying only while publicly reachable. */
export const DEFAULT_SERVICES: Readonly<DeviceServices> = Object.freeze({
  mdns: true,
  upnp: true,
  dht: 'auto',
  autonat: true,
  relayServer: 'auto',
  dcutr: true,
  websockets: true,
  webrtc: true,
  stunServer: false
})

const DHT_MODES: ReadonlyArray<DeviceServices['dht']> = ['auto', 'server', 'client', 'off']

/** A config after defaults and checks: what the device is built from. */
export interface ResolvedConfig {
  privateKey: PrivateKey
  name: string
  datastorePath?: string
  listen: string[]
  announce: string[]
  /** CIDR ranges counted as public, normalised (`config.publicAddressRanges`). */
  publicAddressRanges: string[]
  /** Bootstrap peers, each with its `/p2p/<id>`. */
  bootstrap: Multiaddr[]
  services: DeviceServices
  /** `stun:HOST:PORT` URLs (`config.stunServers`). */
  stunServers: string[]
  /** UDP port of the device's STUN server (`config.stunServerPort`). */
  stunServerPort: number
  limits: DeviceLimits
  start: boolean
  swarmDatastorePath?: string
  swarm: SwarmTuning
}

/**
 * Applies defaults to `config` and checks every field, so that bad input fails
 * here with a clear message instead of deep inside libp2p.
 *
 * @throws {InvalidParametersError}
 */
export function resolveConfig (config: HomecloudNodeConfig): ResolvedConfig {
  if (config == null || typeof config !== 'object') {
    throw new InvalidParametersError('config must be an object')
  }

  const { privateKey, name, datastorePath } = config

  if (privateKey == null || typeof privateKey !== 'object' || privateKey.type !== 'Ed25519') {
    throw new InvalidParametersError('config.privateKey must be an Ed25519 private key')
  }

  if (typeof name !== 'string' || name.trim() === '' || name.length > MAX_NAME_LENGTH || /\p{Cc}/u.test(name)) {
    throw new InvalidParametersError(`config.name must be 1-${MAX_NAME_LENGTH} printable characters`)
  }

  if (datastorePath != null && (typeof datastorePath !== 'string' || datastorePath === '')) {
    throw new InvalidParametersError('config.datastorePath must be a non-empty string when set')
  }

  const services = resolveServices(config.services)
  const listen = parseAddresses('listen', config.listen ?? defaultListen(services))
  const announce = parseAddresses('announce', config.announce ?? [])
  const bootstrap = parseAddresses('bootstrap', config.bootstrap ?? [])

  for (const ma of bootstrap) {
    if (ma.getComponents().findLast(c => c.name === 'p2p')?.value == null) {
      throw new InvalidParametersError(`config.bootstrap address ${ma.toString()} must end with /p2p/<peer id>`)
    }
  }

  if (config.start != null && typeof config.start !== 'boolean') {
    throw new InvalidParametersError('config.start must be a boolean')
  }

  return {
    privateKey,
    name,
    datastorePath,
    listen: listen.map(ma => ma.toString()),
    announce: announce.map(ma => ma.toString()),
    publicAddressRanges: parsePublicAddressRanges(config.publicAddressRanges ?? []),
    bootstrap,
    services,
    stunServers: parseStunServers(config.stunServers ?? []),
    stunServerPort: resolveStunPort(config.stunServerPort),
    limits: resolveLimits(config.limits),
    start: config.start ?? true,
    ...resolveSwarmConfig(config, services)
  }
}

/** Default listeners: TCP, plus WebSockets when they are on. */
export function defaultListen (services: Pick<DeviceServices, 'websockets'>): string[] {
  return services.websockets ? [DEFAULT_TCP_LISTEN, DEFAULT_WS_LISTEN] : [DEFAULT_TCP_LISTEN]
}

function resolveServices (overrides: Partial<DeviceServices> = {}): DeviceServices {
  if (overrides == null || typeof overrides !== 'object' || Array.isArray(overrides)) {
    throw new InvalidParametersError('config.services must be an object')
  }

  const services: DeviceServices = { ...DEFAULT_SERVICES }

  for (const [name, value] of Object.entries(overrides)) {
    if (value === undefined) {
      continue
    }

    if (name === 'dht') {
      if (!DHT_MODES.includes(value as DeviceServices['dht'])) {
        throw new InvalidParametersError(`config.services.dht must be one of ${DHT_MODES.join(', ')}, got ${String(value)}`)
      }

      services.dht = value as DeviceServices['dht']
    } else if (name === 'relayServer') {
      if (typeof value !== 'boolean' && value !== 'auto') {
        throw new InvalidParametersError(`config.services.relayServer must be true, false or 'auto', got ${String(value)}`)
      }

      services.relayServer = value
    } else if (Object.hasOwn(DEFAULT_SERVICES, name)) {
      if (typeof value !== 'boolean') {
        throw new InvalidParametersError(`config.services.${name} must be a boolean, got ${String(value)}`)
      }

      Object.assign(services, { [name]: value })
    } else {
      throw new InvalidParametersError(`unknown service "${name}"`)
    }
  }

  return services
}

function resolveStunPort (port: unknown): number {
  if (port === undefined) return DEFAULT_STUN_PORT
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidParametersError(`config.stunServerPort must be a port number (0-65535), got ${String(port)}`)
  }
  return port
}

function parseAddresses (field: string, value: unknown): Multiaddr[] {
  if (!Array.isArray(value)) {
    throw new InvalidParametersError(`config.${field} must be an array of multiaddrs`)
  }

  if (value.length > MAX_CONFIG_ADDRESSES) {
    throw new InvalidParametersError(`config.${field} has ${value.length} entries, at most ${MAX_CONFIG_ADDRESSES} are allowed`)
  }

  return value.map(str => parseMultiaddr(str, `config.${field}`))
}

/**
 * Parses a multiaddr string.
 *
 * @throws {InvalidParametersError} naming `what` when it is not a multiaddr
 */
export function parseMultiaddr (str: unknown, what: string): Multiaddr {
  if (typeof str !== 'string' || str === '') {
    throw new InvalidParametersError(`${what}: expected a multiaddr string, got ${typeof str === 'string' ? 'an empty string' : typeof str}`)
  }

  try {
    const ma = multiaddr(str)

    if (ma.bytes.byteLength === 0) {
      throw new Error('empty multiaddr')
    }

    return ma
  } catch (err) {
    throw new InvalidParametersError(`${what}: "${str}" is not a valid multiaddr`, { cause: err })
  }
}
