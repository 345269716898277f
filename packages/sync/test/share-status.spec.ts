/**
 * Status counts (files, bytes, this device's changes) are kept by the index
 * as it changes: a status poll does not unpack every entry, and the counts
 * stay right through adds, edits, deletes and a pull.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { lstat, readdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { MemoryShareKv, type KvOperation, type LocalEntry } from '../src/index.js'
import { LocalIndex, type IndexCounts } from '../src/local-index.js'
import { ShareRecords } from '../src/share-state.js'
import { rawCid, removeDir, text, waitFor } from './helpers.js'
import { sameTree, stopDevice, twoDevicesWithDocs, type TestDevice } from './share-devices.js'

const SELF = '12D3KooWSe1fSe1fSe1fSe1fSe1fSe1fSe1fSe1fSe1fSe1fSe1f'
const OTHER = '12D3KooWOtherOtherOtherOtherOtherOtherOtherOtherOthe'
const BOUND = { timeout: 15_000, interval: 25 }

async function file (path: string, size: number, by = SELF, deleted = false): Promise<LocalEntry> {
  const chunks = size === 0 ? [] : [{ cid: await rawCid(text(`${path} ${size}`)), length: size }]
  return { path, type: 'file', size, mtime: 1_764_000_000_000, mode: 0o644, version: { [by]: 1 }, modifiedBy: by, chunks, ...(deleted ? { deleted: true } : {}) }
}

/** The counts as a walk over every entry gives them (unpacking each). */
function countEntries (entries: Iterable<LocalEntry>, self: string): IndexCounts {
  const counts: IndexCounts = { files: 0, bytes: 0, ownChanges: 0 }
  for (const e of entries) {
    if (e.deleted !== true && e.type === 'file') {
      counts.files++
      counts.bytes += e.size
    }
    if (e.modifiedBy === self) counts.ownChanges++
  }
  return counts
}

describe('LocalIndex counts', () => {
  it('are loaded, then follow sets, replacements, tombstones and deletes without unpacking', async () => {
    const records = new ShareRecords(new MemoryShareKv())
    const first = await LocalIndex.load('s', records)
    await first.set([await file('before', 7)])
    const index = await LocalIndex.load('s', records)
    let unpacked = 0
    const values = index.values.bind(index)
    index.values = () => { unpacked++; return values() }
    const get = index.get.bind(index)
    index.get = (path) => { unpacked++; return get(path) }
    const counter = { counts: () => index.counts(SELF) }
    assert.deepEqual(counter.counts(), { files: 1, bytes: 7, ownChanges: 1 }, 'counted as loaded')
    await index.set([await file('a', 10), await file('b', 20, OTHER), { path: 'd', type: 'dir', size: 0, mtime: 1, mode: 0o755, version: { [SELF]: 1 }, modifiedBy: SELF }])
    assert.deepEqual(counter.counts(), { files: 3, bytes: 37, ownChanges: 3 })
    await index.set([await file('a', 15, OTHER)])
    assert.deepEqual(counter.counts(), { files: 3, bytes: 42, ownChanges: 2 }, 'an edit')
    await index.set([await file('b', 0, SELF, true)])
    assert.deepEqual(counter.counts(), { files: 2, bytes: 22, ownChanges: 3 }, 'a tombstone')
    await index.delete(['b', 'd', 'b', 'never-there'])
    assert.deepEqual(counter.counts(), { files: 2, bytes: 22, ownChanges: 1 }, 'paths forgotten (one given twice, one unknown)')
    await index.set([await file('c', 1), await file('c', 2)])
    assert.deepEqual(counter.counts(), { files: 3, bytes: 24, ownChanges: 2 }, 'a path given twice counts once, as its last entry')
    assert.equal(unpacked, 0, 'no entry was unpacked')
    assert.deepEqual(counter.counts(), countEntries(values(), SELF))
    assert.deepEqual(index.counts(OTHER), { files: 3, bytes: 24, ownChanges: 1 }, 'counts for another device id')
  })

  it('writes of one path that overlap count right; a failed write changes nothing', async () => {
    const kv = new MemoryShareKv()
    let hold: PromiseWithResolvers<void> | undefined
    const batch = kv.batch.bind(kv)
    kv.batch = async (ops: KvOperation[]) => {
      await hold?.promise
      await batch(ops)
    }
    const index = await LocalIndex.load('s', new ShareRecords(kv))
    const counter = { counts: () => index.counts(SELF) }
    hold = Promise.withResolvers()
    const writes = [index.set([await file('a', 10)]), index.set([await file('a', 30)]), index.delete(['a']), index.set([await file('a', 5), await file('b', 1)])]
    assert.deepEqual(counter.counts(), { files: 0, bytes: 0, ownChanges: 0 }, 'not in the index yet')
    hold.resolve()
    await Promise.all(writes)
    assert.deepEqual(counter.counts(), { files: 2, bytes: 6, ownChanges: 2 })
    assert.deepEqual(counter.counts(), countEntries(index.values(), SELF))
    hold = Promise.withResolvers()
    hold.reject(new Error('disk gone'))
    await assert.rejects(index.set([await file('c', 5)]), /disk gone/)
    assert.deepEqual(counter.counts(), { files: 2, bytes: 6, ownChanges: 2 })
    hold = undefined
    await index.set([await file('c', 5)])
    assert.deepEqual(counter.counts(), { files: 3, bytes: 11, ownChanges: 3 }, 'writes go on after a failed one')
  })
})

