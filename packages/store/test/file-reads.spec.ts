import assert from 'node:assert/strict'
import { open, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { removeDir, tempDir, waitFor } from '@homecloud/test-support'
import * as dagPb from '@ipld/dag-pb'
import * as raw from 'multiformats/codecs/raw'
import { FileReads } from '../src/file-reads.js'
import { BlockNotFoundError, IndexedChunkStore, MemoryIndex } from '../src/index.js'
import { TEMP_PREFIX, pseudoRandomBytes, writeBytes } from './helpers.js'
import type { ChunkRange, StoreIndex } from '../src/index.js'
import type { CID } from 'multiformats/cid'

/** A MemoryIndex that counts the lookups a read of a file-backed chunk can make. */
class CountingIndex extends MemoryIndex {
  calls = { getFile: 0, locations: 0, fileChunks: 0 }

  override async getFile (path: string): ReturnType<StoreIndex['getFile']> {
    this.calls.getFile++
    return super.getFile(path)
  }

  override async locations (key: string): ReturnType<StoreIndex['locations']> {
    this.calls.locations++
    return super.locations(key)
  }

  override fileChunks (path: string, range?: ChunkRange): ReturnType<MemoryIndex['fileChunks']> {
    this.calls.fileChunks++
    return super.fileChunks(path, range)
  }
}

/** Raw chunks of a UnixFS file, in order. */
async function leaves (store: IndexedChunkStore, root: CID): Promise<CID[]> {
  const out: CID[] = []
  const walk = async (cid: CID): Promise<void> => {
    if (cid.code === raw.code) {
      out.push(cid)
      return
    }
    for (const link of dagPb.decode(await store.get(cid)).Links) await walk(link.Hash)
  }
  await walk(root)
  return out
}

describe('reads of file-backed chunks', () => {
  /** The folder a test's files are written to. */
  let files: string
  let index: CountingIndex
  let store: IndexedChunkStore

  beforeEach(async () => {
    files = await tempDir(TEMP_PREFIX)
    index = new CountingIndex()
    store = new IndexedChunkStore(index)
  })

  afterEach(async () => {
    await store.close()
    await removeDir(files)
  })

  it('streams a big file from one open file and the index read ahead, not three lookups a chunk', async () => {
    const data = pseudoRandomBytes(12 * 1024 * 1024, 3)
    const path = join(files, 'big.bin')
    await writeBytes(path, data)
    const chunks = await leaves(store, await store.addPath(path))
    assert.ok(chunks.length >= 20, `${chunks.length} chunks`)
    index.calls = { getFile: 0, locations: 0, fileChunks: 0 }
    let offset = 0
    for (const cid of chunks) {
      const bytes = await store.get(cid)
      assert.ok(Buffer.from(bytes).equals(data.subarray(offset, offset + bytes.length)), `chunk at ${offset}`)
      offset += bytes.length
    }
    assert.equal(offset, data.length)
    // the first chunk is looked up in the index; the rest come from the read-ahead (loaded in the background)
    assert.ok(index.calls.locations <= 3, `${index.calls.locations} location lookups for ${chunks.length} chunks`)
    assert.ok(index.calls.getFile <= 2, `${index.calls.getFile} file record lookups`)
  })

  it('never serves a chunk of a file changed after it was opened, and forgets the file', async () => {
    const data = pseudoRandomBytes(3 * 1024 * 1024, 4)
    const path = join(files, 'doc.bin')
    await writeBytes(path, data)
    const chunks = await leaves(store, await store.addPath(path))
    const first = await store.get(chunks[0])
    // same size, same inode: the open handle sees the new bytes
    const handle = await open(path, 'r+')
    await handle.write(new Uint8Array(16).fill(0xee), 0, 16, first.length + 5)
    await handle.close()
    await assert.rejects(store.get(chunks[1]), (err: Error & { cause?: Error }) =>
      err instanceof BlockNotFoundError && (err.cause?.name === 'IntegrityError' || err.cause?.name === 'FileChangedError'))
    assert.equal((await store.stat()).files, 0, 'the file awaits a rescan')
    await assert.rejects(store.get(chunks[0]), BlockNotFoundError)
  })

  it('serves the new chunks once a changed file is indexed again', async () => {
    const path = join(files, 'doc.bin')
    await writeBytes(path, pseudoRandomBytes(2 * 1024 * 1024, 5))
    const before = await leaves(store, await store.addPath(path))
    await store.get(before[0])
    const data = pseudoRandomBytes(2 * 1024 * 1024, 6)
    await writeBytes(path, data)
    const after = await leaves(store, await store.addPath(path))
    const bytes = await store.get(after[0])
    assert.ok(Buffer.from(bytes).equals(data.subarray(0, bytes.length)))
    await assert.rejects(store.get(before[0]), BlockNotFoundError)
  })

  it('serves small files just indexed with no index lookup', async () => {
    const written: Array<{ path: string, data: Uint8Array }> = []
    const cids: CID[] = []
    for (let i = 0; i < 20; i++) {
      const path = join(files, `small${i}.bin`)
      const data = pseudoRandomBytes(500 + i * 100, 30 + i)
      await writeBytes(path, data)
      const { chunks } = await store.chunkFile(path)
      assert.equal(chunks.length, 1)
      written.push({ path, data })
      cids.push(chunks[0].cid)
    }
    index.calls = { getFile: 0, locations: 0, fileChunks: 0 }
    for (let i = 0; i < cids.length; i++) {
      assert.equal(await store.has(cids[i]), true)
      assert.ok(Buffer.from(await store.get(cids[i])).equals(written[i].data), `file ${i}`)
    }
    assert.deepEqual(index.calls, { getFile: 0, locations: 0, fileChunks: 0 })
  })

  it('still catches a file changed after its chunk places were cached, and forgets it', async () => {
    const path = join(files, 'note.bin')
    await writeBytes(path, pseudoRandomBytes(4000, 40))
    const { chunks: [chunk] } = await store.chunkFile(path)
    // same size, new bytes: only the hash check can tell
    await writeBytes(path, pseudoRandomBytes(4000, 41))
    await assert.rejects(store.get(chunk.cid), (err: Error & { cause?: Error }) =>
      err instanceof BlockNotFoundError && (err.cause?.name === 'IntegrityError' || err.cause?.name === 'FileChangedError'))
    assert.equal((await store.stat()).files, 0, 'the file awaits a rescan')
    index.calls = { getFile: 0, locations: 0, fileChunks: 0 }
    await assert.rejects(store.get(chunk.cid), BlockNotFoundError)
    assert.equal(await store.has(chunk.cid), false)
    assert.ok(index.calls.locations >= 1, 'the forgotten place is no longer cached: the index is asked')
  })

  it('answers has() false for a cached place whose file is gone, and forgets the file', async () => {
    const path = join(files, 'gone.bin')
    await writeBytes(path, pseudoRandomBytes(3000, 42))
    const { chunks: [chunk] } = await store.chunkFile(path)
    assert.equal(await store.has(chunk.cid), true)
    await rm(path)
    assert.equal(await store.has(chunk.cid), false)
    assert.equal((await store.stat()).files, 0)
  })

  it('keeps at most maxOpenFiles files open and closes idle ones', async () => {
    const reads = new FileReads(index, { maxOpenFiles: 2, idleMs: 50 })
    for (let i = 0; i < 4; i++) {
      const path = join(files, `f${i}.bin`)
      const data = pseudoRandomBytes(1000, 10 + i)
      await writeBytes(path, data)
      await store.addPath(path)
      const bytes = await reads.read({ path, offset: 0, length: 1000 })
      assert.ok(bytes instanceof Uint8Array && Buffer.from(bytes).equals(data), `file ${i} read back`)
      assert.ok(reads.openFiles <= 2, `${reads.openFiles} files open`)
    }
    await waitFor(() => reads.openFiles === 0, { timeout: 2000, interval: 10 })
    reads.close()
  })
})
