import { HomecloudError, NotFoundError } from '@homecloud/interface'
import type { CID } from 'multiformats/cid'

export {
  AbortError,
  HomecloudError,
  IntegrityError,
  InvalidParametersError,
  LimitExceededError,
  NotFoundError
} from '@homecloud/interface'

/**
 * The store has no valid copy of a block. `cause` says why when a copy existed
 * but failed verification (its file changed on disk or hashed wrong).
 */
export class BlockNotFoundError extends NotFoundError {
  readonly cid: CID

  constructor (cid: CID, options?: ErrorOptions) {
    super(`block ${cid.toString()} is not in the store`, options)
    this.name = 'BlockNotFoundError'
    this.cid = cid
  }
}

/** A file changed on disk since it was indexed, or while it was being read. */
export class FileChangedError extends HomecloudError {
  static readonly code = 'ERR_FILE_CHANGED'
  readonly path: string

  constructor (path: string, message = `file ${path} changed on disk`, options?: ErrorOptions) {
    super(message, FileChangedError.code, options)
    this.name = 'FileChangedError'
    this.path = path
  }
}

/** Only sha2-256 multihashes are stored. */
export class UnsupportedHashError extends HomecloudError {
  static readonly code = 'ERR_UNSUPPORTED_HASH'

  constructor (message: string, options?: ErrorOptions) {
    super(message, UnsupportedHashError.code, options)
    this.name = 'UnsupportedHashError'
  }
}

/** The store was used after `close()`. */
export class StoreClosedError extends HomecloudError {
  static readonly code = 'ERR_STORE_CLOSED'

  constructor (message = 'the store is closed', options?: ErrorOptions) {
    super(message, StoreClosedError.code, options)
    this.name = 'StoreClosedError'
  }
}
