import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { inTempDir } from '@homecloud/test-support'
import { base32 } from 'multiformats/bases/base32'
import { FileReads } from '../src/file-reads.js'
import { LocationCache } from '../src/location-cache.js'
import { IndexedChunkStore, MemoryIndex } from '../src/index.js'
import { TEMP_PREFIX, pseudoRandomBytes, writeBytes } from './helpers.js'
import type { FileChunkRef, FileRecord } from '../src/index.js'

/** V8's gc in this process (the test runner does not expose it). */
function exposedGc (): () => void {
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
}

function record (path: string, size = 1000): FileRecord {
  return { path, size, mtimeNs: '1', ino: '2', dev: '3' }
}

function refs (prefix: string, n: number, length = 10): FileChunkRef[] {
  return Array.from({ length: n }, (_, i) => ({ key: `${prefix}${i}`, offset: i * length, length }))
}

describe('location cache', () => {
  it('holds at most max places, dropping the oldest, and a file\'s record only while it has places', () => {
    const cache = new LocationCache(3)
    for (let i = 0; i < 5; i++) cache.set(`k${i}`, { path: `/f${i}`, offset: 0, length: 1 })
    assert.equal(cache.size, 3)
    assert.equal(cache.files, 3)
    assert.equal(cache.get('k0'), undefined)
    assert.equal(cache.get('k1'), undefined)
    assert.deepEqual(cache.get('k4'), { path: '/f4', offset: 0, length: 1 })
    cache.setRecord(record('/f2'))
    cache.setRecord(record('/nowhere'))
    assert.equal(cache.record('/f2')?.path, '/f2')
    assert.equal(cache.record('/nowhere'), undefined, 'no record without a cached place')
    cache.set('k5', { path: '/f5', offset: 0, length: 1 })
    assert.equal(cache.record('/f2'), undefined, 'the record went with the file\'s last place')
    assert.equal(cache.files, 3)
  })

  it('moves a key to its newest place and drops a file\'s places and record together', () => {
    const cache = new LocationCache(10)
    cache.set('a', { path: '/x', offset: 0, length: 5 })
    cache.set('b', { path: '/x', offset: 5, length: 5 })
    cache.setRecord(record('/x'))
    cache.set('b', { path: '/x', offset: 5, length: 5 })
    assert.equal(cache.record('/x')?.path, '/x', 'the same place again keeps the record')
    cache.set('a', { path: '/y', offset: 0, length: 5 })
    assert.deepEqual(cache.get('a'), { path: '/y', offset: 0, length: 5 })
    cache.dropPath('/x')
    assert.equal(cache.get('b'), undefined)
    assert.equal(cache.record('/x'), undefined)
    assert.deepEqual(cache.get('a'), { path: '/y', offset: 0, length: 5 }, 'another file\'s places stay')
    assert.equal(cache.size, 1)
    cache.clear()
    assert.equal(cache.size, 0)
    assert.equal(cache.files, 0)
  })
})

