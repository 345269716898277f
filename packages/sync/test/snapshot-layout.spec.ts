import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import {
  encodeSnapshot, InvalidSnapshotError, loadSnapshot, MAX_INLINE_CHUNKS, MAX_ROOT_PAGES, SnapshotEncoder,
  type ChunkRef, type ShareEntry, type SnapshotBlock
} from '../src/index.js'
import { RemoteSnapshotBlocks } from '../src/remote-snapshot.js'
import { blockMap, rawCid, text } from './helpers.js'

// How a snapshot is split into blocks decides what a change costs on the wire: a
// receiver fetches only the CIDs it does not hold (issue 5 d: a rename ≤ 100 KiB).

const DEV = '12D3KooWDeviceDeviceDeviceDeviceDeviceDeviceDeviceDevi'

async function chunks (count: number, seed: string): Promise<ChunkRef[]> {
  return Promise.all(Array.from({ length: count }, async (_, i) => ({ cid: await rawCid(text(`${seed}-${i}`)), length: 1000 + (i % 7) })))
}

function file (path: string, parts: ChunkRef[], init: Partial<ShareEntry> = {}): ShareEntry {
  return { path, type: 'file', size: parts.reduce((s, c) => s + c.length, 0), mtime: 1_700_000_000_123, mode: 0o644, version: { [DEV]: 1 }, modifiedBy: DEV, chunks: parts, ...init }
}

async function manySmall (count: number, prefix = 'dir'): Promise<ShareEntry[]> {
  return Promise.all(Array.from({ length: count }, async (_, i) => file(`${prefix}/f${String(i).padStart(5, '0')}.bin`, await chunks(1, `${prefix}${i}`))))
}

/** Blocks of `after` that `before` does not have: what a holder of `before` fetches. */
function fresh (before: { blocks: SnapshotBlock[] }, after: { blocks: SnapshotBlock[] }): SnapshotBlock[] {
  const held = new Set(before.blocks.map(b => b.cid.toString()))
  return after.blocks.filter(b => !held.has(b.cid.toString()))
}

const bytesOf = (blocks: SnapshotBlock[]): number => blocks.reduce((s, b) => s + b.bytes.byteLength, 0)

async function dagBlock (value: unknown): Promise<SnapshotBlock> {
  const bytes = dagCbor.encode(value)
  return { cid: CID.createV1(dagCbor.code, await sha256.digest(bytes)), bytes }
}

