/**
 * Every Home Cloud error has a stable `code` that callers (and the HTTP layer's
 * status table) match on; `name` is the class name for logs.
 */
export class HomecloudError extends Error {
  readonly code: string

  constructor (message: string, code: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'HomecloudError'
    this.code = code
  }
}

/** A caller passed something malformed: a bad multiaddr, a negative limit. */
export class InvalidParametersError extends HomecloudError {
  static readonly code = 'ERR_INVALID_PARAMETERS'
  constructor (message: string, options?: ErrorOptions) {
    super(message, InvalidParametersError.code, options)
    this.name = 'InvalidParametersError'
  }
}

/** The thing asked for does not exist (a CID, a peer, a share). */
export class NotFoundError extends HomecloudError {
  static readonly code = 'ERR_NOT_FOUND'
  constructor (message: string, options?: ErrorOptions) {
    super(message, NotFoundError.code, options)
    this.name = 'NotFoundError'
  }
}

/** The operation was cancelled through its AbortSignal. */
export class AbortError extends HomecloudError {
  static readonly code = 'ERR_ABORTED'
  constructor (message = 'The operation was aborted', options?: ErrorOptions) {
    super(message, AbortError.code, options)
    this.name = 'AbortError'
  }
}

/** Bytes received did not hash to the CID they were sent for. */
export class IntegrityError extends HomecloudError {
  static readonly code = 'ERR_INTEGRITY'
  constructor (message: string, options?: ErrorOptions) {
    super(message, IntegrityError.code, options)
    this.name = 'IntegrityError'
  }
}

/** A bound of D8 was reached: message size, queue length, connection count. */
export class LimitExceededError extends HomecloudError {
  static readonly code = 'ERR_LIMIT_EXCEEDED'
  constructor (message: string, options?: ErrorOptions) {
    super(message, LimitExceededError.code, options)
    this.name = 'LimitExceededError'
  }
}

/** The remote device is not allowed to do this (off the roster, no token). */
export class PermissionDeniedError extends HomecloudError {
  static readonly code = 'ERR_PERMISSION_DENIED'
  constructor (message: string, options?: ErrorOptions) {
    super(message, PermissionDeniedError.code, options)
    this.name = 'PermissionDeniedError'
  }
}

/** The repo is missing, already exists, or is locked by another daemon. */
export class RepoError extends HomecloudError {
  static readonly code = 'ERR_REPO'
  constructor (message: string, options?: ErrorOptions) {
    super(message, RepoError.code, options)
    this.name = 'RepoError'
  }
}

/** Is `err` a HomecloudError (or shaped like one, across package copies)? */
export function isHomecloudError (err: unknown): err is HomecloudError {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'string'
}
