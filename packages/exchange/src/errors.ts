/**
 * Errors only the chunk exchange raises. Each has a stable `code`. The exchange
 * also throws `NotFoundError`, `AbortError`, `IntegrityError`,
 * `LimitExceededError` and `InvalidParametersError` from `@homecloud/interface`.
 */
import { HomecloudError } from '@homecloud/interface'

/** Bytes from a peer are not a valid exchange message (framing, tag, CID, a limit). */
export class MessageDecodeError extends HomecloudError {
  static readonly code = 'ERR_BAD_MESSAGE'
  constructor (message: string, options?: ErrorOptions) {
    super(message, MessageDecodeError.code, options)
    this.name = 'MessageDecodeError'
  }
}

/** A peer broke the protocol: too many wants, a block it was never asked for, the wrong entry kind. */
export class ProtocolViolationError extends HomecloudError {
  static readonly code = 'ERR_PROTOCOL_VIOLATION'
  constructor (message: string, options?: ErrorOptions) {
    super(message, ProtocolViolationError.code, options)
    this.name = 'ProtocolViolationError'
  }
}

/** A fetch was given no usable peer (none, or all of them banned). */
export class NoPeersError extends HomecloudError {
  static readonly code = 'ERR_NO_PEERS'
  constructor (message = 'no peers to fetch from', options?: ErrorOptions) {
    super(message, NoPeersError.code, options)
    this.name = 'NoPeersError'
  }
}

/** Every peer of a fetch failed (unreachable, disconnected, faulty, stalled) before it finished. */
export class PeersFailedError extends HomecloudError {
  static readonly code = 'ERR_PEERS_FAILED'
  /** Why each peer was dropped, by PeerId string. */
  readonly reasons: Record<string, string>

  constructor (message: string, reasons: Record<string, string>, options?: ErrorOptions) {
    super(message, PeersFailedError.code, options)
    this.name = 'PeersFailedError'
    this.reasons = reasons
  }
}

/** The exchange was used before `start()` or after `stop()`. */
export class NotStartedError extends HomecloudError {
  static readonly code = 'ERR_NOT_STARTED'
  constructor (message = 'the chunk exchange is not started', options?: ErrorOptions) {
    super(message, NotStartedError.code, options)
    this.name = 'NotStartedError'
  }
}

/** A peer held wants and delivered nothing for too long, too many times. */
export class PeerStalledError extends HomecloudError {
  static readonly code = 'ERR_PEER_STALLED'
  constructor (message: string, options?: ErrorOptions) {
    super(message, PeerStalledError.code, options)
    this.name = 'PeerStalledError'
  }
}
