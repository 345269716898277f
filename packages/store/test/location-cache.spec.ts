import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { FileReads } from '../src/file-reads.js'
import { LocationCache } from '../src/location-cache.js'
import { MemoryIndex } from '../src/index.js'
import type { FileChunkRef, FileRecord } from '../src/index.js'

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
