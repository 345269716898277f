import { createHash } from 'node:crypto'

/** sha2-256 of each (offset, length) range of `bytes`: 32 bytes per range, in order. */
export function hashRanges (bytes: Uint8Array, ranges: number[]): Uint8Array<ArrayBuffer> {
  const digests = new Uint8Array(16 * ranges.length)
  for (let i = 0; i < ranges.length; i += 2) {
    const offset = ranges[i]
    digests.set(createHash('sha256').update(bytes.subarray(offset, offset + ranges[i + 1])).digest(), 16 * i)
  }
  return digests
}
