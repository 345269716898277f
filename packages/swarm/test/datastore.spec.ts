import assert from 'node:assert/strict'
import { describe, it, after } from 'node:test'
import { removeDir, tempDir } from '@homecloud/test-support'
import { Level } from 'level'
import { LevelSwarmDatastore, MemorySwarmDatastore } from '../src/index.js'
import type { SwarmDatastore } from '../src/index.js'

const dirs: string[] = []
const dbs: Array<Level<string, Uint8Array>> = []

after(async () => {
  for (const db of dbs) await db.close()
  for (const dir of dirs) await removeDir(dir)
})

const implementations: Array<[string, () => Promise<SwarmDatastore>]> = [
  ['memory', async () => new MemorySwarmDatastore()],
  ['level', async () => {
    const dir = await tempDir('hc-swarm-store-')
    dirs.push(dir)
    const db = new Level<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' })
    dbs.push(db)
    return new LevelSwarmDatastore(db)
  }]
]

for (const [name, create] of implementations) {
  describe(`SwarmDatastore compliance: ${name}`, () => {
    it('gets what was put, undefined for what was not or was deleted', async () => {
      const store = await create()
      assert.equal(await store.get('swarm/x/meta'), undefined)
      await store.put('swarm/x/meta', Uint8Array.of(1, 2, 3))
      assert.deepEqual(await store.get('swarm/x/meta'), Uint8Array.of(1, 2, 3))
      await store.put('swarm/x/meta', Uint8Array.of(4))
      assert.deepEqual(await store.get('swarm/x/meta'), Uint8Array.of(4))
      await store.delete('swarm/x/meta')
      assert.equal(await store.get('swarm/x/meta'), undefined)
      await store.delete('swarm/x/never') // deleting nothing is fine
    })

    it('lists exactly the keys under a prefix, in key order', async () => {
      const store = await create()
      for (const key of ['swarm/b/entry/2', 'swarm/a/meta', 'swarm/b/entry/1', 'swarm/b/meta', 'swarmx/c', 'other']) {
        await store.put(key, new TextEncoder().encode(key))
      }
      const keys: string[] = []
      for await (const [key, value] of store.list('swarm/b/')) {
        keys.push(key)
        assert.equal(new TextDecoder().decode(value), key)
      }
      assert.deepEqual(keys, ['swarm/b/entry/1', 'swarm/b/entry/2', 'swarm/b/meta'])
      const all: string[] = []
      for await (const [key] of store.list('swarm/')) all.push(key)
      assert.equal(all.length, 4)
    })

    it('keeps a copy: mutating the buffer after put changes nothing stored', async () => {
      const store = await create()
      const value = Uint8Array.of(9, 9)
      await store.put('k', value)
      value[0] = 0
      assert.deepEqual(await store.get('k'), Uint8Array.of(9, 9))
    })
  })
}
