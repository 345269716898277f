/**
 * Bounds of the control API (D8, RELIABILITY.md "slow HTTP clients"), named in one place.
 */
export interface ControlApiLimits {
  /** Largest request body accepted; larger ones get 413. */
  maxBodyBytes: number
  /** Largest request head (request line + headers); Node answers 431 above it. */
  maxHeaderBytes: number
  /** Time a client has to send the whole request head (slowloris). */
  headersTimeoutMs: number
  /** Time a client has to send the whole request, body included. */
  requestTimeoutMs: number
  /** An idle keep-alive socket is closed after this. */
  keepAliveTimeoutMs: number
  /** Open sockets, all clients together. */
  maxSockets: number
  /** Open sockets from one remote IP address. */
  maxSocketsPerIp: number
  /** Longest a device operation (a dial) may run for one request. */
  operationTimeoutMs: number
}

export const DEFAULT_CONTROL_API_LIMITS: Readonly<ControlApiLimits> = Object.freeze({
  maxBodyBytes: 64 * 1024,
  maxHeaderBytes: 16 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  maxSockets: 64,
  maxSocketsPerIp: 16,
  operationTimeoutMs: 60_000
})

/** Default listen host: loopback only (DESIGN.md "Interfaces"). */
export const DEFAULT_CONTROL_API_HOST = '127.0.0.1'

/** Every route lives under this prefix. */
export const API_PREFIX = '/api/v1/'

/** Tokens shorter than this are refused: the token is the only thing between a local process and the device. */
export const MIN_TOKEN_LENGTH = 16

/** Longest multiaddr accepted by `POST connect`. */
export const MAX_MULTIADDR_LENGTH = 1024

/** Longest string field of a swarm route (names, invite codes, PeerIds); the swarm service checks each more closely. */
export const MAX_SWARM_FIELD_LENGTH = 256

/** Progress lines of a long route (NDJSON) are sent at most this often. */
export const PROGRESS_INTERVAL_MS = 100

/** Longest path, CID and `from` list accepted by the content routes. */
export const MAX_PATH_LENGTH = 4096
export const MAX_CID_LENGTH = 256
export const MAX_FROM_ADDRESSES = 64
