import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { readdir, writeFile } from 'node:fs/promises'
import { inTempDir, removeDir, tempDir } from '@homecloud/test-support'
import { LOCATION_SCAN_STEP, LevelIndex, MAX_INDEX_BATCH_CHUNKS, MAX_LOCATIONS_PER_LOOKUP, chunkCid, createLevelStore } from '../src/index.js'
import { chunkStoreCompliance } from './compliance.js'
import { TEMP_PREFIX, pseudoRandomBytes, readUnixfsFile, writeBytes } from './helpers.js'

chunkStoreCompliance('level', async () => {
  const db = await tempDir('homecloud-level-')
  return { store: await createLevelStore({ path: db }), cleanup: async () => { await removeDir(db) } }
})

describe('level store', () => {
  it('release moves recent writes from the write buffer to a table on disk; nothing is lost', async () => {
    await inTempDir(async (db) => {
      const index = await LevelIndex.open(db)
      for (let i = 0; i < 50; i++) await index.addPin(`pin-${i}`)
      const tables = async (): Promise<string[]> => (await readdir(db)).filter(name => name.endsWith('.ldb') || name.endsWith('.sst'))
      assert.deepEqual(await tables(), [], 'recent writes are only in the log and the write buffer')
      await index.release()
      assert.ok((await tables()).length > 0, 'the write buffer went to a table')
      assert.equal(await index.hasPin('pin-7'), true)
      await index.close()
      await index.release() // closed: nothing to give back, no error
    }, 'homecloud-level-')
  })

  it('keeps the index, blocks and pins across a reopen', async () => {
    await inTempDir(async (db) => {
      await inTempDir(async (files) => {
        const data = pseudoRandomBytes(3 * 1024 * 1024, 11)
        const path = join(files, 'f.bin')
        await writeBytes(path, data)
        let store = await createLevelStore({ path: db })
        const root = await store.addPath(path)
        const before = await store.stat()
        await store.close()
        store = await createLevelStore({ path: db })
        assert.deepEqual(await store.stat(), before)
        assert.equal(await store.isPinned(root), true)
        assert.ok(Buffer.from(await readUnixfsFile(store, root)).equals(data))
        await store.close()
      }, TEMP_PREFIX)
    }, 'homecloud-level-')
  })

  it('returns at most MAX_LOCATIONS_PER_LOOKUP places of one chunk, the rest once some are forgotten', async () => {
    await inTempDir(async (db) => {
      const index = await LevelIndex.open(db)
      try {
        const count = MAX_LOCATIONS_PER_LOOKUP + 6
        for (let i = 0; i < count; i++) {
          await index.setFile({ path: `/f${i}`, size: 1, mtimeNs: '1', ino: String(i), dev: '1' }, [{ key: 'same', offset: 0, length: 1 }])
        }
        const first = await index.locations('same')
        assert.equal(first.length, MAX_LOCATIONS_PER_LOOKUP)
        assert.deepEqual(first[0], { path: '/f0', offset: 0, length: 1 })
        for (const { path } of first.slice(0, 10)) await index.deleteFile(path)
        assert.equal((await index.locations('same')).length, count - 10)
        assert.deepEqual(await index.locations('other'), [])
      } finally {
        await index.close()
      }
    }, 'homecloud-level-')
  })

  it('locationsOf gives every key the places locations gives it: dense and sparse runs, short steps, many places, missing keys', async () => {
    await inTempDir(async (db) => {
      const index = await LevelIndex.open(db)
      try {
        const key = (n: number): string => `k${String(n).padStart(5, '0')}`
        // long paths: a step of LOCATION_SCAN_STEP entries outgrows LOCATION_SCAN_BYTES and stops short
        const long = `/${'d'.repeat(700)}`
        const dense = Array.from({ length: LOCATION_SCAN_STEP * 2 + 50 }, (_, i) => ({ key: key(2 * i + 100), offset: i * 10, length: 10 }))
        await index.setFile({ path: `${long}/big`, size: 1e9, mtimeNs: '1', ino: '1', dev: '1' }, dense)
        // one chunk in more files than one lookup returns
        for (let f = 0; f < MAX_LOCATIONS_PER_LOOKUP + 5; f++) {
          await index.setFile({ path: `${long}/f${f}`, size: 10, mtimeNs: '1', ino: String(f + 2), dev: '1' }, [{ key: key(301), offset: 0, length: 10 }])
        }
        await index.setFile({ path: '/far', size: 10, mtimeNs: '1', ino: '99', dev: '1' }, [{ key: key(90000), offset: 0, length: 10 }])
        const asked = [key(1), key(100), key(301), key(101), key(300), key(100), key(2000), key(1201), key(1198), key(50000), key(90000), key(90001)]
        for (let n = 102; n < 1300; n += 7) asked.push(key(n))
        const one = await Promise.all(asked.map(async k => index.locations(k)))
        assert.deepEqual(await index.locationsOf(asked), one)
        assert.equal(one[2].length, MAX_LOCATIONS_PER_LOOKUP)
        assert.ok(one.filter(p => p.length > 0).length > 50 && one.some(p => p.length === 0), 'present and missing keys both asked')
        assert.deepEqual(await index.locationsOf([]), [])
        assert.deepEqual(await index.locationsOf([key(0)]), [[]])
      } finally {
        await index.close()
      }
    }, 'homecloud-level-')
  })

  it('indexes a file of more chunks than one batch holds, and replaces it cleanly', async () => {
    await inTempDir(async (db) => {
      await inTempDir(async (files) => {
        const store = await createLevelStore({ path: db })
        const path = join(files, 'many.bin')
        const count = MAX_INDEX_BATCH_CHUNKS + 300
        const data = pseudoRandomBytes(count, 21)
        await writeFile(path, data)
        // one-byte chunks: only indexFile allows chunks this small, which makes a big chunk list cheap to test
        const cids = await Promise.all(Array.from({ length: 256 }, async (_, b) => chunkCid(new Uint8Array([b]))))
        const chunks = Array.from(data, (b, offset) => ({ cid: cids[b], offset, length: 1 }))
        await store.indexFile(path, chunks)
        let stat = await store.stat()
        assert.deepEqual([stat.files, stat.fileChunks, stat.fileBytes], [1, count, count])
        assert.deepEqual(await store.get(cids[data[count - 1]]), data.subarray(count - 1))
        // the same path again with fewer chunks: every old entry is gone
        await store.indexFile(path, chunks.slice(0, 10))
        stat = await store.stat()
        assert.deepEqual([stat.files, stat.fileChunks], [1, 10])
        assert.deepEqual((await store.verify()).bad, [])
        await store.close()
      }, TEMP_PREFIX)
    }, 'homecloud-level-')
  })
})
