import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import type { ChunkStore } from '@homecloud/store'
import { applyStep, type ChunkReader } from '../src/apply.js'
import { chunkOffsets, type LocalEntry, type ShareEntry } from '../src/entry.js'
import { nodeFs } from '../src/fs.js'
import { rawCid, removeDir, shareWithHistory, tempDir } from './helpers.js'
import type { PlannedChunk } from '../src/plan.js'

const CHUNK = 1024
const CHUNKS = 8

/** Fixed-size chunks of `bytes` (the test's stand-in for the store's CDC). */
async function chunksOf (bytes: Uint8Array): Promise<PlannedChunk[]> {
  const out: PlannedChunk[] = []
  for (let offset = 0; offset < bytes.byteLength; offset += CHUNK) {
    const part = bytes.subarray(offset, offset + CHUNK)
    out.push({ cid: await rawCid(part), offset, length: part.byteLength })
  }
  return out
}

function entryOf (chunks: PlannedChunk[], version: number): ShareEntry {
  return { path: 'big.bin', type: 'file', size: CHUNK * CHUNKS, mtime: 1_700_000_000_000 + version, mode: 0o644, version: { peer: version }, modifiedBy: 'peer', chunks: chunks.map(c => ({ cid: c.cid, length: c.length })) }
}

/** The file's chunks served from the file in place, as the scan and apply leave them. */
async function indexInStore (store: ChunkStore, root: string, entry: ShareEntry): Promise<void> {
  const offsets = chunkOffsets(entry.chunks ?? [])
  await store.indexFile(join(root, entry.path), (entry.chunks ?? []).map((c, i) => ({ cid: c.cid, offset: offsets[i], length: c.length })))
}

describe('history keeps only what a replacement loses', () => {
  it('a one-chunk change stores about one chunk; every kept version restores byte-exact, also after GC and a delete', async () => {
    const { root, store, history, close } = await shareWithHistory()
    try {
      const v1 = new Uint8Array(randomBytes(CHUNK * CHUNKS))
      await writeFile(join(root, 'big.bin'), v1)
      const st = await nodeFs.lstat(join(root, 'big.bin'))
      let current: LocalEntry = { ...entryOf(await chunksOf(v1), 1), local: { ino: st.ino, mtimeMs: st.mtimeMs } }
      await indexInStore(store, root, current)
      const blockBytes = async (): Promise<number> => (await store.stat()).blockBytes

      /** A remote edit flipping one byte: unchanged chunks are copied from the live file, the new one comes from `reader`. */
      const flip = async (bytes: Uint8Array, at: number, version: number): Promise<Uint8Array> => {
        const next = bytes.slice()
        next[at] ^= 0xff
        const chunks = await chunksOf(next)
        const changed = new Map<string, Uint8Array>()
        const planned = chunks.map(c => {
          if (c.offset === at - (at % CHUNK)) {
            changed.set(c.cid.toString(), next.slice(c.offset, c.offset + c.length))
            return c
          }
          return { ...c, source: { path: 'big.bin', offset: c.offset, length: c.length } }
        })
        const reader: ChunkReader = { get: async (cid) => changed.get(cid.toString()) }
        const entry = entryOf(chunks, version)
        current = await applyStep({ action: 'write-file', path: 'big.bin', entry, chunks: planned, expect: current }, {
          fs: nodeFs, root, reader, beforeReplace: async (old, n, o) => history.keep(old, 'replaced', n, o)
        })
        await indexInStore(store, root, current)
        return next
      }

      const restored = async (version: number): Promise<Uint8Array> => {
        const { entry } = await history.entry('big.bin', version)
        const out = await tempDir()
        const offsets = chunkOffsets(entry.chunks ?? [])
        const chunks = (entry.chunks ?? []).map((c, i) => ({ cid: c.cid, offset: offsets[i], length: c.length }))
        const reader: ChunkReader = { get: async (cid, o) => store.get(cid, o).catch(() => undefined) }
        await applyStep({ action: 'write-file', path: 'out', entry: { ...entry, path: 'out' }, chunks }, { fs: nodeFs, root: out, reader })
        try {
          return new Uint8Array(await readFile(join(out, 'out')))
        } finally {
          await removeDir(out)
        }
      }

      const before = await blockBytes()
      const v2 = await flip(v1, 3 * CHUNK + 17, 2)
      const grew = await blockBytes() - before
      assert.ok(grew >= CHUNK && grew < 2 * CHUNK, `one lost chunk (+ a small snapshot block) went to the block store, not the file: grew ${grew}`)
      const [kept1] = history.list('big.bin')
      assert.deepEqual(await restored(kept1.version), v1)

      // the second replacement loses chunk 6, which version 1 shares: it moves into the block store now
      const mid = await blockBytes()
      const v3 = await flip(v2, 6 * CHUNK + 5, 3)
      const grew2 = await blockBytes() - mid
      assert.ok(grew2 >= CHUNK && grew2 < 2 * CHUNK, `again about one chunk: grew ${grew2}`)
      const [kept2] = history.list('big.bin')
      assert.notEqual(kept2.version, kept1.version)
      assert.deepEqual(await restored(kept1.version), v1)
      assert.deepEqual(await restored(kept2.version), v2)

      // the pins keep the block-store chunks through GC
      await store.gc()
      assert.deepEqual(await restored(kept1.version), v1)
      assert.deepEqual(await restored(kept2.version), v2)

      // deleting the live file keeps all it held: every version still restores without it
      const deleted = await applyStep({ action: 'delete', path: 'big.bin', entry: { ...entryOf([], 4), deleted: true }, expect: current }, {
        fs: nodeFs, root, reader: { get: async () => undefined }, beforeReplace: async (old, n, o) => history.keep(old, 'deleted', n, o)
      })
      assert.equal(deleted.deleted, true)
      await store.gc()
      const [kept3] = history.list('big.bin')
      assert.equal(kept3.reason, 'deleted')
      assert.deepEqual(await restored(kept1.version), v1)
      assert.deepEqual(await restored(kept2.version), v2)
      assert.deepEqual(await restored(kept3.version), v3)
    } finally {
      await close()
    }
  })
})
