import { createHash, webcrypto } from 'node:crypto'
import { base32 } from 'multiformats/bases/base32'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import * as Digest from 'multiformats/hashes/digest'
import { sha256 } from 'multiformats/hashes/sha2'
import type { MultihashDigest } from 'multiformats/hashes/interface'
import { UnsupportedHashError } from './errors.js'

/**
 * sha2-256 through node:crypto's WebCrypto: it copies the bytes when called
 * (as the WebCrypto spec requires) and hashes on the libuv thread pool, so
 * chunking on the main thread and hashing run on two cores.
 */
export async function sha256Digest (bytes: Uint8Array): Promise<MultihashDigest<typeof sha256.code>> {
  const hash = await webcrypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>)
  return Digest.create(sha256.code, new Uint8Array(hash))
}

/** The CID of a chunk: CIDv1, raw, sha2-256. */
export async function chunkCid (bytes: Uint8Array): Promise<CID> {
  return CID.createV1(raw.code, await sha256Digest(bytes))
}

/** A CID of `codec` over `bytes` (DAG nodes). */
export async function blockCid (codec: number, bytes: Uint8Array): Promise<CID> {
  return CID.createV1(codec, await sha256Digest(bytes))
}

/** Throws unless the store can verify blocks addressed by `cid`. */
export function assertSupportedHash (cid: CID): void {
  if (cid.multihash.code !== sha256.code) {
    throw new UnsupportedHashError(`CID ${cid.toString()} uses multihash 0x${cid.multihash.code.toString(16)}; only sha2-256 is stored`)
  }
}

/**
 * Do `bytes` hash to `cid`'s multihash? Hashed in place: for a chunk this
 * costs less CPU than WebCrypto's copy and thread-pool round trip (sha-256 runs
 * at ~1 GB/s a core where the CPU has SHA instructions), and `get` is on the
 * serving path of every chunk.
 */
export async function matches (cid: CID, bytes: Uint8Array): Promise<boolean> {
  assertSupportedHash(cid)
  return createHash('sha256').update(bytes).digest().equals(cid.multihash.digest)
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567'

/**
 * Index key of a block: its multihash, so CIDv0/v1 and codecs of the same
 * bytes share one entry. The same text as multiformats' `base32.encode`
 * (keys on disk use it), built in one step: that encoder builds it a
 * character at a time, and a held key then costs ~1.5 KB as a chain of
 * pieces instead of ~90 B.
 */
export function blockKey (cid: CID): string {
  const bytes = cid.multihash.bytes
  const codes = Buffer.allocUnsafe(1 + Math.ceil(bytes.byteLength * 8 / 5))
  codes[0] = 0x62 // 'b', multibase's prefix for base32
  let at = 1
  let bits = 0
  let buffer = 0
  for (const byte of bytes) {
    buffer = ((buffer << 8) | byte) & 0xfff // only the bits not yet written (< 5) and this byte matter
    bits += 8
    while (bits >= 5) {
      bits -= 5
      codes[at++] = BASE32.charCodeAt((buffer >> bits) & 31)
    }
  }
  if (bits > 0) codes[at++] = BASE32.charCodeAt((buffer << (5 - bits)) & 31)
  // one step from the bytes (latin1: a character each); spreading ~57 codes as arguments cost ~15× more
  return codes.toString('latin1', 0, at)
}

/** A raw CID for an index key (for reports: the key holds no codec). */
export function keyToCid (key: string): CID {
  return CID.createV1(raw.code, Digest.decode(base32.decode(key)))
}
