import assert from 'node:assert/strict'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { inTempDir } from '@homecloud/test-support'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { exporter, recursive } from 'ipfs-unixfs-exporter'
import { importer, type ImportCandidate } from 'ipfs-unixfs-importer'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { CHUNK_MAX, GearCutter, chunkCid, createMemoryStore, type ChunkStore } from '../src/index.js'
import { buildFile } from '../src/unixfs.js'
import { TEMP_PREFIX, concat, pseudoRandomBytes, writeBytes } from './helpers.js'
import type { CID } from 'multiformats/cid'

/** ipfs-unixfs-importer's chunker interface over our Gear cuts. */
function gearChunker () {
  return async function * (source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    const parts: Uint8Array[] = []
    for await (const part of source) parts.push(part)
    const data = concat([...parts, new Uint8Array(8)])
    const words = new Uint32Array(data.buffer, 0, data.length >> 2)
    const cutter = new GearCutter()
    const size = data.length - 8
    // like the importer's own chunkers: an empty file is one empty chunk
    if (size === 0) yield new Uint8Array(0)
    for (let start = 0; start < size;) {
      const cut = cutter.cut(data, words, start, size)
      yield data.slice(start, cut)
      start = cut
    }
  }
}

const IMPORTER_OPTIONS = { cidVersion: 1 as const, rawLeaves: true, layout: balanced({ maxChildrenPerNode: 174 }) }

/** The store as the exporter's blockstore (interface-blockstore streams a block). */
function asBlockstore (store: ChunkStore) {
  return { get: async function * (cid: CID) { yield await store.get(cid) } }
}

describe('UnixFS interop', () => {
  it('builds the same tree as ipfs-unixfs-importer given the same chunks', async () => {
    await inTempDir(async (files) => {
      const store = createMemoryStore()
      try {
        const tree = join(files, 'tree')
        const contents: Record<string, Uint8Array> = {
          'a.txt': new TextEncoder().encode('hello'),
          'b.bin': pseudoRandomBytes(2 * CHUNK_MAX + 5, 8),
          'sub/c.bin': pseudoRandomBytes(70_000, 9),
          'sub/deeper/zero': new Uint8Array(0)
        }
        await mkdir(join(tree, 'sub', 'deeper'), { recursive: true })
        await mkdir(join(tree, 'empty'))
        for (const [name, bytes] of Object.entries(contents)) await writeBytes(join(tree, name), bytes)
        const ours = await store.addPath(tree)

        const candidates: ImportCandidate[] = [
          ...Object.entries(contents).map(([name, content]) => ({ path: `tree/${name}`, content })),
          { path: 'tree/empty' }
        ]
        let theirs: CID | undefined
        for await (const entry of importer(candidates, new MemoryBlockstore(), { ...IMPORTER_OPTIONS, chunker: gearChunker() })) {
          if (entry.path === 'tree') theirs = entry.cid
        }
        assert.equal(ours.toString(), theirs?.toString())
      } finally {
        await store.close()
      }
    }, TEMP_PREFIX)
  })

  it('lays out files of more than 174 chunks like the importer (balanced, 174 links)', async () => {
    const pieces = Array.from({ length: 175 * 3 + 1 }, (_, i) => pseudoRandomBytes(100, i + 1))
    const blocks = new MemoryBlockstore()
    const ours = await buildFile(await Promise.all(pieces.map(async p => ({ cid: await chunkCid(p), length: p.length }))), async () => {})
    const chunker = async function * (source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
      for await (const _ of source) { /* drain */ }
      yield * pieces
    }
    let theirs: { cid: CID, size: bigint } | undefined
    for await (const entry of importer([{ content: concat(pieces) }], blocks, { ...IMPORTER_OPTIONS, chunker })) theirs = entry
    assert.equal(ours.cid.toString(), theirs?.cid.toString())
  })

  it('a third-party reader (ipfs-unixfs-exporter) walks the tree out of the store', async () => {
    await inTempDir(async (files) => {
      const store = createMemoryStore()
      try {
        const tree = join(files, 'tree')
        await mkdir(join(tree, 'sub'), { recursive: true })
        const big = pseudoRandomBytes(3 * CHUNK_MAX + 11, 12)
        await writeBytes(join(tree, 'sub', 'big.bin'), big)
        await writeBytes(join(tree, 'small.txt'), new TextEncoder().encode('small'))
        const root = await store.addPath(tree)
        const found = new Map<string, Uint8Array>()
        for await (const entry of recursive(root, asBlockstore(store))) {
          const node = await exporter(entry.cid, asBlockstore(store))
          if (node.type === 'file' || node.type === 'raw') {
            const parts: Uint8Array[] = []
            for await (const part of node.content()) parts.push(part)
            found.set(entry.path, concat(parts))
          }
        }
        assert.deepEqual([...found.keys()].sort(), [`${root.toString()}/small.txt`, `${root.toString()}/sub/big.bin`])
        assert.ok(Buffer.from(found.get(`${root.toString()}/sub/big.bin`) as Uint8Array).equals(big))
        const dir = await exporter(root, asBlockstore(store))
        assert.equal(dir.type, 'directory')
      } finally {
        await store.close()
      }
    }, TEMP_PREFIX)
  })
})
