/**
 * Every bound of a device (D8), named in one place and sized for a box with 1 GiB of memory.
 */
export interface DeviceLimits {
  /** Open connections, all peers together. */
  maxConnections: number
  /** Connections still dialling or upgrading (Noise + Yamux). */
  maxPendingConnections: number
  /** Inbound connection attempts accepted per IP per second. */
  inboundConnectionsPerIpPerSecond: number
  /** Streams of one protocol on one connection, each direction. */
  maxStreamsPerProtocol: number
  /** Largest message any Home Cloud protocol accepts. */
  maxMessageBytes: number
  /** Largest single block (chunk) accepted from a peer. */
  maxBlockBytes: number
}

export const DEFAULT_LIMITS: Readonly<DeviceLimits> = Object.freeze({
  maxConnections: 300,
  maxPendingConnections: 32,
  inboundConnectionsPerIpPerSecond: 5,
  maxStreamsPerProtocol: 64,
  maxMessageBytes: 4 * 1024 * 1024,
  maxBlockBytes: 2 * 1024 * 1024
})