describe('snapshot layout', () => {
  it('a renamed big file keeps its chunk-list blocks: the rename costs one small page and the root', async () => {
    const movie = file('d/movie.bin', await chunks(3000, 'movie'))
    const entries = [...await manySmall(2000, 'a/small'), movie]
    const before = await encodeSnapshot(entries)
    const renamed = file('d/movie-renamed.bin', movie.chunks ?? [], { version: { [DEV]: 2 } })
    const tombstone: ShareEntry = { ...movie, chunks: undefined, size: 0, deleted: true, version: { [DEV]: 2 } }
    const after = await encodeSnapshot([...entries.filter(e => e !== movie), renamed, tombstone])
    const added = fresh(before, after)
    const lists = before.blocks.filter(b => Array.isArray(dagCbor.decode<{ c?: unknown }>(b.bytes).c))
    assert.ok(lists.length >= 1, 'the big file keeps its chunks in list blocks')
    assert.ok(lists.every(l => after.blocks.some(b => b.cid.equals(l.cid))), 'every list block is reused as is')
    assert.ok(added.length <= 3, `page(s) and root only (${added.length})`)
    assert.ok(bytesOf(added) < 32 * 1024, `${bytesOf(added)} new bytes`)
    const back = await loadSnapshot(after.root, blockMap(after.blocks))
    assert.deepEqual(back.find(e => e.path === 'd/movie-renamed.bin')?.chunks?.map(c => c.cid.toString()), movie.chunks?.map(c => c.cid.toString()))
    assert.equal(back.find(e => e.path === 'd/movie.bin')?.deleted, true)
  })

  it('files up to MAX_INLINE_CHUNKS keep their chunks inline; one changed chunk of a big file changes one list block', async () => {
    const small = await encodeSnapshot([file('s', await chunks(MAX_INLINE_CHUNKS, 's'))])
    assert.equal(small.blocks.length, 2, 'one page and the root')
    const parts = await chunks(5000, 'big')
    const before = await encodeSnapshot([file('big', parts)])
    const lists = before.blocks.length - 2
    assert.ok(lists >= 2, `the list is split (${lists} blocks)`)
    const edited = [...parts]
    edited[2500] = (await chunks(1, 'edited'))[0]
    const added = fresh(before, await encodeSnapshot([file('big', edited)]))
    assert.ok(added.length <= 4, `one or two list blocks, the page and the root (${added.length})`)
  })

  it('a big share lists its pages in index blocks; an added file changes a page, an index block and the root', async () => {
    const entries = await manySmall(5000)
    const before = await encodeSnapshot(entries)
    const root = dagCbor.decode<{ idx?: unknown[], pages?: unknown[] }>(before.blocks.at(-1)?.bytes ?? new Uint8Array())
    assert.ok(Array.isArray(root.idx) && root.pages === undefined, 'the root points at index blocks')
    const pages = before.blocks.filter(b => Array.isArray(dagCbor.decode<{ e?: unknown }>(b.bytes).e)).length
    assert.ok(pages > MAX_ROOT_PAGES, `${pages} pages`)
    const after = await encodeSnapshot([...entries, file('dir/f02500x.bin', await chunks(1, 'new'))])
    const added = fresh(before, after)
    assert.ok(added.length <= 4, `page(s), index block and root (${added.length})`)
    assert.ok(bytesOf(added) < 48 * 1024, `${bytesOf(added)} new bytes`)
    const back = await loadSnapshot(after.root, blockMap(after.blocks))
    assert.equal(back.length, 5001)
    assert.ok(back.some(e => e.path === 'dir/f02500x.bin'))
  })

  it('rejects malformed index blocks and chunk lists with a clear error', async () => {
    const page = await dagBlock({ e: [{ p: 'a', t: 1, s: 0, m: 1, o: 420, v: { d: 1 }, b: 'd' }] })
    const emptyIndex = await dagBlock({ pages: [] })
    const goodIndex = await dagBlock({ pages: [page.cid] })
    const emptyList = await dagBlock({ c: [], l: [] })
    const listPage = await dagBlock({ e: [{ p: 'f', t: 0, s: 0, m: 1, o: 420, v: { d: 1 }, b: 'd', x: [emptyList.cid] }] })
    const cases: Array<[string, unknown, SnapshotBlock[]]> = [
      ['both pages and idx', { v: 1, n: 1, pages: [page.cid], idx: [goodIndex.cid] }, [page, goodIndex]],
      ['empty index block', { v: 1, n: 0, idx: [emptyIndex.cid] }, [emptyIndex]],
      ['index pointing at a raw block', { v: 1, n: 1, idx: [await rawCid(text('x'))] }, []],
      ['empty chunk list', { v: 1, n: 1, pages: [listPage.cid] }, [listPage, emptyList]]
    ]
    for (const [name, value, blocks] of cases) {
      const root = await dagBlock(value)
      await assert.rejects(loadSnapshot(root.cid, blockMap([...blocks, root])), (err: unknown) => {
        assert.ok(err instanceof InvalidSnapshotError, `${name}: ${String(err)}`)
        return true
      })
    }
    const ok = await dagBlock({ v: 1, n: 1, idx: [goodIndex.cid] })
    assert.deepEqual((await loadSnapshot(ok.cid, blockMap([page, goodIndex, ok]))).map(e => e.path), ['a'])
  })
})

