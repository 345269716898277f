import assert from 'node:assert/strict'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { LevelShareKv, kvKey, SHARE_DB_CACHE_BYTES } from '../src/share-kv.js'
import { inTempDir } from './helpers.js'

describe('LevelShareKv.release', () => {
  it('moves recent writes from the write buffer to a table on disk; nothing is lost, before or after a reopen', async () => {
    await inTempDir(async (dir) => {
      const path = join(dir, 'shares')
      let kv = await LevelShareKv.open(path)
      const ops = Array.from({ length: 200 }, (_, i) => ({ type: 'put' as const, key: kvKey('s', String(i)), value: new Uint8Array(100).fill(i % 256) }))
      await kv.batch(ops)
      const tables = async (): Promise<string[]> => (await readdir(path)).filter(name => name.endsWith('.ldb') || name.endsWith('.sst'))
      assert.deepEqual(await tables(), [], 'recent writes are only in the log and the write buffer')
      await kv.release()
      assert.ok((await tables()).length > 0, 'the write buffer went to a table')
      assert.deepEqual(new Uint8Array(await kv.get(kvKey('s', '7')) ?? []), new Uint8Array(100).fill(7))
      await kv.close()
      await kv.release() // closed: nothing to give back, no error
      kv = await LevelShareKv.open(path)
      let n = 0
      for await (const entry of kv.entries(kvKey('s', ''))) { assert.equal(entry[1].byteLength, 100); n++ }
      assert.equal(n, 200)
      await kv.close()
    })
  })
})

describe('LevelShareKv block cache', () => {
  it('holds at most SHARE_DB_CACHE_BYTES of blocks read, however much is read', async () => {
    await inTempDir(async (dir) => {
      const path = join(dir, 'shares')
      let kv = await LevelShareKv.open(path)
      // 8 MiB, the default cache's size, of values that compress like snapshot pages do: LevelDB
      // caches the blocks it decompressed (an uncompressed block is read from its mmap, uncached)
      const value = (b: number, i: number): Uint8Array => new TextEncoder().encode(`page ${b}-${i} `.repeat(500).slice(0, 4096))
      for (let b = 0; b < 8; b++) {
        await kv.batch(Array.from({ length: 256 }, (_, i) => ({ type: 'put' as const, key: kvKey('s', `${b}-${i}`), value: value(b, i) })))
      }
      await kv.close()
      kv = await LevelShareKv.open(path)
      for (let b = 0; b < 8; b++) for (let i = 0; i < 256; i++) assert.deepEqual(new Uint8Array(await kv.get(kvKey('s', `${b}-${i}`)) ?? []), value(b, i))
      const held = await kv.memoryUsage()
      assert.ok(held > 0 && held <= SHARE_DB_CACHE_BYTES + 256 * 1024, `LevelDB holds ${held} bytes after reading 8 MiB`)
      await kv.close()
    })
  })
})
