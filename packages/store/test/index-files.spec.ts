import assert from 'node:assert/strict'
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { inTempDir, removeDir, tempDir } from '@homecloud/test-support'
import { LevelIndex, MAX_INDEX_BATCH_CHUNKS, MemoryIndex, type FileChunkRef, type FileRecord, type IndexedFileEntry, type StoreIndex } from '../src/index.js'

function record (path: string, size: number, ino: number): FileRecord {
  return { path, size, mtimeNs: '1700000000000000000', ino: String(ino), dev: '1' }
}

/** `count` chunks of 10 bytes, keys `${tag}-n`. */
function chunks (tag: string, count: number): FileChunkRef[] {
  return Array.from({ length: count }, (_, i) => ({ key: `${tag}-${String(i).padStart(5, '0')}`, offset: i * 10, length: 10 }))
}

/** Everything the index holds about files: records, chunk lists and the places of `keys`. */
async function dump (index: StoreIndex, keys: string[]): Promise<unknown> {
  const files: Array<{ file: FileRecord, chunks: FileChunkRef[] }> = []
  for await (const file of index.files()) {
    const list: FileChunkRef[] = []
    for await (const c of index.fileChunks(file.path)) list.push(c)
    files.push({ file, chunks: list })
  }
  files.sort((a, b) => a.file.path.localeCompare(b.file.path))
  const places = (await index.locationsOf(keys)).map(p => p.map(l => `${l.path}@${l.offset}+${l.length}`).sort())
  return { files, places }
}

const before: IndexedFileEntry[] = [
  // replaced by fewer chunks, by more, by none; kept as is; big ones whose old entries outgrow one batch (sorted last:
  // after the first two the pass's budget is spent, so the third is written alone too)
  { file: record('/s/a/replaced-fewer', 50, 1), chunks: chunks('old-fewer', 5) },
  { file: record('/s/a/replaced-more', 20, 2), chunks: chunks('old-more', 2) },
  { file: record('/s/a/emptied', 30, 3), chunks: chunks('old-emptied', 3) },
  { file: record('/s/b/untouched', 10, 4), chunks: chunks('shared', 1) },
  // LevelDB orders UTF-8 bytes: U+FF01 before an astral character, where JS's `<` says the opposite
  { file: record('/s/u/\uff01x', 20, 5), chunks: chunks('old-fullwidth', 2) },
  { file: record('/s/u/\u{1f600}x', 20, 6), chunks: chunks('old-astral', 2) },
  ...[0, 1, 2].map(i => ({ file: record(`/s/z/was-big-${i}`, 21_000, 10 + i), chunks: chunks(`old-big-${i}`, MAX_INDEX_BATCH_CHUNKS + 52) }))
]

const after: IndexedFileEntry[] = [
  { file: record('/s/a/replaced-fewer', 20, 21), chunks: chunks('new-fewer', 2) },
  { file: record('/s/a/replaced-more', 60, 22), chunks: chunks('new-more', 6) },
  { file: record('/s/a/emptied', 0, 23), chunks: [] },
  { file: record('/s/u/\uff01x', 10, 24), chunks: chunks('new-fullwidth', 1) },
  { file: record('/s/u/\u{1f600}x', 10, 25), chunks: chunks('new-astral', 1) },
  ...[0, 1, 2].map(i => ({ file: record(`/s/z/was-big-${i}`, 10, 30 + i), chunks: chunks('shared', 1) })),
  // a new file too big for one batch, and enough new small ones (8 chunks each) to need several batches
  { file: record('/s/d/new-big', 30_000, 40), chunks: chunks('new-big', MAX_INDEX_BATCH_CHUNKS + 100) },
  ...Array.from({ length: 300 }, (_, i) => ({ file: record(`/s/e/f${String(i).padStart(3, '0')}`, 80, 100 + i), chunks: chunks(`small-${i}`, 8) }))
]

const allKeys = [...new Set([...before, ...after].flatMap(f => f.chunks.map(c => c.key)))]

type Factory = () => Promise<{ index: StoreIndex, remove(): Promise<void> }>

const factories: Array<[string, Factory]> = [
  ['memory', async () => ({ index: new MemoryIndex(), remove: async () => {} })],
  ['level', async () => {
    const db = await tempDir('homecloud-level-')
    const index = await LevelIndex.open(db)
    return { index, remove: async () => { await index.close(); await removeDir(db) } }
  }]
]

for (const [name, factory] of factories) {
  describe(`StoreIndex.setFiles: ${name}`, () => {
    it('leaves the index as setFile of each file does: replaced, emptied, big and many files, shared chunks', async () => {
      const one = await factory()
      const many = await factory()
      try {
        for (const { index } of [one, many]) {
          for (const f of before) await index.setFile(f.file, f.chunks)
        }
        for (const f of after) await one.index.setFile(f.file, f.chunks)
        await many.index.setFiles(after)
        const expected = await dump(one.index, allKeys)
        assert.deepEqual(await dump(many.index, allKeys), expected)
        // and the state is what was asked: old chunks of replaced files are gone, the shared chunk is in 4 files
        const places = await many.index.locationsOf(['old-fewer-00000', 'old-big-1-00007', 'old-fullwidth-00001', 'old-astral-00001', 'shared-00000', 'small-299-00007'])
        assert.deepEqual(places.map(p => p.length), [0, 0, 0, 0, 4, 1])
      } finally {
        await one.remove()
        await many.remove()
      }
    })

    it('refuses a path given twice and records nothing', async () => {
      const { index, remove } = await factory()
      try {
        const twice = [after[0], { ...after[1], file: { ...after[1].file, path: after[0].file.path } }]
        await assert.rejects(index.setFiles(twice), { code: 'ERR_INVALID_PARAMETERS' })
        assert.deepEqual(await dump(index, allKeys), await dump(new MemoryIndex(), allKeys))
        await index.setFiles([])
      } finally {
        await remove()
      }
    })
  })
}

