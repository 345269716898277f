import { open, writeFile } from 'node:fs/promises'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import * as raw from 'multiformats/codecs/raw'
import { ChunkReader, type Blocks, type FileChunk } from '../src/index.js'
import type { CID } from 'multiformats/cid'

/**
 * Deterministic pseudo-random bytes (xorshift32): the same `seed` always gives the same bytes.
 * Not test-support's `seededBytes` (mulberry32): chunker.spec pins a root CID computed from these.
 */
export function pseudoRandomBytes (size: number, seed = 1): Uint8Array {
  const words = new Uint32Array(Math.ceil(size / 4))
  let x = seed | 0 || 1
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    words[i] = x
  }
  return new Uint8Array(words.buffer, 0, size)
}

/** Prefix of the store's test folders (test-support's `tempDir` / `inTempDir`), so a leftover one is known. */
export const TEMP_PREFIX = 'homecloud-store-'

export async function writeBytes (path: string, bytes: Uint8Array): Promise<void> {
  await writeFile(path, bytes)
}

/**
 * Reads a UnixFS file back from its root with nothing but @ipld/dag-pb and
 * ipfs-unixfs: an independent reader of the DAG the store built.
 */
export async function readUnixfsFile (blocks: Pick<Blocks, 'get'>, cid: CID): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  const stack: CID[] = [cid]
  while (stack.length > 0) {
    const next = stack.pop() as CID
    const bytes = await blocks.get(next)
    if (next.code === raw.code) {
      parts.push(bytes)
      continue
    }
    const node = dagPb.decode(bytes)
    const unixfs = UnixFS.unmarshal(node.Data ?? new Uint8Array())
    if (unixfs.type !== 'file') throw new Error(`${next.toString()} is a ${unixfs.type}, not a file`)
    if (unixfs.data != null) parts.push(unixfs.data)
    for (let i = node.Links.length - 1; i >= 0; i--) stack.push(node.Links[i].Hash)
  }
  return concat(parts)
}

export function concat (parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

/** Names and CIDs of a UnixFS directory's entries. */
export async function readUnixfsDirectory (blocks: Pick<Blocks, 'get'>, cid: CID): Promise<Array<{ name: string, cid: CID }>> {
  const node = dagPb.decode(await blocks.get(cid))
  const unixfs = UnixFS.unmarshal(node.Data ?? new Uint8Array())
  if (unixfs.type !== 'directory') throw new Error(`${cid.toString()} is a ${unixfs.type}`)
  return node.Links.map(l => ({ name: l.Name ?? '', cid: l.Hash }))
}

/** A file's chunks as the streaming reader cuts them. */
export async function streamedChunks (path: string, reader = new ChunkReader()): Promise<FileChunk[]> {
  const handle = await open(path)
  try {
    const chunks: FileChunk[] = []
    for await (const chunk of reader.chunks(handle)) chunks.push(chunk)
    return chunks
  } finally {
    await handle.close()
  }
}
