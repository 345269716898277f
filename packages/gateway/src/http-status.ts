/**
 * The one table from an error's stable code to an HTTP status (STYLE.md "Errors").
 * Home Cloud errors are matched on `code`; libp2p 3 errors carry no code, their
 * stable identifier is `name`, so those are listed by name in the same table.
 */
import { isHomecloudError } from '@homecloud/interface'

export const HTTP_STATUS_BY_CODE: Readonly<Record<string, number>> = Object.freeze({
  // @homecloud/interface
  ERR_INVALID_PARAMETERS: 400,
  ERR_PERMISSION_DENIED: 403,
  ERR_NOT_FOUND: 404,
  ERR_LIMIT_EXCEEDED: 429,
  ERR_INTEGRITY: 502,
  ERR_ABORTED: 503,
  ERR_REPO: 500,
  ERR_NOT_IMPLEMENTED: 501,
  // @homecloud/node
  ERR_DIAL_FAILED: 502,
  ERR_NODE_NOT_STARTED: 503,
  ERR_NO_PROVIDERS: 404,
  ERR_OUTPUT_EXISTS: 409,
  ERR_BAD_DAG: 502,
  ERR_UNSAFE_NAME: 502,
  // @homecloud/store and @homecloud/exchange (through @homecloud/node)
  ERR_FILE_CHANGED: 409,
  ERR_UNSUPPORTED_HASH: 400,
  ERR_STORE_CLOSED: 503,
  ERR_NO_PEERS: 502,
  ERR_PEERS_FAILED: 502,
  ERR_PEER_STALLED: 504,
  // @homecloud/swarm (through @homecloud/node)
  ERR_INVITE_INVALID: 400,
  ERR_INVITE_UNKNOWN: 403,
  ERR_WRONG_SWARM: 403,
  ERR_NOT_A_MEMBER: 403,
  ERR_INVITE_USED: 409,
  ERR_SWARM_EXISTS: 409,
  ERR_INVITE_EXPIRED: 410,
  ERR_JOIN_FAILED: 502,
  ERR_PROTOCOL: 502,
  // @homecloud/sync (through @homecloud/node)
  ERR_SHARE_NOT_FOUND: 404,
  ERR_VERSION_NOT_FOUND: 404,
  ERR_SHARE_EXISTS: 409,
  ERR_LOCAL_CHANGED: 409,
  ERR_PATH_REJECTED: 400,
  ERR_DISK_FULL: 507,
  ERR_CHUNK_UNAVAILABLE: 502,
  ERR_INVALID_SNAPSHOT: 502,
  ERR_INVALID_HEAD: 502,
  ERR_SHARE_PROTOCOL: 502,
  // @homecloud/gateway
  ERR_UNAUTHENTICATED: 401,
  ERR_METHOD_NOT_ALLOWED: 405,
  ERR_REQUEST_TOO_LARGE: 413,
  ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  ERR_NOT_STARTED: 503,
  // libp2p 3 and the platform (by name)
  InvalidParametersError: 400,
  InvalidMultiaddrError: 400,
  UnsupportedProtocolError: 400,
  NoValidAddressesError: 400,
  DialDeniedError: 403,
  NotFoundError: 404,
  TimeoutError: 504,
  AbortError: 504
})

/** The status for an error, and the code reported to the client. Unknown errors are 500. */
export function httpStatusFor (err: unknown): { status: number, code: string } {
  const code = errorCode(err)
  return { status: HTTP_STATUS_BY_CODE[code] ?? 500, code }
}

function errorCode (err: unknown): string {
  if (isHomecloudError(err)) {
    return err.code
  }
  if (err instanceof Error && err.name !== 'Error' && Object.hasOwn(HTTP_STATUS_BY_CODE, err.name)) {
    return err.name
  }
  return 'ERR_INTERNAL'
}
