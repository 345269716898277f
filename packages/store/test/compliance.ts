import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { lstat, mkdir, rename, symlink, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { inTempDir, removeDir, tempDir } from '@homecloud/test-support'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { identity } from 'multiformats/hashes/identity'
import { sha256 } from 'multiformats/hashes/sha2'
import { BlockNotFoundError, CHUNK_AVG, CHUNK_MAX, CHUNK_MIN, HAS_MANY_BATCH, MAX_BLOCK_SIZE, MAX_TREE_DEPTH, chunkCid, type ChunkStore } from '../src/index.js'
import { TEMP_PREFIX, pseudoRandomBytes, readUnixfsDirectory, readUnixfsFile, writeBytes } from './helpers.js'

export interface StoreUnderTest {
  store: ChunkStore
  cleanup?(): Promise<void>
}

export type StoreFactory = () => Promise<StoreUnderTest>

/** The boundary sizes every store must import and read back byte for byte. */
export const BOUNDARY_SIZES: Array<[string, number]> = [
  ['empty', 0],
  ['one byte', 1],
  ['min - 1', CHUNK_MIN - 1],
  ['min', CHUNK_MIN],
  ['avg', CHUNK_AVG],
  ['max', CHUNK_MAX],
  ['max + 1', CHUNK_MAX + 1],
  ['10 MiB + 7', 10 * 1024 * 1024 + 7]
]

/** CIDv1 raw of zero bytes: what kubo gives an empty file with raw leaves. */
const EMPTY_FILE = 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'

function sameBytes (a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b)
}

/** Raw chunk CIDs of a UnixFS file, in order. */
async function leaves (store: ChunkStore, root: CID): Promise<CID[]> {
  if (root.code === raw.code) return [root]
  const out: CID[] = []
  for (const link of dagPb.decode(await store.get(root)).Links) out.push(...await leaves(store, link.Hash))
  return out
}

