import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { LocalIndex } from '../src/local-index.js'
import { encodeSnapshot } from '../src/snapshot.js'
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
    // the chunk list is rebuilt when first read (a version check never reads it), then it is a plain property
    const got = index.get('big.bin') as LocalEntry
    assert.equal(typeof Object.getOwnPropertyDescriptor(got, 'chunks')?.get, 'function', 'not rebuilt yet')
    assert.deepEqual([got.version, got.size, got.deleted], [base.version, entries[0].size, undefined])
    assert.deepEqual({ ...got }.chunks, big, 'a copy reads it')
    assert.equal(Object.getOwnPropertyDescriptor(got, 'chunks')?.value, got.chunks, 'rebuilt once')
    const edited = index.get('big.bin') as LocalEntry
    edited.chunks = big.slice(1)
    assert.deepEqual(edited.chunks, big.slice(1), 'can be assigned')
    assert.equal(index.get('big.bin')?.chunks?.length, 70, 'the index is not changed by that')
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

  it('encodes its snapshot as a full encoding of its entries would, after sets and deletes', async () => {
    const index = await LocalIndex.load('s', new ShareRecords(new MemoryShareKv()))
    const stored = new Set<string>()
    const head = async (): Promise<number> => {
      const enc = await index.encodeSnapshot(cid => stored.has(cid.toString()))
      const full = await encodeSnapshot(index.shareEntries())
      assert.ok(enc.root.equals(full.root))
      for (const b of enc.blocks) stored.add(b.cid.toString())
      return enc.blocks.length
    }
    const files = await Promise.all(Array.from({ length: 300 }, async (_, i) => ({ ...base, path: `f${i}`, type: 'file' as const, size: 1, chunks: [{ cid: await rawCid(new TextEncoder().encode(`f${i}`)), length: 1 }] })))
    await index.set(files)
    assert.ok(await head() > 3, 'several pages')
    await index.set([{ ...files[150], version: { [A]: 3 } }])
    assert.ok(await head() <= 2, 'a page and the root')
    await index.delete(['f7'])
    await head()
    assert.equal(await head(), 0, 'nothing changed: nothing to store')
  })
})