describe('remote snapshot blocks', () => {
  /** A device serving `blocks`, counting what it is asked for. */
  function device (blocks: SnapshotBlock[]): { asked: string[][], remote: (cids: CID[]) => Promise<Array<{ cid: CID, bytes?: Uint8Array }>> } {
    const map = blockMap(blocks).map
    const asked: string[][] = []
    return {
      asked,
      remote: async (cids) => {
        asked.push(cids.map(c => c.toString()))
        return cids.map(cid => ({ cid, bytes: map.get(cid.toString()) }))
      }
    }
  }

  it('a fresh device fetches every block in batches during prefetch, then reads without a round trip', async () => {
    const entries = [...await manySmall(5000), file('zz/big', await chunks(2500, 'zz'))]
    const snapshot = await encodeSnapshot(entries)
    const peer = device(snapshot.blocks)
    const blocks = new RemoteSnapshotBlocks({ local: async () => undefined, remote: peer.remote })
    await blocks.prefetch(snapshot.root)
    const requests = peer.asked.length
    assert.equal(new Set(peer.asked.flat()).size, snapshot.blocks.length, 'every block once')
    assert.ok(requests <= Math.ceil(snapshot.blocks.length / 64) + 4, `${requests} requests for ${snapshot.blocks.length} blocks`)
    assert.equal((await loadSnapshot(snapshot.root, blocks)).length, entries.length)
    assert.equal(peer.asked.length, requests, 'reading asked for nothing more')
  })

  it('a device holding the previous snapshot fetches only the changed blocks of a rename', async () => {
    const movie = file('d/movie.bin', await chunks(3000, 'movie'))
    const entries = [...await manySmall(3000, 'a/small'), movie]
    const mine = await encodeSnapshot(entries)
    const theirs = await encodeSnapshot([...entries.filter(e => e !== movie), { ...movie, path: 'd/movie-renamed.bin' }])
    const local = blockMap(mine.blocks).map
    const peer = device(theirs.blocks)
    const blocks = new RemoteSnapshotBlocks({ local: async (cid) => local.get(cid.toString()), remote: peer.remote })
    await blocks.prefetch(theirs.root)
    const back = await loadSnapshot(theirs.root, blocks)
    assert.deepEqual(peer.asked.flat().sort(), fresh(mine, theirs).map(b => b.cid.toString()).sort(), 'exactly the new blocks')
    assert.ok(peer.asked.flat().length <= 4)
    assert.equal(back.length, entries.length)
  })

  it('pages of our own last encoding are neither fetched, read nor returned: a change costs the pages it made', async () => {
    const movie = file('d/movie.bin', await chunks(3000, 'movie'))
    const entries = [...await manySmall(3000, 'a/small'), movie]
    const ours = new SnapshotEncoder<ShareEntry>(e => e)
    const mine = await ours.encode(entries, () => false)
    const edited = { ...entries[1234], mtime: 1_700_000_999_000, version: { [DEV]: 2 } }
    const added = file('a/small/f01000a.bin', await chunks(1, 'new'))
    const changed = [...entries.filter(e => e !== entries[1234]), edited, added]
    const theirs = await encodeSnapshot(changed)
    const local = blockMap(mine.blocks).map
    const localReads: string[] = []
    const peer = device(theirs.blocks)
    const blocks = new RemoteSnapshotBlocks({ local: async (cid) => { localReads.push(cid.toString()); return local.get(cid.toString()) }, remote: peer.remote })
    const read = { ownPage: (cid: CID) => ours.pageEntries(cid) }
    await blocks.prefetch(theirs.root, read)
    const back = await loadSnapshot(theirs.root, blocks, read)
    assert.deepEqual([edited, added].map(x => back.find(e => e.path === x.path)?.mtime), [edited.mtime, added.mtime])
    assert.ok(back.length < 200, `${back.length} of ${changed.length} entries read`)
    // what was skipped is ours as it is
    const returned = new Set(back.map(e => e.path))
    const skipped = changed.filter(e => !returned.has(e.path))
    assert.equal(skipped.length + back.length, changed.length)
    assert.ok(skipped.every(e => entries.includes(e)), 'only entries of our own snapshot are skipped')
    assert.ok(!returned.has(movie.path) && !localReads.some(c => mine.blocks.some(b => b.cid.toString() === c && dagCbor.decode<{ c?: unknown }>(b.bytes).c !== undefined)), 'the movie\'s chunk lists are not read')
    assert.ok(localReads.length < 10, `${localReads.length} local reads`)
    assert.deepEqual((await loadSnapshot(theirs.root, blocks)).length, changed.length, 'without ownPage: every entry')

    // a root whose count does not add up with our pages is still refused
    const pages = dagCbor.decode<{ pages: CID[] }>(theirs.blocks[theirs.blocks.length - 1].bytes).pages
    for (const n of [changed.length + 1, changed.length - 1]) {
      const liar = await dagBlock({ v: 1, n, pages })
      await assert.rejects(loadSnapshot(liar.cid, blockMap([...theirs.blocks, liar]), read), InvalidSnapshotError)
    }
  })

  it('a block that does not match its CID is refused', async () => {
    const snapshot = await encodeSnapshot(await manySmall(10))
    const liar = async (cids: CID[]): Promise<Array<{ cid: CID, bytes?: Uint8Array }>> => cids.map(cid => ({ cid, bytes: text('not it') }))
    const blocks = new RemoteSnapshotBlocks({ local: async () => undefined, remote: liar })
    await assert.rejects(blocks.prefetch(snapshot.root), { code: 'ERR_INTEGRITY' })
  })
})
