import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { lstat, symlink, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { inTempDir, removeDir, tempDir } from '@homecloud/test-support'
import { CHUNK_MAX, ChunkReader, INLINE_HASH_BYTES, createLevelStore, createMemoryStore, type ChunkStore, type FileChunk } from '../src/index.js'
import { FileChunker } from '../src/file-chunker.js'
import { statMs } from '../src/file-source.js'
import { TEMP_PREFIX, pseudoRandomBytes, streamedChunks, writeBytes } from './helpers.js'

function plain (chunks: FileChunk[]): Array<[string, number, number]> {
  return chunks.map(c => [c.cid.toString(), c.offset, c.length])
}

/** Sizes around the small-file path (read at once, hashed on this thread) and the streaming one. */
const SIZES = [0, 1, 1000, INLINE_HASH_BYTES - 1, INLINE_HASH_BYTES, INLINE_HASH_BYTES + 1, CHUNK_MAX + 3, 3 * CHUNK_MAX + 17]

const stores: Array<[string, () => Promise<{ store: ChunkStore, cleanup: () => Promise<void> }>]> = [
  ['memory', async () => {
    const store = createMemoryStore()
    return { store, cleanup: async () => { await store.close() } }
  }],
  ['level', async () => {
    const db = await tempDir('homecloud-level-')
    const store = await createLevelStore({ path: db })
    return { store, cleanup: async () => { await store.close(); await removeDir(db) } }
  }]
]

for (const [name, open] of stores) {
  describe(`chunkFile (${name} store)`, () => {
    /** Runs `fn` on a fresh store of this kind and a temp folder for its files; both go afterwards. */
    async function withStore (fn: (store: ChunkStore, files: string) => Promise<void>): Promise<void> {
      await inTempDir(async (files) => {
        const { store, cleanup } = await open()
        try {
          await fn(store, files)
        } finally {
          await cleanup()
        }
      }, TEMP_PREFIX)
    }

    it('gives the streaming reader\'s chunks at every size, indexes them in place and returns the stat lstat reports', async () => {
      await withStore(async (store, files) => {
        for (const [i, size] of SIZES.entries()) {
          const data = pseudoRandomBytes(size, 100 + i)
          const path = join(files, `f${i}.bin`)
          await writeBytes(path, data)
          const got = await store.chunkFile(path)
          assert.deepEqual(plain(got.chunks), plain(await streamedChunks(path)), `size ${size}`)
          const st = await lstat(path)
          assert.deepEqual(got.stat, { size, mtimeMs: st.mtimeMs, ino: st.ino }, `size ${size}: the stat compares equal with lstat's`)
          for (const c of got.chunks) {
            assert.ok(Buffer.from(await store.get(c.cid)).equals(data.subarray(c.offset, c.offset + c.length)), 'served from the file')
          }
        }
        const stat = await store.stat()
        assert.equal(stat.files, SIZES.length)
        assert.equal(stat.fileBytes, SIZES.reduce((a, b) => a + b, 0))
        assert.equal(stat.blocks, 0, 'nothing copied into the block store')
      })
    })

    it('many calls at once give what one at a time gives', async () => {
      await withStore(async (store, files) => {
        const paths: string[] = []
        for (let i = 0; i < 40; i++) {
          paths.push(join(files, `m${i}`))
          await writeBytes(paths[i], pseudoRandomBytes(i % 10 === 0 ? CHUNK_MAX + i : 1 + 997 * i, i + 1))
        }
        const together = await Promise.all(paths.map(async p => store.chunkFile(p)))
        for (const [i, p] of paths.entries()) assert.deepEqual(plain(together[i].chunks), plain(await streamedChunks(p)))
      })
    })

    it('refuses symlinks, relative paths, folders and fifos (without hanging) and indexes nothing', async () => {
      await withStore(async (store, files) => {
        await writeFile(join(files, 'target'), 'secret')
        await symlink(join(files, 'target'), join(files, 'link'))
        execFileSync('mkfifo', [join(files, 'fifo')])
        await assert.rejects(store.chunkFile(join(files, 'link')), { code: 'ELOOP' })
        await assert.rejects(store.chunkFile('target'), { code: 'ERR_INVALID_PARAMETERS' })
        await assert.rejects(store.chunkFile(files))
        await assert.rejects(store.chunkFile(join(files, 'fifo')))
        await assert.rejects(store.indexFile(join(files, 'link'), []), { code: 'ERR_INVALID_PARAMETERS' })
        assert.equal((await store.stat()).files, 0)
      })
    })
  })
}

describe('FileChunker', () => {
  it('cuts small files read at once exactly as the streaming reader does (small chunking parameters)', async () => {
    await inTempDir(async (files) => {
      const chunking = { min: 1024, avg: 4096, max: 16384 }
      const chunker = new FileChunker({ chunking })
      for (const size of [5000, 40_000, INLINE_HASH_BYTES]) {
        const path = join(files, `s${size}`)
        await writeBytes(path, pseudoRandomBytes(size, size))
        const { chunks } = await chunker.chunkFile(path)
        assert.ok(size < 10_000 || chunks.length > 2, 'several chunks in one small read')
        assert.deepEqual(plain(chunks), plain(await streamedChunks(path, new ChunkReader({ chunking }))))
      }
      await chunker.idle()
    }, TEMP_PREFIX)
  })
})

describe('statMs', () => {
  it('turns nanoseconds into the float lstat reports, before 1970 and with fractions too', async () => {
    await inTempDir(async (files) => {
      const path = join(files, 't')
      await writeFile(path, 'x')
      for (const seconds of [0, 1.5, 1_700_000_000.123456, -1.25, -86_400 * 365.5 + 0.000001]) {
        await utimes(path, seconds, seconds)
        const [plainStat, big] = [await lstat(path), await lstat(path, { bigint: true })]
        assert.equal(statMs(big.mtimeNs), plainStat.mtimeMs, `mtime ${seconds}`)
      }
    }, TEMP_PREFIX)
  })
})
