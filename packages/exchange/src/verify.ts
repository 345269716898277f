/**
 * Block verification: every block received is hashed before it is stored (D5).
 */
import { createHash } from 'node:crypto'
import type { CID } from 'multiformats/cid'
import type { Block } from './wire.js'

/** Multihash code of sha2-256, the only hash chunks and DAG nodes use here. */
export const SHA2_256 = 0x12

/** Can a block fetched for `cid` be verified (sha2-256, 32-byte digest)? */
export function isVerifiable (cid: CID): boolean {
  return cid.multihash.code === SHA2_256 && cid.multihash.size === 32
}

/**
 * Does `bytes` (one array or the pieces a block arrived in) hash to the digest
 * in `cid`? node:crypto on the calling thread: measured here, WebCrypto's
 * "async" digest cost the event loop more (it copies the input) than hashing
 * in place.
 */
export function blockMatches (cid: CID, bytes: Block): boolean {
  if (!isVerifiable(cid)) {
    return false
  }
  const hash = createHash('sha256')
  if (bytes instanceof Uint8Array) {
    hash.update(bytes)
  } else {
    for (const piece of bytes) {
      hash.update(piece)
    }
  }
  return hash.digest().equals(cid.multihash.digest)
}
