import { nodeFs, type LocalEntry } from '../src/index.js'
import { rawCid } from './helpers.js'
import type { CID } from 'multiformats/cid'

/** Chunk `i` of the crash test file: 64 KiB of a pattern that differs per chunk. */
export async function patternChunk (i: number): Promise<{ cid: CID, bytes: Uint8Array }> {
  const bytes = new Uint8Array(65536).map((_, j) => (i * 31 + j * 7) & 0xff)
  return { cid: await rawCid(bytes), bytes }
}

/** What the index would hold for the file at `path`, if there is one. */
export async function fileStat (root: string, path: string): Promise<LocalEntry | undefined> {
  try {
    const s = await nodeFs.lstat(`${root}/${path}`)
    return { path, type: 'file', size: s.size, mtime: 0, mode: 0o644, version: { d: 1 }, modifiedBy: 'd', chunks: [], local: { ino: s.ino, mtimeMs: s.mtimeMs } }
  } catch {
    return undefined
  }
}
