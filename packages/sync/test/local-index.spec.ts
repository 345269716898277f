import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { LocalIndex } from '../src/local-index.js'
import { MemoryShareKv } from '../src/share-kv.js'
import { ShareRecords } from '../src/share-state.js'
import { rawCid } from './helpers.js'
import type { LocalEntry } from '../src/entry.js'

const A = '12D3KooWAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'
const base = { mtime: 1_764_000_000_123, mode: 0o644, version: { [A]: 2 }, modifiedBy: A }

describe('LocalIndex (entries held packed)', () => {
  it('gives back every field as set, after a reload too, and counts chunks across replace and delete', async () => {
    const records = new ShareRecords(new MemoryShareKv())
    const index = await LocalIndex.load('s', records)
    const big = await Promise.all(Array.from({ length: 70 }, async (_, i) => ({ cid: await rawCid(new TextEncoder().encode(`big ${i}`)), length: 3_000_000_000 + i })))
    const entries: LocalEntry[] = [
      { ...base, path: 'big.bin', type: 'file', size: big.reduce((s, c) => s + c.length, 0), chunks: big, local: { ino: 7, mtimeMs: 1_764_000_000_123.375 } },
      { ...base, path: 'empty', type: 'file', size: 0, chunks: [] },
      { ...base, path: 'link', type: 'symlink', size: 0, target: '../x', mode: 0o777 },
      { ...base, path: 'gone', type: 'file', size: 0, deleted: true, version: { [A]: 3, other: 1 } }
    ]
    await index.set(entries)
    for (const e of entries) assert.deepEqual(index.get(e.path), e)
    const { local: _local, ...shared } = entries[0]
    assert.deepEqual([...index.shareEntries()].find(e => e.path === 'big.bin'), shared, 'a snapshot entry has no local stat')
    const reloaded = await LocalIndex.load('s', records)
    const byPath = (a: LocalEntry, b: LocalEntry): number => a.path < b.path ? -1 : 1
    assert.deepEqual([...reloaded.values()].sort(byPath), [...index.values()].sort(byPath))
    assert.equal(index.hasChunk(big[69].cid), true)
    await index.set([{ ...base, path: 'copy.bin', type: 'file', size: big[0].length, chunks: [big[0]] }])
    await index.set([{ ...base, path: 'big.bin', type: 'file', size: 0, deleted: true }])
    assert.equal(index.hasChunk(big[69].cid), false, 'the replaced file no longer holds its chunks')
    assert.equal(index.hasChunk(big[0].cid), true, 'still held by the copy')
    await index.delete(['copy.bin'])
    assert.equal(index.hasChunk(big[0].cid), false)
    assert.equal(index.get('copy.bin'), undefined)
  })
})
