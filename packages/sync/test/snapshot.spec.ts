import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import {
  encodeSnapshot, InvalidHeadError, InvalidSnapshotError, loadSnapshot, signHead, SnapshotEncoder, verifyHead,
  type ShareEntry, type SnapshotBlock
} from '../src/index.js'
import { blockMap, rawCid, text } from './helpers.js'

const DEV = '12D3KooWDeviceDeviceDeviceDeviceDeviceDeviceDeviceDevi'

async function fileEntry (path: string, parts: string[], init: Partial<ShareEntry> = {}): Promise<ShareEntry> {
  const chunks = await Promise.all(parts.map(async p => ({ cid: await rawCid(text(p)), length: text(p).byteLength })))
  return { path, type: 'file', size: chunks.reduce((s, c) => s + c.length, 0), mtime: 1_700_000_000_123, mode: 0o644, version: { [DEV]: 1 }, modifiedBy: DEV, chunks, ...init }
}

async function dagBlock (value: unknown): Promise<SnapshotBlock> {
  const bytes = dagCbor.encode(value)
  return { cid: CID.createV1(dagCbor.code, await sha256.digest(bytes)), bytes }
}

/** The page boundary test of snapshot.ts (FNV-1a of the path under PAGE_BOUNDARY_MASK). */
function endsPage (path: string): boolean {
  let h = 0x811c9dc5
  for (let i = 0; i < path.length; i++) {
    h ^= path.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return ((h >>> 0) & 0x3f) === 0
}

describe('snapshot encoding', () => {
  it('writes pages as canonical dag-cbor of { e: entries } for every size of entry array', async () => {
    // 300 paths that end no page, then one that does: one page of 301 entries; then short pages
    const names: string[] = []
    for (let i = 0; names.length < 300; i++) if (!endsPage(`long/${i}`)) names.push(`long/${i}`)
    let end = 0
    while (!endsPage(`long/~${end}`)) end++
    names.push(`long/~${end}`)
    // five that end no page and one that does: a page of 6
    const mids: string[] = []
    for (let i = 0; mids.length < 5; i++) if (!endsPage(`mid/a${i}`)) mids.push(`mid/a${i}`)
    names.push(...mids)
    let mid = 0
    while (!endsPage(`mid/b${mid}`)) mid++
    names.push(`mid/b${mid}`)
    for (let i = 0; i < 200; i++) names.push(`short/${i}`)
    const entries = await Promise.all(names.map(async (n, i) => fileEntry(n, [`bytes of ${i}`])))
    const enc = await encodeSnapshot(entries)
    const sizes: number[] = []
    for (const b of enc.blocks) {
      const value = dagCbor.decode(b.bytes) as { e?: unknown[] }
      if (value.e === undefined) continue
      sizes.push(value.e.length)
      assert.deepEqual(b.bytes, dagCbor.encode(value), 'page bytes are what dag-cbor gives for the page')
      assert.ok(b.cid.equals(CID.createV1(dagCbor.code, await sha256.digest(b.bytes))))
    }
    assert.ok(sizes.some(n => n < 24) && sizes.some(n => n >= 24 && n < 256) && sizes.some(n => n >= 256), `page sizes ${sizes.join(', ')}`)
    const back = await loadSnapshot(enc.root, blockMap(enc.blocks))
    assert.deepEqual(back.map(e => e.path), [...names].sort())
  })

  it('round-trips files, directories, links, tombstones and big chunk lists', async () => {
    const many = await Promise.all(Array.from({ length: 2500 }, async (_, i) => ({ cid: await rawCid(text(`c${i}`)), length: 1000 + i })))
    const entries: ShareEntry[] = [
      await fileEntry('b.txt', ['hello ', 'world']),
      { path: 'a', type: 'dir', size: 0, mtime: 5, mode: 0o755, version: { [DEV]: 2 }, modifiedBy: DEV },
      { path: 'a/link', type: 'symlink', size: 0, mtime: 6, mode: 0o777, version: { [DEV]: 1 }, modifiedBy: DEV, target: '../../etc' },
      { path: 'gone', type: 'file', size: 0, mtime: 7, mode: 0o644, version: { [DEV]: 3, x: 1 }, modifiedBy: 'x', deleted: true },
      { path: 'big.iso', type: 'file', size: many.reduce((s, c) => s + c.length, 0), mtime: 8, mode: 0o600, version: { [DEV]: 1 }, modifiedBy: DEV, chunks: many },
      await fileEntry('empty', [])
    ]
    const enc = await encodeSnapshot(entries)
    assert.ok(enc.blocks.every(b => b.bytes.byteLength <= 1024 * 1024))
    assert.ok(enc.blocks.length >= 3, 'root, page and chunk list blocks')
    const back = await loadSnapshot(enc.root, blockMap(enc.blocks))
    assert.deepEqual(back.map(e => e.path), ['a', 'a/link', 'b.txt', 'big.iso', 'empty', 'gone'])
    const byPath = new Map(back.map(e => [e.path, e]))
    for (const e of entries) {
      const got = byPath.get(e.path) as ShareEntry
      assert.equal(got.type, e.type)
      assert.equal(got.size, e.size)
      assert.equal(got.mtime, e.mtime)
      assert.deepEqual(got.version, e.version)
      assert.equal(got.target, e.target)
      assert.equal(got.deleted, e.deleted)
      assert.deepEqual(got.chunks?.map(c => `${c.cid.toString()}:${c.length}`), e.chunks?.map(c => `${c.cid.toString()}:${c.length}`))
    }
  })

  it('is canonical and pages are stable: one added file changes few blocks', async () => {
    const entries = await Promise.all(Array.from({ length: 5000 }, async (_, i) => fileEntry(`dir/file-${String(i).padStart(5, '0')}`, [`x${i}`])))
    const a = await encodeSnapshot(entries)
    const again = await encodeSnapshot([...entries].reverse())
    assert.equal(a.root.toString(), again.root.toString(), 'same entries, same CID, whatever the order')
    const b = await encodeSnapshot([...entries, await fileEntry('dir/file-02500x', ['new'])])
    const before = new Set(a.blocks.map(x => x.cid.toString()))
    const changed = b.blocks.filter(x => !before.has(x.cid.toString()))
    assert.ok(a.blocks.length > 5, `several pages (${a.blocks.length})`)
    assert.ok(changed.length <= 3, `only the root and one or two pages are new (${changed.length})`)
  })

  it('refuses duplicates on encode', async () => {
    const e = await fileEntry('x', ['1'])
    await assert.rejects(encodeSnapshot([e, e]), { code: 'ERR_INVALID_PARAMETERS' })
  })

  it('rejects malformed snapshots with a clear error', async () => {
    const good = await fileEntry('f', ['abc'])
    const enc = await encodeSnapshot([good])
    const page = enc.blocks[0]

    // a block that does not match its CID
    const tampered = blockMap(enc.blocks)
    const bytes = tampered.map.get(page.cid.toString()) as Uint8Array
    tampered.map.set(page.cid.toString(), Uint8Array.from(bytes, (b, i) => i === bytes.length - 1 ? b ^ 1 : b))
    await assert.rejects(loadSnapshot(enc.root, tampered), { code: 'ERR_INTEGRITY' })

    const cases: Array<[string, unknown[], number?]> = [
      ['unsorted entries', [{ p: 'b', t: 0, s: 0, m: 1, o: 420, v: { d: 1 }, b: 'd', c: [], l: [] }, { p: 'a', t: 0, s: 0, m: 1, o: 420, v: { d: 1 }, b: 'd', c: [], l: [] }]],
      ['duplicate entries', [{ p: 'a', t: 1, s: 0, m: 1, o: 420, v: { d: 1 }, b: 'd' }, { p: 'a', t: 1, s: 0, m: 1, o: 420, v: { d: 1 }, b: 'd' }]],
      ['size not the sum of chunks', [{ p: 'a', t: 0, s: 99, m: 1, o: 420, v: { d: 1 }, b: 'd', c: [good.chunks?.[0].cid], l: [3] }]],
      ['wrong type code', [{ p: 'a', t: 7, s: 0, m: 1, o: 420, v: { d: 1 }, b: 'd' }]],
      ['mode with setuid', [{ p: 'a', t: 1, s: 0, m: 1, o: 0o4755, v: { d: 1 }, b: 'd' }]],
      ['zero counter', [{ p: 'a', t: 1, s: 0, m: 1, o: 420, v: { d: 0 }, b: 'd' }]],
      ['path not a string', [{ p: 5, t: 1, s: 0, m: 1, o: 420, v: { d: 1 }, b: 'd' }]],
      ['chunk not raw', [{ p: 'a', t: 0, s: 3, m: 1, o: 420, v: { d: 1 }, b: 'd', c: [enc.root], l: [3] }]],
      ['tombstone with chunks', [{ p: 'a', t: 0, s: 0, m: 1, o: 420, v: { d: 1 }, b: 'd', d: true, c: [], l: [] }]],
      ['symlink without target', [{ p: 'a', t: 2, s: 0, m: 1, o: 420, v: { d: 1 }, b: 'd' }]],
      ['count mismatch', [{ p: 'a', t: 1, s: 0, m: 1, o: 420, v: { d: 1 }, b: 'd' }], 2]
    ]
    for (const [name, entries, n] of cases) {
      const p = await dagBlock({ e: entries })
      const root = await dagBlock({ v: 1, n: n ?? entries.length, pages: [p.cid] })
      await assert.rejects(loadSnapshot(root.cid, blockMap([p, root])), (err: unknown) => {
        assert.ok(err instanceof InvalidSnapshotError, `${name}: ${String(err)}`)
        assert.equal(err.code, 'ERR_INVALID_SNAPSHOT')
        return true
      })
    }

    const huge = await dagBlock({ v: 1, n: 2_000_000, pages: [] })
    await assert.rejects(loadSnapshot(huge.cid, blockMap([huge])), { code: 'ERR_LIMIT_EXCEEDED' })
    const notCbor = { cid: CID.createV1(dagCbor.code, await sha256.digest(text('nope'))), bytes: text('nope') }
    await assert.rejects(loadSnapshot(notCbor.cid, blockMap([notCbor])), { code: 'ERR_INVALID_SNAPSHOT' })
    const big = new Uint8Array(1024 * 1024 + 1)
    const bigBlock = { cid: CID.createV1(dagCbor.code, await sha256.digest(big)), bytes: big }
    await assert.rejects(loadSnapshot(bigBlock.cid, blockMap([bigBlock])), { code: 'ERR_LIMIT_EXCEEDED' })
    await assert.rejects(loadSnapshot(await rawCid(text('x')), blockMap([])), { code: 'ERR_INVALID_SNAPSHOT' })
  })

  it('a fuzzed page never crashes the decoder with anything but a clear error', async () => {
    const enc = await encodeSnapshot([await fileEntry('f', ['abc']), await fileEntry('g', ['d'])])
    const page = enc.blocks[0].bytes
    let seed = 1
    for (let i = 0; i < 300; i++) {
      const bytes = page.slice()
      for (let j = 0; j < 3; j++) {
        seed = (seed * 1103515245 + 12345) >>> 0
        bytes[seed % bytes.length] = seed >>> 24
      }
      const p = { cid: CID.createV1(dagCbor.code, await sha256.digest(bytes)), bytes }
      const root = await dagBlock({ v: 1, n: 2, pages: [p.cid] })
      try {
        await loadSnapshot(root.cid, blockMap([p, root]))
      } catch (err) {
        assert.ok(['ERR_INVALID_SNAPSHOT', 'ERR_LIMIT_EXCEEDED'].includes((err as { code?: string }).code ?? ''), String(err))
      }
    }
  })
})

describe('SnapshotEncoder (a head after each change)', () => {
  it('gives the blocks of a full encoding at the cost of the change, returning only those the store lacks', async () => {
    const cids = await Promise.all(Array.from({ length: 60 }, async (_, i) => rawCid(text(`chunk ${i}`))))
    const file = (path: string, n: number, mtime = 1_700_000_000_123): ShareEntry => ({
      path, type: 'file', size: n * 100, mtime, mode: 0o644, version: { [DEV]: 1 }, modifiedBy: DEV, chunks: cids.slice(0, n).map(cid => ({ cid, length: 100 }))
    })
    // paths that end no page: pages there end by size (~200 entries of 60 chunks)
    const wide: string[] = []
    for (let i = 0; wide.length < 500; i++) if (!endsPage(`o/${String(i).padStart(4, '0')}`)) wide.push(`o/${String(i).padStart(4, '0')}`)
    const many = await Promise.all(Array.from({ length: 2500 }, async (_, i) => ({ cid: await rawCid(text(`big ${i}`)), length: 1000 })))
    let entries: ShareEntry[] = [
      ...wide.map(p => file(p, 60)),
      ...Array.from({ length: 600 }, (_, i) => file(`s/${i}`, 1)),
      { ...file('big', 0), size: 2_500_000, chunks: many }
    ]
    let unpacked = 0
    const encoder = new SnapshotEncoder<ShareEntry>(e => { unpacked++; return e })
    const store = new Map<string, Uint8Array>()
    const stored = (cid: CID): boolean => store.has(cid.toString())
    let current: CID[] = []
    const step = async (why: string, has = stored): Promise<{ blocks: number, unpacked: number, all?: number }> => {
      unpacked = 0
      const enc = await encoder.encode(entries, has)
      const full = await encodeSnapshot(entries)
      assert.ok(enc.root.equals(full.root), `${why}: the root of a full encoding`)
      assert.deepEqual(enc.cids.map(String), full.blocks.map(b => b.cid.toString()), `${why}: its blocks`)
      for (const b of enc.blocks) {
        assert.equal(has(b.cid), false, `${why}: only blocks the store lacks`)
        store.set(b.cid.toString(), b.bytes)
      }
      assert.ok(enc.cids.every(stored), `${why}: every block is stored now`)
      current = enc.cids
      return { blocks: enc.blocks.length, unpacked, ...(has === stored ? {} : { all: enc.cids.length }) }
    }
    const first = await step('first')
    assert.equal(first.unpacked, entries.length)
    assert.deepEqual(await step('unchanged'), { blocks: 0, unpacked: 0 })
    entries = [...entries, file('s/new', 1)]
    const added = await step('one added')
    assert.ok(added.blocks <= 3 && added.unpacked < 200, `one added: ${JSON.stringify(added)}`)

    // the first entry of the second size-ended page shrinks: the page before it now takes it
    const pageOf = (path: string): string[] => {
      for (const cid of current) {
        const e = (dagCbor.decode(store.get(cid.toString()) as Uint8Array) as { e?: Array<{ p: string }> }).e
        if (e?.some(x => x.p === path) === true) return e.map(x => x.p)
      }
      return []
    }
    const firstPage = pageOf(wide[0])
    const next = wide[wide.indexOf(firstPage[firstPage.length - 1]) + 1]
    entries = entries.map(e => e.path === next ? file(next, 0) : e)
    await step('a page end moves back')
    assert.deepEqual(pageOf(wide[0]), [...firstPage, next], 'the first page grew by the shrunk entry')
    entries = entries.map(e => e.path === next ? file(next, 60, 1) : e)
    await step('and forward again')
    assert.deepEqual(pageOf(wide[0]), firstPage)

    entries = entries.filter(e => e.path !== 'big' && e.path !== wide[7]).map(e => e.path === 's/3' ? { ...e, deleted: true, size: 0, chunks: undefined } : e)
    await step('deletes and a tombstone')
    const lost = await step('a store that lost them (a failed write)', () => false)
    assert.deepEqual(lost, { blocks: lost.all, unpacked: entries.length, all: lost.all }, 'every page is built again')
    await assert.rejects(encoder.encode([entries[0], entries[0]], stored), { code: 'ERR_INVALID_PARAMETERS' })
    assert.deepEqual(await step('after a refused encoding'), { blocks: 0, unpacked: 0 })
  })
})

describe('signed heads', () => {
  it('signs and verifies; rejects forged, tampered, replayed and misdirected heads', async () => {
    const key = await generateKeyPair('Ed25519')
    const other = await generateKeyPair('Ed25519')
    const device = peerIdFromPrivateKey(key).toString()
    const snapshot = (await dagBlock({ v: 1, n: 0, pages: [] })).cid
    const head = { share: 'photos', device, seq: 7, snapshot }
    const bytes = await signHead(head, key)
    const got = await verifyHead(bytes, { share: 'photos', device, lastSeq: 6 })
    assert.deepEqual({ ...got, snapshot: got.snapshot.toString() }, { ...head, snapshot: snapshot.toString() })

    await assert.rejects(signHead(head, other), { code: 'ERR_INVALID_PARAMETERS' })
    const reason = async (p: Promise<unknown>): Promise<string> => {
      try {
        await p
        return 'accepted'
      } catch (err) {
        assert.ok(err instanceof InvalidHeadError)
        assert.equal(err.code, 'ERR_INVALID_HEAD')
        return err.reason
      }
    }
    assert.equal(await reason(verifyHead(bytes, { lastSeq: 7 })), 'stale-seq')
    assert.equal(await reason(verifyHead(bytes, { lastSeq: 9 })), 'stale-seq')
    assert.equal(await reason(verifyHead(bytes, { share: 'docs' })), 'wrong-share')
    assert.equal(await reason(verifyHead(bytes, { device: peerIdFromPrivateKey(other).toString() })), 'wrong-device')

    // another key's signature over a head naming this device
    const decoded = dagCbor.decode<{ head: Record<string, unknown>, sig: Uint8Array }>(bytes)
    const forgedSig = await other.sign(new Uint8Array([...text('homecloud-sync-head-v1:'), ...dagCbor.encode(decoded.head)]))
    assert.equal(await reason(verifyHead(dagCbor.encode({ head: decoded.head, sig: forgedSig }))), 'bad-signature')
    // a changed seq under the old signature
    assert.equal(await reason(verifyHead(dagCbor.encode({ head: { ...decoded.head, seq: 8 }, sig: decoded.sig }))), 'bad-signature')
    assert.equal(await reason(verifyHead(dagCbor.encode({ head: { ...decoded.head, seq: 0 }, sig: decoded.sig }))), 'malformed')
    assert.equal(await reason(verifyHead(dagCbor.encode({ head: { ...decoded.head, device: 'not-a-peer' }, sig: decoded.sig }))), 'malformed')
    assert.equal(await reason(verifyHead(text('garbage'))), 'malformed')
    assert.equal(await reason(verifyHead(new Uint8Array(5000))), 'too-large')
  })
})
