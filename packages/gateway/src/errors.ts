/**
 * Errors only the HTTP layer raises. Each has a stable `code`; `http-status.ts` maps codes to statuses.
 */
import { HomecloudError } from '@homecloud/interface'

/** The request carries no bearer token, or the wrong one. */
export class UnauthenticatedError extends HomecloudError {
  static readonly code = 'ERR_UNAUTHENTICATED'
  constructor (message = 'a valid bearer token is required', options?: ErrorOptions) {
    super(message, UnauthenticatedError.code, options)
    this.name = 'UnauthenticatedError'
  }
}

/** The route exists but not for this HTTP method. */
export class MethodNotAllowedError extends HomecloudError {
  static readonly code = 'ERR_METHOD_NOT_ALLOWED'
  readonly allow: string

  constructor (method: string, allow: string, options?: ErrorOptions) {
    super(`method ${method} is not allowed here; use ${allow}`, MethodNotAllowedError.code, options)
    this.name = 'MethodNotAllowedError'
    this.allow = allow
  }
}

/** The request body is larger than the API accepts. */
export class RequestTooLargeError extends HomecloudError {
  static readonly code = 'ERR_REQUEST_TOO_LARGE'
  constructor (maxBytes: number, options?: ErrorOptions) {
    super(`request body is larger than ${maxBytes} bytes`, RequestTooLargeError.code, options)
    this.name = 'RequestTooLargeError'
  }
}

/** A body was sent in a format other than JSON. */
export class UnsupportedMediaTypeError extends HomecloudError {
  static readonly code = 'ERR_UNSUPPORTED_MEDIA_TYPE'
  constructor (message = 'request body must be application/json', options?: ErrorOptions) {
    super(message, UnsupportedMediaTypeError.code, options)
    this.name = 'UnsupportedMediaTypeError'
  }
}

/** The control API was used before `start()` or started twice. */
export class NotStartedError extends HomecloudError {
  static readonly code = 'ERR_NOT_STARTED'
  constructor (message = 'the control API is not started', options?: ErrorOptions) {
    super(message, NotStartedError.code, options)
    this.name = 'NotStartedError'
  }
}

/** The device behind the API lacks the part a route needs (e.g. private swarms). */
export class NotImplementedError extends HomecloudError {
  static readonly code = 'ERR_NOT_IMPLEMENTED'
  constructor (message = 'not implemented by this device', options?: ErrorOptions) {
    super(message, NotImplementedError.code, options)
    this.name = 'NotImplementedError'
  }
}
