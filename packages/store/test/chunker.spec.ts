import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { inTempDir } from '@homecloud/test-support'
import { CHUNK_MAX, CHUNK_MIN, ChunkReader, GearCutter, chunkCid, createMemoryStore } from '../src/index.js'
import { GEAR, type ChunkingParams } from '../src/gear.js'
import { MAX_HASH_SHARE } from '../src/chunker.js'
import { TEMP_PREFIX, concat, pseudoRandomBytes, streamedChunks, writeBytes } from './helpers.js'

/**
 * The chunking rule written plainly, byte by byte: cut after the first byte at
 * or past min whose 32-byte window hash has none of the mask's top bits set
 * (mask avg bits + 2 before avg, avg bits - 2 after), else at max or the end.
 */
function naiveCut (data: Uint8Array, start: number, end: number, p: ChunkingParams): number {
  const bits = Math.log2(p.avg)
  const top = (k: number): number => (-1 << (32 - k)) | 0
  if (end - start <= p.min) return end
  const limit = Math.min(end, start + p.max)
  for (let i = start + p.min; i < limit; i++) {
    let h = 0
    for (let j = i - 31; j <= i; j++) h = ((h << 1) + GEAR[data[j]]) | 0
    if ((h & top(i < start + p.avg ? bits + 2 : bits - 2)) === 0) return i + 1
  }
  return limit
}

/** `data` as `GearCutter.cut` takes it: copied into a buffer padded by 8 bytes, and its 32-bit words. */
function cutterInput (data: Uint8Array): { copy: Uint8Array, words: Uint32Array } {
  const copy = new Uint8Array(new ArrayBuffer(data.length + 8))
  copy.set(data)
  return { copy, words: new Uint32Array(copy.buffer, 0, copy.buffer.byteLength >> 2) }
}

/** Cut points over a whole buffer in memory: the reference the streaming reader must match. */
function referenceCuts (data: Uint8Array): number[] {
  const { copy, words } = cutterInput(data)
  const cutter = new GearCutter()
  const cuts: number[] = []
  for (let start = 0; start < data.length;) {
    start = cutter.cut(copy, words, start, data.length)
    cuts.push(start)
  }
  return cuts
}

/** Runs `fn` on a temp file of `size` pseudo-random bytes from `seed`; its folder goes afterwards. */
async function withRandomFile (size: number, seed: number, fn: (path: string, data: Uint8Array) => Promise<void>): Promise<void> {
  await inTempDir(async (dir) => {
    const data = pseudoRandomBytes(size, seed)
    const path = join(dir, 'f.bin')
    await writeBytes(path, data)
    await fn(path, data)
  }, TEMP_PREFIX)
}

describe('content-defined chunking', () => {
  it('rejects bad parameters', () => {
    for (const p of [{ min: 16 }, { avg: 300_000 }, { min: 512 * 1024, avg: 256 * 1024 }, { max: 128 * 1024 }]) {
      assert.throws(() => new GearCutter(p), { code: 'ERR_INVALID_PARAMETERS' })
    }
  })

  it('cuts where the plain byte-by-byte rule does (the 8-byte fast path changes nothing)', () => {
    const p = { min: 1024, avg: 4096, max: 16384 }
    const data = pseudoRandomBytes(2 * 1024 * 1024 + 3, 21)
    const { copy, words } = cutterInput(data)
    const cutter = new GearCutter(p)
    let cuts = 0
    for (let start = 0; start < data.length; cuts++) {
      const cut = cutter.cut(copy, words, start, data.length)
      assert.equal(cut, naiveCut(data, start, data.length, p), `chunk starting at ${start}`)
      start = cut
    }
    assert.ok(cuts > 200)
  })

  it('streams the same cuts as a whole-buffer pass, whatever the buffer size; sizes within bounds', async () => {
    await withRandomFile(10 * 1024 * 1024 + 7, 3, async (path, data) => {
      const expected = referenceCuts(data)
      for (const reader of [new ChunkReader(), new ChunkReader({ bufferSize: 0 })]) {
        const chunks = await streamedChunks(path, reader)
        assert.deepEqual(chunks.map(c => c.offset + c.length), expected)
        let at = 0
        for (const [i, c] of chunks.entries()) {
          assert.equal(c.offset, at)
          at += c.length
          assert.ok(c.length <= CHUNK_MAX)
          if (i < chunks.length - 1) assert.ok(c.length > CHUNK_MIN)
        }
        const last = chunks[chunks.length - 1]
        assert.equal(last.cid.toString(), (await chunkCid(data.subarray(last.offset))).toString())
      }
    })
  })

  it('hashes the same chunks whatever share of each batch this thread takes; a balanced share stays within its bounds', async () => {
    await withRandomFile(17 * 1024 * 1024 + 5, 6, async (path, data) => {
      const expected = await Promise.all(referenceCuts(data).map(async (end, i, ends) => (await chunkCid(data.subarray(i === 0 ? 0 : ends[i - 1], end))).toString()))
      const balanced = new ChunkReader({ hashShare: 0.9 })
      assert.equal(balanced.hashShare, MAX_HASH_SHARE, 'a share past the bound is clamped')
      for (const reader of [new ChunkReader({ hashShare: 0, balanceHashShare: false }), new ChunkReader({ hashShare: MAX_HASH_SHARE, balanceHashShare: false }), balanced, balanced]) {
        const chunks = await streamedChunks(path, reader)
        assert.deepEqual(chunks.map(c => c.cid.toString()), expected)
        assert.ok(reader.hashShare >= 0 && reader.hashShare <= MAX_HASH_SHARE, `share ${reader.hashShare}`)
      }
    })
  })

  it('keeps later chunks when 10 bytes are inserted near the start', async () => {
    await inTempDir(async (dir) => {
      const data = pseudoRandomBytes(16 * 1024 * 1024, 4)
      const edited = concat([data.subarray(0, 1000), pseudoRandomBytes(10, 5), data.subarray(1000)])
      await writeBytes(join(dir, 'a'), data)
      await writeBytes(join(dir, 'b'), edited)
      const before = await streamedChunks(join(dir, 'a'))
      const after = await streamedChunks(join(dir, 'b'))
      const known = new Set(before.map(c => c.cid.toString()))
      const fresh = after.filter(c => !known.has(c.cid.toString()))
      assert.ok(before.length > 30)
      assert.ok(fresh.length <= 2, `${fresh.length} of ${after.length} chunks changed`)
      assert.ok(fresh.reduce((n, c) => n + c.length, 0) <= 2 * CHUNK_MAX)
    }, TEMP_PREFIX)
  })

  it('is a stable format: the same bytes give the same root CID forever', async () => {
    await withRandomFile(3 * 1024 * 1024, 1, async (path) => {
      const store = createMemoryStore()
      try {
        // changing the gear table, masks or sizes changes this CID: that is a format change
        assert.equal((await store.addPath(path)).toString(), ROOT_OF_3_MIB)
      } finally {
        await store.close()
      }
    })
  })
})

const ROOT_OF_3_MIB = 'bafybeici3ccypjx5kg45oy53cews6tn4iohxfyo2r5dz5v5wha2o74hvzi'
