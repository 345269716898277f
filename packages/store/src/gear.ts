import { createHash } from 'node:crypto'
import { endianness } from 'node:os'
import { CHUNK_AVG, CHUNK_MAX, CHUNK_MIN, NORMALISATION } from './constants.js'
import { InvalidParametersError } from './errors.js'

/**
 * Content-defined chunking: FastCDC's Gear hash with normalised chunking.
 *
 * The hash at byte i is Σ GEAR[b[i-k]] << k over the last 32 bytes (32-bit
 * shifts drop older bytes), so a cut depends only on the 32 bytes before it and
 * on the min/max rules: an insert moves the cuts around it and none further on.
 */

/** The gear table: the first 4 bytes of sha256("homecloud gear " + i). Part of the format. */
export const GEAR: Int32Array = Int32Array.from({ length: 256 }, (_, i) =>
  createHash('sha256').update(`homecloud gear ${i}`).digest().readInt32BE(0))

/** Bytes in the Gear window: the hash at a byte depends on this many bytes. */
export const GEAR_WINDOW = 32

const LITTLE_ENDIAN = endianness() === 'LE'

export interface ChunkingParams {
  /** No cut before this many bytes (the rolling hash does not even look at them). */
  min: number
  /** Target size; a power of two. */
  avg: number
  /** Forced cut at this many bytes. */
  max: number
}

export const DEFAULT_CHUNKING: Readonly<ChunkingParams> = Object.freeze({ min: CHUNK_MIN, avg: CHUNK_AVG, max: CHUNK_MAX })

/** An int32 with the top `bits` bits set: the high bits of a Gear hash mix the most bytes. */
function topBits (bits: number): number {
  return bits <= 0 ? 0 : (-1 << (32 - bits)) | 0
}

/**
 * Scans buf[from, to) for the first byte whose window hash has no bit of
 * `mask` set; returns the cut just after it, or -1. `words` views the same
 * memory as `buf` (byteOffset 0) so the hot loop loads 4 bytes at a time.
 */
function scan (buf: Uint8Array, words: Uint32Array, from: number, to: number, mask: number): number {
  const g = GEAR
  let h = 0
  // prime the window with the 31 bytes before `from`
  for (let i = from - GEAR_WINDOW + 1; i < from; i++) {
    h = ((h << 1) + g[buf[i]]) | 0
  }
  let i = from
  if (LITTLE_ENDIAN) {
    while (i < to && (i & 3) !== 0) {
      h = ((h << 1) + g[buf[i]]) | 0
      if ((h & mask) === 0) return i + 1
      i++
    }
    // 8 bytes a step, one branch for all 8: a hit is located by the byte loop below
    let w = i >> 2
    const wEnd = (to >> 2) - 1
    while (w < wEnd) {
      const x = words[w]
      const y = words[w + 1]
      const h1 = ((h << 1) + g[x & 255]) | 0
      const h2 = ((h1 << 1) + g[(x >>> 8) & 255]) | 0
      const h3 = ((h2 << 1) + g[(x >>> 16) & 255]) | 0
      const h4 = ((h3 << 1) + g[x >>> 24]) | 0
      const h5 = ((h4 << 1) + g[y & 255]) | 0
      const h6 = ((h5 << 1) + g[(y >>> 8) & 255]) | 0
      const h7 = ((h6 << 1) + g[(y >>> 16) & 255]) | 0
      const h8 = ((h7 << 1) + g[y >>> 24]) | 0
      if ((h1 & mask) === 0 || (h2 & mask) === 0 || (h3 & mask) === 0 || (h4 & mask) === 0 ||
        (h5 & mask) === 0 || (h6 & mask) === 0 || (h7 & mask) === 0 || (h8 & mask) === 0) {
        break
      }
      h = h8
      w += 2
    }
    i = w << 2
  }
  for (; i < to; i++) {
    h = ((h << 1) + g[buf[i]]) | 0
    if ((h & mask) === 0) return i + 1
  }
  return -1
}

/** Finds chunk boundaries in a buffer. Stateless between calls. */
export class GearCutter {
  readonly params: Readonly<ChunkingParams>
  readonly #maskSmall: number
  readonly #maskLarge: number

  constructor (params: Partial<ChunkingParams> = {}) {
    const p = { ...DEFAULT_CHUNKING, ...params }
    const bits = Math.log2(p.avg)
    if (!Number.isInteger(bits) || !Number.isSafeInteger(p.min) || !Number.isSafeInteger(p.max) ||
      p.min < 2 * GEAR_WINDOW || p.min >= p.avg || p.avg >= p.max) {
      throw new InvalidParametersError(`bad chunking parameters min=${p.min} avg=${p.avg} max=${p.max}: need ${2 * GEAR_WINDOW} ≤ min < avg < max, avg a power of two`)
    }
    this.params = Object.freeze(p)
    this.#maskSmall = topBits(bits + NORMALISATION)
    this.#maskLarge = topBits(bits - NORMALISATION)
  }

  /**
   * End (exclusive) of the chunk that starts at `start`, given valid bytes up
   * to `end`. The caller passes at least `max` bytes unless they are the last
   * of the file. `words` must view `buf`'s memory from byte 0.
   */
  cut (buf: Uint8Array, words: Uint32Array, start: number, end: number): number {
    const { min, avg, max } = this.params
    const n = end - start
    if (n <= min) return end
    const limit = n < max ? n : max
    const normal = limit < avg ? limit : avg
    let c = scan(buf, words, start + min, start + normal, this.#maskSmall)
    if (c >= 0) return c
    c = scan(buf, words, start + normal, start + limit, this.#maskLarge)
    return c >= 0 ? c : start + limit
  }
}