describe('share status counts through adds, edits, deletes and a pull (two devices)', () => {
  let root: string
  let a: TestDevice
  let b: TestDevice
  let dirA: string
  let dirB: string

  /** Regular files under `dir` and their bytes, as the disk has them (temp files left out). */
  async function onDisk (dir: string): Promise<{ files: number, bytes: number }> {
    const out = { files: 0, bytes: 0 }
    const stack = [dir]
    while (stack.length > 0) {
      const d = stack.pop() as string
      for (const name of await readdir(d)) {
        if (name.startsWith('.homecloud')) continue
        const s = await lstat(join(d, name))
        if (s.isDirectory()) stack.push(join(d, name))
        else if (s.isFile()) {
          out.files++
          out.bytes += s.size
        }
      }
    }
    return out
  }

  /** Both devices hold the same tree and their status counts what the disk holds. */
  async function settled (): Promise<void> {
    await waitFor(async () => {
      if (!await sameTree(dirA, dirB)) return false
      const disk = await onDisk(dirA)
      return [a, b].every(d => {
        const s = d.shares.status('docs')
        return s.files === disk.files && s.bytes === disk.bytes
      })
    }, BOUND)
  }

  before(async () => {
    ({ root, dirA, dirB, a, b } = await twoDevicesWithDocs('hc-status-'))
    await writeFile(join(dirA, 'one.txt'), 'one')
    await writeFile(join(dirA, 'sub', 'two.bin'), randomBytes(70_000))
    const { id } = await a.shares.addShare(dirA, { swarm: 'family', name: 'docs' })
    await waitFor(() => b.shares.offers().some(o => o.id === id), BOUND)
    await b.shares.acceptShare(id, dirB)
  })

  after(async () => {
    await stopDevice(a)
    await stopDevice(b)
    await removeDir(root)
  })

  it('counts the pulled share, then follows each change on both devices', async () => {
    await settled()
    assert.deepEqual([b.shares.status('docs').files, b.shares.status('docs').bytes], [2, 70_003])
    await writeFile(join(dirA, 'three.txt'), 'three!')
    await settled()
    await writeFile(join(dirA, 'one.txt'), 'one, now longer')
    await settled()
    await rm(join(dirA, 'sub', 'two.bin'))
    await settled()
    await writeFile(join(dirB, 'from-b.txt'), 'made on b')
    await settled()
    assert.deepEqual([a.shares.status('docs').files, a.shares.status('docs').bytes], [3, 15 + 6 + 9])
  })
})
