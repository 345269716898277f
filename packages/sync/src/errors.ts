import { HomecloudError } from '@homecloud/interface'

export {
  AbortError,
  HomecloudError,
  IntegrityError,
  InvalidParametersError,
  LimitExceededError,
  NotFoundError
} from '@homecloud/interface'

/** Why a share-relative path was refused; stable, for status and tests. */
export type PathRejectReason =
  | 'empty'
  | 'not-a-string'
  | 'absolute'
  | 'drive-letter'
  | 'backslash'
  | 'empty-segment'
  | 'dot-segment'
  | 'control-char'
  | 'invalid-unicode'
  | 'invalid-char'
  | 'trailing-dot-or-space'
  | 'reserved-name'
  | 'internal-name'
  | 'name-too-long'
  | 'path-too-long'
  | 'too-deep'
  | 'collision'
  | 'symlinked-parent'
  | 'parent-not-directory'

/**
 * A path from a peer (or on disk) that Home Cloud will not read or write.
 * Only that entry fails; nothing was changed.
 */
export class PathRejectedError extends HomecloudError {
  static readonly code = 'ERR_PATH_REJECTED'
  readonly path: string
  readonly reason: PathRejectReason

  constructor (path: string, reason: PathRejectReason, detail: string, options?: ErrorOptions) {
    super(`path ${JSON.stringify(path)} rejected (${reason}): ${detail}`, PathRejectedError.code, options)
    this.name = 'PathRejectedError'
    this.path = path
    this.reason = reason
  }
}

/**
 * Writing would leave less free space than the reserve: the share pauses.
 * The target file and the index are untouched.
 */
export class DiskFullError extends HomecloudError {
  static readonly code = 'ERR_DISK_FULL'
  readonly freeBytes: number
  readonly neededBytes: number
  readonly reserveBytes: number

  constructor (message: string, init: { freeBytes: number, neededBytes: number, reserveBytes: number }, options?: ErrorOptions) {
    super(message, DiskFullError.code, options)
    this.name = 'DiskFullError'
    this.freeBytes = init.freeBytes
    this.neededBytes = init.neededBytes
    this.reserveBytes = init.reserveBytes
  }
}

/**
 * The file on disk is not the version the index (and so the plan) knows:
 * the user changed it. Nothing was overwritten; a rescan picks the change up.
 */
export class LocalChangedError extends HomecloudError {
  static readonly code = 'ERR_LOCAL_CHANGED'
  readonly path: string

  constructor (path: string, detail: string, options?: ErrorOptions) {
    super(`${path} changed on disk (${detail}); not overwritten`, LocalChangedError.code, options)
    this.name = 'LocalChangedError'
    this.path = path
  }
}

/** A chunk needed to write a file is neither in a local file, nor readable, nor fetchable. */
export class ChunkUnavailableError extends HomecloudError {
  static readonly code = 'ERR_CHUNK_UNAVAILABLE'

  constructor (message: string, options?: ErrorOptions) {
    super(message, ChunkUnavailableError.code, options)
    this.name = 'ChunkUnavailableError'
  }
}

/** Bytes that are not a valid snapshot block (wrong shape, unsorted, bad CID). */
export class InvalidSnapshotError extends HomecloudError {
  static readonly code = 'ERR_INVALID_SNAPSHOT'

  constructor (message: string, options?: ErrorOptions) {
    super(message, InvalidSnapshotError.code, options)
    this.name = 'InvalidSnapshotError'
  }
}

export type InvalidHeadReason = 'malformed' | 'too-large' | 'bad-signature' | 'wrong-device' | 'wrong-share' | 'stale-seq'

/** A head that fails verification: forged, replayed, for another share, or malformed. */
export class InvalidHeadError extends HomecloudError {
  static readonly code = 'ERR_INVALID_HEAD'
  readonly reason: InvalidHeadReason

  constructor (reason: InvalidHeadReason, detail: string, options?: ErrorOptions) {
    super(`invalid head (${reason}): ${detail}`, InvalidHeadError.code, options)
    this.name = 'InvalidHeadError'
    this.reason = reason
  }
}

/** A scanned entry that is skipped: unsupported type, unreadable, over a cap, changed while hashed. */
export class ScanEntryError extends HomecloudError {
  static readonly code = 'ERR_SCAN_ENTRY'
  readonly path: string

  constructor (path: string, detail: string, options?: ErrorOptions) {
    super(`${path}: ${detail}`, ScanEntryError.code, options)
    this.name = 'ScanEntryError'
    this.path = path
  }
}

/** No share (or offer) by that id or name on this device. */
export class ShareNotFoundError extends HomecloudError {
  static readonly code = 'ERR_SHARE_NOT_FOUND'

  constructor (message: string, options?: ErrorOptions) {
    super(message, ShareNotFoundError.code, options)
    this.name = 'ShareNotFoundError'
  }
}

/** The folder is already shared, or lies inside (or around) another share. */
export class ShareExistsError extends HomecloudError {
  static readonly code = 'ERR_SHARE_EXISTS'

  constructor (message: string, options?: ErrorOptions) {
    super(message, ShareExistsError.code, options)
    this.name = 'ShareExistsError'
  }
}

/** A share protocol message that is malformed, oversize or unexpected; that stream is reset. */
export class ShareProtocolError extends HomecloudError {
  static readonly code = 'ERR_SHARE_PROTOCOL'

  constructor (message: string, options?: ErrorOptions) {
    super(message, ShareProtocolError.code, options)
    this.name = 'ShareProtocolError'
  }
}

/** The version asked for is not in the share's history. */
export class VersionNotFoundError extends HomecloudError {
  static readonly code = 'ERR_VERSION_NOT_FOUND'

  constructor (message: string, options?: ErrorOptions) {
    super(message, VersionNotFoundError.code, options)
    this.name = 'VersionNotFoundError'
  }
}

/** Our errors carry a stable `code`; libp2p's and Node's name themselves (`TimeoutError`, `DialError`…). */
export function errorCode (err: Error): string {
  // a DOMException's `code` is a legacy number (23 for a timeout): only a string code is ours
  const code = (err as { code?: unknown }).code
  if (typeof code === 'string') return code
  return err.name !== '' && err.name !== 'Error' ? err.name : 'ERR_UNKNOWN'
}