/** The ChunkStore contract; every implementation runs it (memory.spec.ts, level.spec.ts). */
export function chunkStoreCompliance (name: string, factory: StoreFactory): void {
  describe(`ChunkStore compliance: ${name}`, () => {
    let sut: StoreUnderTest
    let store: ChunkStore
    /** The folder a test's files are written to. */
    let files: string

    beforeEach(async () => {
      sut = await factory()
      store = sut.store
      files = await tempDir(TEMP_PREFIX)
    })

    afterEach(async () => {
      await store.close()
      await sut.cleanup?.()
      await removeDir(files)
    })

    describe('boundary sizes', () => {
      for (const [label, size] of BOUNDARY_SIZES) {
        it(`adds a ${label} file (${size} bytes) in place and reads it back`, async () => {
          const data = pseudoRandomBytes(size, size + 1)
          const path = join(files, 'file.bin')
          await writeBytes(path, data)
          const root = await store.addPath(path)
          assert.ok(sameBytes(await readUnixfsFile(store, root), data), 'bytes read back differ')
          assert.equal(await store.has(root), true)
          const stat = await store.stat()
          assert.equal(stat.files, 1)
          assert.equal(stat.fileBytes, size)
          if (size === 0) assert.equal(root.toString(), EMPTY_FILE)
          if (size > 0 && size <= CHUNK_MIN) {
            assert.equal(root.code, raw.code, 'a file up to min bytes is one raw chunk')
            assert.equal(stat.blocks, 0, 'a one-chunk file adds nothing to the block store')
          }
          for (const leaf of await leaves(store, root)) {
            const bytes = await store.get(leaf)
            assert.ok(bytes.length <= CHUNK_MAX)
          }
          // chunks are referenced, not copied (D6): the block store holds DAG nodes only
          assert.ok(stat.blockBytes < 4096 + size / 100, `block store holds ${stat.blockBytes} bytes`)
        })
      }
    })

    describe('blocks', () => {
      it('puts and gets a block by CID', async () => {
        const bytes = pseudoRandomBytes(1000, 7)
        const cid = await chunkCid(bytes)
        assert.equal(await store.has(cid), false)
        await store.put(cid, bytes)
        assert.equal(await store.has(cid), true)
        assert.ok(sameBytes(await store.get(cid), bytes))
      })

      it('refuses a block whose bytes do not match its CID and stores nothing', async () => {
        const bytes = pseudoRandomBytes(1000, 8)
        const cid = await chunkCid(bytes)
        const wrong = bytes.slice()
        wrong[500] ^= 1
        await assert.rejects(store.put(cid, wrong), { name: 'IntegrityError', code: 'ERR_INTEGRITY' })
        assert.equal(await store.has(cid), false)
        assert.equal((await store.stat()).blocks, 0)
      })

      it('refuses oversize blocks and unsupported hashes', async () => {
        const big = new Uint8Array(MAX_BLOCK_SIZE + 1)
        await assert.rejects(store.put(await chunkCid(big), big), { code: 'ERR_LIMIT_EXCEEDED' })
        const small = new Uint8Array([1, 2, 3])
        await assert.rejects(store.put(CID.createV1(raw.code, identity.digest(small)), small), { code: 'ERR_UNSUPPORTED_HASH' })
        assert.equal((await store.stat()).blocks, 0)
      })

      it('answers not-found for an unknown CID', async () => {
        const cid = await chunkCid(new Uint8Array([9, 9, 9]))
        await assert.rejects(store.get(cid), (err: Error) => err instanceof BlockNotFoundError && (err as BlockNotFoundError).code === 'ERR_NOT_FOUND')
      })

      it('honours an aborted signal', async () => {
        const cid = await chunkCid(new Uint8Array([1]))
        await assert.rejects(store.get(cid, { signal: AbortSignal.abort() }), { name: 'AbortError' })
        await assert.rejects(store.addPath(files, { signal: AbortSignal.abort() }), { name: 'AbortError' })
      })
    })

    describe('files on disk', () => {
      async function addedFile (size: number): Promise<{ path: string, data: Uint8Array, chunks: CID[] }> {
        const data = pseudoRandomBytes(size, 42)
        const path = join(files, 'doc.bin')
        await writeBytes(path, data)
        const root = await store.addPath(path)
        return { path, data, chunks: await leaves(store, root) }
      }

      it('stops serving chunks of a file that changed on disk', async () => {
        const { path, data, chunks } = await addedFile(3 * CHUNK_AVG)
        assert.equal(await store.has(chunks[0]), true)
        const changed = data.slice()
        changed[10] ^= 0xff
        await writeBytes(path, changed)
        assert.equal(await store.has(chunks[0]), false, 'reported missing')
        await assert.rejects(store.get(chunks[0]), { code: 'ERR_NOT_FOUND' })
        assert.equal((await store.stat()).files, 0, 'the file awaits a rescan')
      })

      it('re-hashes on read: a change that keeps size and mtime is caught and never served', async () => {
        // a whole-second mtime survives utimes exactly
        const data = pseudoRandomBytes(2 * CHUNK_AVG, 42)
        const path = join(files, 'doc.bin')
        await writeBytes(path, data)
        await utimes(path, 1_700_000_000, 1_700_000_000)
        const chunks = await leaves(store, await store.addPath(path))
        const changed = data.slice()
        changed[5] ^= 0xff
        await writeFile(path, changed, { flag: 'r+' })
        await utimes(path, 1_700_000_000, 1_700_000_000)
        assert.equal(await store.has(chunks[0]), true, 'size, mtime and inode look unchanged')
        await assert.rejects(store.get(chunks[0]), (err: Error & { cause?: Error }) =>
          err instanceof BlockNotFoundError && err.cause?.name === 'IntegrityError')
        assert.equal(await store.has(chunks[0]), false)
      })

      it('indexFile records chunks of an already verified file without reading it; refuses bad chunk lists', async () => {
        const data = pseudoRandomBytes(2 * CHUNK_MAX + 5, 7)
        const path = join(files, 'fetched.bin')
        await writeBytes(path, data)
        const cut = [0, CHUNK_MAX, 2 * CHUNK_MAX, data.length]
        const chunks = await Promise.all([0, 1, 2].map(async i => ({
          cid: await chunkCid(data.subarray(cut[i], cut[i + 1])), offset: cut[i], length: cut[i + 1] - cut[i]
        })))
        await assert.rejects(store.indexFile(path, [chunks[1], chunks[0]]), { code: 'ERR_INVALID_PARAMETERS' })
        await assert.rejects(store.indexFile(path, [{ ...chunks[2], length: chunks[2].length + 1 }]), { code: 'ERR_INVALID_PARAMETERS' })
        await assert.rejects(store.indexFile('fetched.bin', chunks), { code: 'ERR_INVALID_PARAMETERS' })
        assert.equal((await store.stat()).files, 0, 'nothing recorded by the refused calls')
        await store.indexFile(path, chunks)
        const stat = await store.stat()
        assert.deepEqual([stat.files, stat.fileChunks, stat.fileBytes, stat.blocks], [1, 3, data.length, 0])
        assert.deepEqual(await store.get(chunks[2].cid), data.subarray(cut[2]))
        assert.deepEqual((await store.verify()).bad, [])
      })

      it('indexFiles records files as indexFile does, leaves out (and names) the ones it refuses, and serves no replaced chunk', async () => {
        const made = await Promise.all(Array.from({ length: 20 }, async (_, i) => {
          const data = pseudoRandomBytes(1000 + i, 100 + i)
          const path = join(files, `f${i}.bin`)
          await writeBytes(path, data)
          return { path, data, chunks: [{ cid: await chunkCid(data), offset: 0, length: data.length }] }
        }))
        // one replaced: its old chunk is cached as served, then the file changes and is indexed again in the batch
        const first = made[0]
        await store.indexFile(first.path, first.chunks)
        assert.deepEqual(await store.get(first.chunks[0].cid), first.data)
        const replaced = pseudoRandomBytes(1500, 7)
        await writeBytes(first.path, replaced)
        made[0] = { path: first.path, data: replaced, chunks: [{ cid: await chunkCid(replaced), offset: 0, length: replaced.length }] }
        await mkdir(join(files, 'dir'))
        const bad = join(files, 'bad.bin')
        await writeBytes(bad, made[1].data)
        const refused = [
          { path: join(files, 'missing.bin'), chunks: [] },
          { path: join(files, 'dir'), chunks: [] },
          { path: bad, chunks: [{ ...made[1].chunks[0], length: made[1].data.length + 1 }] },
          { path: 'relative.bin', chunks: [] }
        ]
        // made[2] twice: the first is recorded, the second refused
        const failed = await store.indexFiles([...refused, ...made, made[2]])
        assert.deepEqual(failed.map(f => f.path).sort(), [...refused.map(f => f.path), made[2].path].sort())
        for (const f of failed) {
          assert.equal((f.error as Error & { code?: string }).code, f.path === refused[0].path ? 'ENOENT' : 'ERR_INVALID_PARAMETERS', f.path)
        }
        const stat = await store.stat()
        assert.deepEqual([stat.files, stat.fileChunks, stat.fileBytes], [made.length, made.length, made.reduce((n, m) => n + m.data.length, 0)])
        for (const m of made) assert.deepEqual(await store.get(m.chunks[0].cid), m.data)
        assert.equal(await store.has(first.chunks[0].cid), false, 'the replaced version is no longer served')
        assert.deepEqual((await store.verify()).bad, [])
        assert.deepEqual(await store.indexFiles([]), [])
      })

      it('indexFiles records a given stat as is (no lstat: a file put at the path after it is not taken for it); a malformed stat is refused', async () => {
        const file = async (name: string, seed: number): Promise<{ path: string, data: Uint8Array, chunks: Array<{ cid: CID, offset: number, length: number }> }> => {
          const data = pseudoRandomBytes(2000, seed)
          const path = join(files, name)
          await writeBytes(path, data)
          return { path, data, chunks: [{ cid: await chunkCid(data), offset: 0, length: data.length }] }
        }
        const kept = await file('kept.bin', 1)
        const swapped = await file('swapped.bin', 2)
        const malformed = await file('malformed.bin', 3)
        const stamps = await Promise.all([kept, swapped].map(async f => lstat(f.path, { bigint: true })))
        // the same bytes, another file (another inode) under the name after its stat was taken
        await writeBytes(`${swapped.path}.new`, swapped.data)
        await rename(`${swapped.path}.new`, swapped.path)
        const bad = { size: 2000, mtimeNs: 1, ino: 1, dev: 1 } as unknown as NonNullable<Parameters<ChunkStore['indexFiles']>[0][number]['stat']>
        const failed = await store.indexFiles([
          { ...kept, stat: stamps[0] },
          { ...swapped, stat: stamps[1] },
          { ...malformed, stat: bad }
        ])
        assert.deepEqual(failed.map(f => [f.path, (f.error as Error & { code?: string }).code]), [[malformed.path, 'ERR_INVALID_PARAMETERS']])
        assert.deepEqual(await store.get(kept.chunks[0].cid), kept.data)
        assert.equal(await store.has(swapped.chunks[0].cid), false, 'recorded with the stat given: the file now there does not match it')
        assert.equal(await store.has(malformed.chunks[0].cid), false)
        assert.equal((await store.stat()).files, 1, 'the swapped file was forgotten once found changed')
      })

      it('verify reports chunks of changed files and bad blocks', async () => {
        const { path, chunks } = await addedFile(2 * CHUNK_AVG)
        assert.deepEqual((await store.verify()).bad, [])
        await writeBytes(path, new Uint8Array(10))
        const result = await store.verify()
        assert.deepEqual(result.bad.map(b => [b.cid.multihash.bytes, b.path, b.reason]),
          chunks.map(c => [c.multihash.bytes, path, 'file-changed']))
        assert.equal(await store.has(chunks[0]), false)
      })

      it('does not follow symlinks out of the tree; records them as symlink nodes', async () => {
        await inTempDir(async (outside) => {
          const secret = pseudoRandomBytes(5000, 99)
          await writeBytes(join(outside, 'secret.bin'), secret)
          const tree = join(files, 'tree')
          await mkdir(join(tree, 'sub'), { recursive: true })
          await mkdir(join(tree, 'empty'))
          await writeBytes(join(tree, 'a.txt'), new TextEncoder().encode('hello'))
          await writeBytes(join(tree, 'sub', 'b.bin'), pseudoRandomBytes(CHUNK_MAX + 1, 3))
          await writeBytes(join(tree, 'zero'), new Uint8Array(0))
          await symlink(join(outside, 'secret.bin'), join(tree, 'link-file'))
          await symlink(outside, join(tree, 'link-dir'))
          await symlink('.', join(tree, 'loop'))
          const root = await store.addPath(tree)
          const entries = await readUnixfsDirectory(store, root)
          assert.deepEqual(entries.map(e => e.name), ['a.txt', 'empty', 'link-dir', 'link-file', 'loop', 'sub', 'zero'])
          const byName = new Map(entries.map(e => [e.name, e.cid]))
          const link = UnixFS.unmarshal(dagPb.decode(await store.get(byName.get('link-dir') as CID)).Data ?? new Uint8Array())
          assert.equal(link.type, 'symlink')
          assert.equal(new TextDecoder().decode(link.data), outside)
          assert.deepEqual(await readUnixfsDirectory(store, byName.get('empty') as CID), [])
          assert.equal((byName.get('zero') as CID).toString(), EMPTY_FILE)
          assert.equal(new TextDecoder().decode(await readUnixfsFile(store, byName.get('a.txt') as CID)), 'hello')
          assert.equal(await store.has(await chunkCid(secret)), false, 'nothing outside the tree was indexed')
          assert.equal((await store.stat()).files, 3)
        }, 'homecloud-outside-')
      })

      it('refuses a path that is missing or not a file, directory or symlink, and changes nothing', async () => {
        await assert.rejects(store.addPath(join(files, 'missing')), { code: 'ERR_NOT_FOUND' })
        const fifo = join(files, 'fifo')
        execFileSync('mkfifo', [fifo])
        await assert.rejects(store.addPath(fifo), { code: 'ERR_INVALID_PARAMETERS' })
        assert.deepEqual(await store.stat(), { blocks: 0, blockBytes: 0, files: 0, fileChunks: 0, fileBytes: 0, pins: 0 })
      })

      it('adds files concurrently with the same result as one by one', async () => {
        const paths = [0, 1, 2].map(i => join(files, `c${i}.bin`))
        for (const [i, path] of paths.entries()) await writeBytes(path, pseudoRandomBytes(3 * CHUNK_MAX + i, 50 + i))
        const together = await Promise.all(paths.map(async p => store.addPath(p)))
        const alone: CID[] = []
        for (const path of paths) alone.push(await store.addPath(path))
        assert.deepEqual(together.map(String), alone.map(String))
        assert.equal(new Set(alone.map(String)).size, 3)
      })

      it('refuses a tree deeper than MAX_TREE_DEPTH before writing anything', async () => {
        let path = join(files, 'deep')
        for (let i = 0; i <= MAX_TREE_DEPTH; i++) path = join(path, 'd')
        await mkdir(path, { recursive: true })
        await writeBytes(join(path, 'f'), new Uint8Array([1]))
        await assert.rejects(store.addPath(join(files, 'deep')), { code: 'ERR_LIMIT_EXCEEDED' })
        assert.deepEqual(await store.stat(), { blocks: 0, blockBytes: 0, files: 0, fileChunks: 0, fileBytes: 0, pins: 0 })
      })

      it('emits progress events', async () => {
        await writeBytes(join(files, 'p.bin'), pseudoRandomBytes(2 * CHUNK_MAX, 5))
        const types = new Map<string, unknown>()
        await store.addPath(files, { onProgress: evt => { types.set(evt.type, evt.detail) } })
        assert.deepEqual(types.get('store:add:scan'), { files: 1, bytes: 2 * CHUNK_MAX })
        assert.deepEqual(types.get('store:add:progress'), { files: 1, bytes: 2 * CHUNK_MAX })
        assert.equal((types.get('store:add:file') as { size: number }).size, 2 * CHUNK_MAX)
      })
    })

    describe('pins and gc', () => {
      it('removes unpinned blocks and keeps pinned DAGs and file-backed chunks', async () => {
        const loose = pseudoRandomBytes(100, 1)
        const looseCid = await chunkCid(loose)
        await store.put(looseCid, loose)
        const data = pseudoRandomBytes(3 * CHUNK_MAX, 2)
        const path = join(files, 'kept.bin')
        await writeBytes(path, data)
        const root = await store.addPath(path)
        assert.equal(await store.isPinned(root), true, 'addPath pins its root')
        const result = await store.gc()
        assert.deepEqual(result, { removedBlocks: 1, removedBytes: 100 })
        assert.equal(await store.has(looseCid), false)
        assert.ok(sameBytes(await readUnixfsFile(store, root), data), 'pinned DAG and file chunks survive')
      })

      it('keeps file-backed chunks even when no pin reaches them', async () => {
        const path = join(files, 'unpinned.bin')
        await writeBytes(path, pseudoRandomBytes(3 * CHUNK_MAX, 4))
        const root = await store.addPath(path, { pin: false })
        const chunks = await leaves(store, root)
        const result = await store.gc()
        assert.equal(result.removedBlocks, 1, 'the unpinned root node goes')
        assert.equal(await store.has(root), false)
        for (const chunk of chunks) assert.equal(await store.has(chunk), true)
      })

      it('never sweeps a DAG being added: gc waits for addPath', async () => {
        const tree = join(files, 'busy')
        await mkdir(tree)
        for (let i = 0; i < 3; i++) await writeBytes(join(tree, `f${i}`), pseudoRandomBytes(2 * CHUNK_MAX, 30 + i))
        const [root] = await Promise.all([store.addPath(tree), store.gc(), store.gc()])
        assert.equal((await readUnixfsDirectory(store, root)).length, 3)
        assert.deepEqual(await store.gc(), { removedBlocks: 0, removedBytes: 0 })
      })

      it('keeps blocks pinned before they arrive; unpin lets gc take them', async () => {
        const child = pseudoRandomBytes(64, 6)
        const childCid = await chunkCid(child)
        const node = dagPb.encode(dagPb.prepare({ Data: new UnixFS({ type: 'file', blockSizes: [64n] }).marshal(), Links: [{ Hash: childCid, Tsize: 64 }] }))
        const nodeCid = CID.createV1(dagPb.code, await sha256.digest(node))
        await store.pin(nodeCid)
        await store.put(nodeCid, node)
        await store.put(childCid, child)
        assert.deepEqual(await store.gc(), { removedBlocks: 0, removedBytes: 0 })
        const pins: string[] = []
        for await (const pin of store.pins()) pins.push(pin.toString())
        assert.deepEqual(pins, [nodeCid.toString()])
        await store.unpin(nodeCid)
        await assert.rejects(store.unpin(nodeCid), { code: 'ERR_NOT_FOUND' })
        assert.equal((await store.gc()).removedBlocks, 2)
        assert.equal(await store.has(childCid), false)
      })
    })

    describe('hasMany', () => {
      /** A file of `count` 1 KiB chunks indexed with indexFile (seed: its bytes), and its chunk CIDs. */
      async function indexed (name: string, count: number, seed: number): Promise<{ path: string, data: Uint8Array, cids: CID[] }> {
        const data = pseudoRandomBytes(count * 1024, seed)
        const path = join(files, name)
        await writeBytes(path, data)
        const chunks = await Promise.all(Array.from({ length: count }, async (_, i) => ({
          cid: await chunkCid(data.subarray(i * 1024, (i + 1) * 1024)), offset: i * 1024, length: 1024
        })))
        await store.indexFile(path, chunks)
        return { path, data, cids: chunks.map(c => c.cid) }
      }

      it('answers as has does, in order: blocks, chunks of unchanged files, of changed files, missing; a changed file met is forgotten', async () => {
        const blocks = await Promise.all([1, 2].map(async n => {
          const bytes = pseudoRandomBytes(100, 900 + n)
          const cid = await chunkCid(bytes)
          await store.put(cid, bytes)
          return cid
        }))
        const kept = await indexed('kept.bin', 4, 1)
        const changed = await indexed('changed.bin', 4, 2)
        // a chunk of a changed file that an unchanged file holds too: still here (the changed one is met first in either index)
        const changedToo = await indexed('a-changed.bin', 1, 3)
        const shared = await indexed('shared.bin', 1, 3)
        await writeBytes(changedToo.path, new Uint8Array(10))
        await writeBytes(changed.path, changed.data.subarray(0, 3000))
        const missing = await Promise.all([1, 2, 3].map(async n => chunkCid(pseudoRandomBytes(64, 700 + n))))
        const asked = [missing[0], kept.cids[2], changed.cids[0], blocks[0], shared.cids[0], changed.cids[3], missing[1], kept.cids[0], kept.cids[2], blocks[1], changed.cids[1], missing[2], kept.cids[3]]
        const expected = [false, true, false, true, true, false, false, true, true, true, false, false, true]
        const filesBefore = (await store.stat()).files
        assert.deepEqual(await store.hasMany(asked), expected)
        // changed.bin is forgotten; a-changed.bin is never looked at: the chunk's first place found (shared.bin) is good, as with has
        assert.equal((await store.stat()).files, filesBefore - 1, 'the changed file awaits a rescan')
        // the same answers one by one
        const one: boolean[] = []
        for (const cid of asked) one.push(await store.has(cid))
        assert.deepEqual(one, expected)
        assert.deepEqual(await store.hasMany([]), [])
      })

      it('answers a list longer than one batch, in order', async () => {
        const kept = await indexed('kept.bin', 3, 4)
        const asked = await Promise.all(Array.from({ length: HAS_MANY_BATCH + 2 }, async (_, i) => chunkCid(pseudoRandomBytes(16, 5000 + i))))
        asked[5] = kept.cids[0]
        asked[HAS_MANY_BATCH + 1] = kept.cids[2]
        const found = await store.hasMany(asked)
        assert.equal(found.length, asked.length)
        assert.deepEqual(found.flatMap((yes, i) => yes ? [i] : []), [5, HAS_MANY_BATCH + 1])
      })

      it('honours an aborted signal and refuses work once closed', async () => {
        const cid = await chunkCid(new Uint8Array([1]))
        await assert.rejects(store.hasMany([cid], { signal: AbortSignal.abort() }), { name: 'AbortError' })
        await store.close()
        await assert.rejects(store.hasMany([cid]), { code: 'ERR_STORE_CLOSED' })
      })
    })

    it('refuses work once closed', async () => {
      await store.close()
      await assert.rejects(store.has(await chunkCid(new Uint8Array(1))), { code: 'ERR_STORE_CLOSED' })
      await assert.rejects(store.addPath(files), { code: 'ERR_STORE_CLOSED' })
    })
  })
}
