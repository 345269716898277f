import { patternChunk } from './crash-data.js'

/** What each file of the batch crash test holds before the batch. */
export const crashOld = new Uint8Array(1000).fill(9)

/** The new version of file `i` of the batch crash test: two 64 KiB pattern chunks. */
export async function crashFile (i: number): Promise<Uint8Array> {
  const out = new Uint8Array(2 * 65536)
  out.set((await patternChunk(2 * i)).bytes, 0)
  out.set((await patternChunk(2 * i + 1)).bytes, 65536)
  return out
}