describe('LevelIndex.setFiles atomicity', () => {
  it('a batch that fails while it is built writes none of its files: old entries stay, new ones are absent', async () => {
    await inTempDir(async (db) => {
      const index = await LevelIndex.open(db)
      try {
        const old = { file: record('/s/a', 20, 1), chunks: chunks('old', 2) }
        await index.setFile(old.file, old.chunks)
        const state = await dump(index, ['old-00000', 'old-00001', 'new-00000', 'b-00000'])
        // the last file (sorted by path) cannot be encoded: its record is not JSON (a narrow stand-in for any failed write)
        const bad = { file: { ...record('/s/z', 10, 3), size: 10n as unknown as number }, chunks: chunks('z', 1) }
        await assert.rejects(index.setFiles([
          { file: record('/s/a', 10, 2), chunks: chunks('new', 1) },
          { file: record('/s/b', 10, 4), chunks: chunks('b', 1) },
          bad
        ]), TypeError)
        assert.deepEqual(await dump(index, ['old-00000', 'old-00001', 'new-00000', 'b-00000']), state)
        assert.equal(await index.getFile('/s/z'), undefined)
        // the index still takes writes afterwards
        await index.setFiles([{ file: record('/s/b', 10, 4), chunks: chunks('b', 1) }])
        assert.deepEqual(await index.locations('b-00000'), [{ path: '/s/b', offset: 0, length: 10 }])
      } finally {
        await index.close()
      }
    }, 'homecloud-level-')
  })
})

/** `list` with the chunks at `at` given new keys. */
function rekeyed (list: FileChunkRef[], at: number[], tag: string): FileChunkRef[] {
  return list.map((c, i) => at.includes(i) ? { ...c, key: `${tag}-${i}` } : c)
}

/** Re-indexings of one path: each new list after the old one, as it leaves the index. */
const reindexed: Array<[string, FileChunkRef[], FileChunkRef[]]> = (() => {
  const big = chunks('r', MAX_INDEX_BATCH_CHUNKS + 300)
  return [
    ['a byte flipped: two chunks of a big file change', big, rekeyed(big, [1000, 1001], 'flip')],
    // every offset moves: more changes than one batch holds
    ['an insert at the start', big, [{ key: 'ins', offset: 0, length: 20 }, ...big.map(c => ({ ...c, offset: c.offset + 10 }))]],
    ['truncated', big, big.slice(0, 100)],
    ['grown', big.slice(0, 10), big],
    ['the same chunk at an offset with another length, and chunks given out of order', chunks('s', 5),
      [{ key: 's-00004', offset: 40, length: 10 }, { key: 's-00000', offset: 0, length: 5 }, { key: 'n', offset: 5, length: 5 }, { key: 's-00002', offset: 20, length: 20 }]],
    ['unchanged', chunks('u', 5), chunks('u', 5)]
  ]
})()

for (const [name, factory] of factories) {
  describe(`StoreIndex re-indexing a path: ${name}`, () => {
    for (const [label, before, after] of reindexed) {
      it(`setFile and setFiles leave what a first indexing leaves: ${label}`, async () => {
        const keys = [...new Set([...before, ...after].map(c => c.key))]
        const fresh = await factory()
        const one = await factory()
        const many = await factory()
        try {
          await fresh.index.setFile(record('/s/f', 1, 2), after)
          const expected = await dump(fresh.index, keys)
          for (const { index } of [one, many]) await index.setFile(record('/s/f', 1, 1), before)
          await one.index.setFile(record('/s/f', 1, 2), after)
          await many.index.setFiles([{ file: record('/s/f', 1, 2), chunks: after }, { file: record('/s/g', 10, 3), chunks: chunks('g', 1) }])
          assert.deepEqual(await dump(one.index, keys), expected)
          await many.index.deleteFile('/s/g')
          assert.deepEqual(await dump(many.index, keys), expected)
        } finally {
          for (const { remove } of [fresh, one, many]) await remove()
        }
      })
    }
  })
}

describe('LevelIndex re-indexing writes only what changed', () => {
  /** Bytes in LevelDB's write-ahead logs: every entry written or removed lands there first. */
  async function logBytes (dir: string): Promise<number> {
    let total = 0
    for (const name of await readdir(dir)) if (name.endsWith('.log')) total += (await stat(join(dir, name))).size
    return total
  }

  it('a flip in a big file writes a few entries, not the file\'s thousands; the index is right', async () => {
    await inTempDir(async (db) => {
      const index = await LevelIndex.open(db)
      try {
        const [, before, after] = reindexed[0]
        await index.setFile(record('/s/big', 1, 1), before)
        const first = await logBytes(db)
        await index.setFile(record('/s/big', 1, 2), after)
        const flip = await logBytes(db) - first
        // what the first indexing wrote (all entries) must be far more than the flip: else the measure says nothing
        assert.ok(first > 100 * 1024, `first indexing logged ${first} bytes`)
        assert.ok(flip > 0 && flip < 2048, `the flip logged ${flip} bytes`)
        const list: FileChunkRef[] = []
        for await (const c of index.fileChunks('/s/big')) list.push(c)
        assert.deepEqual(list, after)
        assert.deepEqual((await index.getFile('/s/big'))?.ino, '2')
        assert.deepEqual(await index.locations('r-01000'), [])
        assert.deepEqual(await index.locations('flip-1000'), [{ path: '/s/big', offset: 10_000, length: 10 }])
      } finally {
        await index.close()
      }
    }, 'homecloud-level-')
  })
})
