import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { createLevelStore } from '../src/index.js'
import { chunkStoreCompliance } from './compliance.js'
import { pseudoRandomBytes, readUnixfsFile, tempDir, writeBytes } from './helpers.js'

chunkStoreCompliance('level', async () => {
  const db = await tempDir('homecloud-level-')
  return { store: await createLevelStore({ path: db.dir }), cleanup: db.remove }
})

describe('level store', () => {
  it('keeps the index, blocks and pins across a reopen', async () => {
    const db = await tempDir('homecloud-level-')
    const files = await tempDir()
    try {
      const data = pseudoRandomBytes(3 * 1024 * 1024, 11)
      const path = join(files.dir, 'f.bin')
      await writeBytes(path, data)
      let store = await createLevelStore({ path: db.dir })
      const root = await store.addPath(path)
      const before = await store.stat()
      await store.close()
      store = await createLevelStore({ path: db.dir })
      assert.deepEqual(await store.stat(), before)
      assert.equal(await store.isPinned(root), true)
      assert.ok(Buffer.from(await readUnixfsFile(store, root)).equals(data))
      await store.close()
    } finally {
      await db.remove()
      await files.remove()
    }
  })
})
