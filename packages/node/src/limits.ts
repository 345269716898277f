import { InvalidParametersError } from '@homecloud/interface'

/**
 * Every bound of a device (D8), named in one place and sized for a box with 1 GiB of memory.
 */
export interface DeviceLimits {
  /** Open connections, all peers together. */
  maxConnections: number
  /** Connections still dialling or upgrading (Noise + Yamux), each direction. */
  maxPendingConnections: number
  /** Inbound connection attempts accepted per IP per second. */
  inboundConnectionsPerIpPerSecond: number
  /** Streams of one protocol on one connection, each direction. */
  maxStreamsPerProtocol: number
  /** Streams of all protocols together on one connection, each direction (yamux). */
  maxStreamsPerConnection: number
  /** Largest message any Home Cloud protocol accepts. */
  maxMessageBytes: number
  /** Largest single block (chunk) accepted from a peer. */
  maxBlockBytes: number
  /** Largest identify message, and so largest signed peer record, accepted from a peer. */
  maxIdentifyMessageBytes: number
  /** Addresses in one signed peer record; a record with more is rejected (D2). */
  maxAddressesPerPeer: number
  /** Circuit relay v2 reservations this device serves when it is a relay server. */
  maxRelayReservations: number
}

export const DEFAULT_LIMITS: Readonly<DeviceLimits> = Object.freeze({
  maxConnections: 300,
  maxPendingConnections: 32,
  inboundConnectionsPerIpPerSecond: 5,
  maxStreamsPerProtocol: 64,
  maxStreamsPerConnection: 256,
  maxMessageBytes: 4 * 1024 * 1024,
  maxBlockBytes: 2 * 1024 * 1024,
  maxIdentifyMessageBytes: 8 * 1024,
  maxAddressesPerPeer: 64,
  maxRelayReservations: 15
})

const LIMIT_NAMES = Object.keys(DEFAULT_LIMITS) as Array<keyof DeviceLimits>

/**
 * Merges `overrides` over {@link DEFAULT_LIMITS} and checks the result: every
 * limit a positive safe integer, no unknown names (a typo must not silently
 * fall back to a default), and the pairs that depend on each other consistent.
 *
 * @throws {InvalidParametersError} when a limit is missing, not a positive integer, unknown or inconsistent
 */
export function resolveLimits (overrides: Partial<DeviceLimits> = {}): DeviceLimits {
  if (overrides == null || typeof overrides !== 'object' || Array.isArray(overrides)) {
    throw new InvalidParametersError('limits must be an object')
  }

  for (const name of Object.keys(overrides)) {
    if (!(LIMIT_NAMES as string[]).includes(name)) {
      throw new InvalidParametersError(`unknown limit "${name}"`)
    }
  }

  const limits: DeviceLimits = { ...DEFAULT_LIMITS }

  for (const name of LIMIT_NAMES) {
    const value: unknown = overrides[name] ?? DEFAULT_LIMITS[name]

    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
      throw new InvalidParametersError(`limit "${name}" must be a positive integer, got ${String(value)}`)
    }

    limits[name] = value
  }

  if (limits.maxPendingConnections > limits.maxConnections) {
    throw new InvalidParametersError('limit "maxPendingConnections" must not exceed "maxConnections"')
  }

  if (limits.maxBlockBytes > limits.maxMessageBytes) {
    throw new InvalidParametersError('limit "maxBlockBytes" must not exceed "maxMessageBytes"')
  }

  if (limits.maxStreamsPerProtocol > limits.maxStreamsPerConnection) {
    throw new InvalidParametersError('limit "maxStreamsPerProtocol" must not exceed "maxStreamsPerConnection"')
  }

  return limits
}
