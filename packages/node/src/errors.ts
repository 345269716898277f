import { HomecloudError } from '@homecloud/interface'

export { AbortError, InvalidParametersError } from '@homecloud/interface'

/** The device is stopped: start it before asking it to dial or ping. */
export class NodeNotStartedError extends HomecloudError {
  static readonly code = 'ERR_NODE_NOT_STARTED'
  constructor (message = 'the device is not started', options?: ErrorOptions) {
    super(message, NodeNotStartedError.code, options)
    this.name = 'NodeNotStartedError'
  }
}

/** A dial to a peer failed (unreachable, refused, wrong PeerId, timed out); `cause` holds libp2p's error. */
export class DialFailedError extends HomecloudError {
  static readonly code = 'ERR_DIAL_FAILED'
  constructor (message: string, options?: ErrorOptions) {
    super(message, DialFailedError.code, options)
    this.name = 'DialFailedError'
  }
}

/** A listen address could not be bound (port in use, address not on this host); `cause` holds libp2p's error. */
export class ListenError extends HomecloudError {
  static readonly code = 'ERR_LISTEN'
  constructor (message: string, options?: ErrorOptions) {
    super(message, ListenError.code, options)
    this.name = 'ListenError'
  }
}

/**
 * libp2p reports listen failures as one multi-line message with stacks and
 * advice about its own options; keep `addr: reason` per address, on one line.
 */
export function toListenError (err: Error, listen: string[]): ListenError {
  const reasons = [...err.message.matchAll(/^\s*(\/\S+): (?:\w*Error: )?(.+)$/gm)].map(m => `${m[1]}: ${m[2]}`)
  const detail = reasons.length > 0 ? reasons.join('; ') : err.message.split('\n')[0]
  return new ListenError(`could not listen on ${listen.join(', ')}: ${detail}`, { cause: err })
}

/** `get` was given no peers and the DHT knows no (reachable) provider of the root. */
export class NoProvidersError extends HomecloudError {
  static readonly code = 'ERR_NO_PROVIDERS'
  constructor (message: string, options?: ErrorOptions) {
    super(message, NoProvidersError.code, options)
    this.name = 'NoProvidersError'
  }
}

/** `get` would overwrite something: the output exists, or another get writes there now. */
export class OutputExistsError extends HomecloudError {
  static readonly code = 'ERR_OUTPUT_EXISTS'
  constructor (message: string, options?: ErrorOptions) {
    super(message, OutputExistsError.code, options)
    this.name = 'OutputExistsError'
  }
}

/** A fetched DAG is not a UnixFS tree this device can write: malformed, inconsistent sizes, unsafe names, unsupported kinds. */
export class BadDagError extends HomecloudError {
  static readonly code = 'ERR_BAD_DAG'
  constructor (message: string, options?: ErrorOptions) {
    super(message, BadDagError.code, options)
    this.name = 'BadDagError'
  }
}

/** A fetched directory names an entry that is not a plain file name (`..`, `/`, NUL, empty, too long, a duplicate). Nothing is written. */
export class UnsafeNameError extends HomecloudError {
  static readonly code = 'ERR_UNSAFE_NAME'
  constructor (message: string, options?: ErrorOptions) {
    super(message, UnsafeNameError.code, options)
    this.name = 'UnsafeNameError'
  }
}