describe('location cache memory', () => {
  it('holds keys and paths flat: built a character at a time (base32, joins), a place costs far less than the rope', () => {
    const gc = exposedGc()
    const count = 4096
    // like blockKey (multiformats' base32 adds a character at a time) and a joined path
    const place = (i: number): [string, { path: string, offset: number, length: number }] => {
      let path = '/share'
      for (const part of ['photos', String(i % 97), `img-${i}`, 'part']) path += '/' + part
      return [base32.encode(randomBytes(34)), { path, offset: 0, length: 1 }]
    }
    const perPlace = (cache: LocationCache | Map<string, unknown>, fill: (key: string, location: { path: string, offset: number, length: number }) => void): number => {
      gc()
      const before = process.memoryUsage().heapUsed
      for (let i = 0; i < count; i++) fill(...place(i))
      gc()
      const bytes = (process.memoryUsage().heapUsed - before) / count
      assert.equal(cache.size, count)
      return bytes
    }
    const cache = new LocationCache(count)
    // each place set twice: the second set (same file, a new age) must not keep the rope either
    const flatCost = perPlace(cache, (key, location) => { cache.set(key, location); cache.set(base32.encode(base32.decode(key)), location) })
    const ropes = new Map<string, unknown>()
    const ropeCost = perPlace(ropes, (key, location) => ropes.set(key, location))
    assert.ok(flatCost < 800, `a cached place costs ${flatCost.toFixed(0)} B`)
    assert.ok(ropeCost > 2 * flatCost, `ropes kept as given cost ${ropeCost.toFixed(0)} B a place (the cache ${flatCost.toFixed(0)} B with its path index)`)
  })

  it('a store releases its cached places and open files and still serves the chunks from the index', async () => {
    await inTempDir(async (dir) => {
      const store = new IndexedChunkStore(new MemoryIndex())
      try {
        const paths = []
        for (let i = 0; i < 3; i++) {
          const path = join(dir, `f${i}.bin`)
          await writeBytes(path, pseudoRandomBytes(5000, i + 1))
          paths.push(path)
        }
        const roots = []
        for (const path of paths) roots.push(await store.addPath(path))
        assert.ok(store.cached.places >= 3, `places cached after indexing: ${store.cached.places}`)
        const before = await Promise.all(roots.map(async root => store.get(root)))
        await store.releaseCaches()
        assert.deepEqual(store.cached, { places: 0, openFiles: 0 })
        const after = await Promise.all(roots.map(async root => store.get(root)))
        assert.deepEqual(after, before)
      } finally {
        await store.close()
      }
    }, TEMP_PREFIX)
  })
})

describe('file reads: caching what was just indexed', () => {
  it('caches the first chunks of a file indexed by an uncontended change, within the bound', async () => {
    const index = new MemoryIndex()
    const reads = new FileReads(index, { maxLocations: 8, indexedChunks: 5 })
    const chunks = refs('a', 20)
    await reads.change('/a', async () => { await index.setFile(record('/a'), chunks) }, { record: record('/a'), chunks })
    assert.equal(reads.cachedLocations, 5)
    assert.deepEqual(reads.location('a4'), { path: '/a', offset: 40, length: 10 })
    assert.equal(reads.location('a5'), undefined)
    assert.equal(reads.record('/a')?.size, 1000)
    for (let i = 0; i < 3; i++) {
      const more = refs(`b${i}-`, 5)
      await reads.change(`/b${i}`, async () => { await index.setFile(record(`/b${i}`), more) }, { record: record(`/b${i}`), chunks: more })
    }
    assert.equal(reads.cachedLocations, 8, 'never more than maxLocations')
    reads.close()
    assert.equal(reads.cachedLocations, 0)
  })

  it('caches nothing for a failed change or overlapping changes of one file, and drops the file on a later change', async () => {
    const index = new MemoryIndex()
    const reads = new FileReads(index)
    const chunks = refs('c', 3)
    await assert.rejects(reads.change('/c', async () => { throw new Error('disk full') }, { record: record('/c'), chunks }), /disk full/)
    assert.equal(reads.cachedLocations, 0)

    let release = (): void => {}
    const held = new Promise<void>(resolve => { release = resolve })
    const first = reads.change('/c', async () => { await held; await index.setFile(record('/c'), chunks) }, { record: record('/c'), chunks })
    const other = refs('d', 3)
    const second = reads.change('/c', async () => { await index.setFile(record('/c', 30), other) }, { record: record('/c', 30), chunks: other })
    await second
    release()
    await first
    // which write landed last is not known here: neither is cached
    assert.equal(reads.cachedLocations, 0)
    assert.equal(reads.record('/c'), undefined)

    await reads.change('/c', async () => { await index.setFile(record('/c'), chunks) }, { record: record('/c'), chunks })
    assert.equal(reads.cachedLocations, 3)
    await reads.change('/c', async () => { await index.deleteFile('/c') })
    assert.equal(reads.cachedLocations, 0, 'a deleted file leaves nothing cached')
    reads.close()
  })
})
