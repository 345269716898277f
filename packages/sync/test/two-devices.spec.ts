import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, readdir, readFile, readlink, rename, rm, utimes, writeFile, lstat } from 'node:fs/promises'
import { describe, it } from 'node:test'
import {
  encodeSnapshot, entryFromScan, loadSnapshot, nodeFs, planPull, scanShare, tombstoneFromScan,
  type LocalEntry, type ShareEntry
} from '../src/index.js'
import { fixedChunker, removeDir, tempDir } from './helpers.js'
import { applyFrom } from './mem-devices.js'
import type { CID } from 'multiformats/cid'

/** One device's share, wired from the package's parts as the coordinator would (no network: the peer's blocks are read directly). */
class Device {
  readonly index = new Map<string, LocalEntry>()
  /** Chunks fetched into this device's block store. */
  readonly store = new Map<string, Uint8Array>()
  readonly chunkFile = fixedChunker(nodeFs, 64)
  snapshotBlocks = new Map<string, Uint8Array>()
  snapshotRoot?: CID
  fetchedBytes = 0

  constructor (readonly id: string, readonly root: string) {}

  async scan (): Promise<void> {
    for await (const r of scanShare({ fs: nodeFs, root: this.root, chunkFile: this.chunkFile, previous: this.index })) {
      if (r.kind === 'entry') {
        const next = entryFromScan(this.index.get(r.entry.path), r.entry, this.id)
        if (next != null) this.index.set(next.path, next)
      } else if (r.kind === 'deleted') {
        this.index.set(r.path, tombstoneFromScan(this.index.get(r.path) as LocalEntry, this.id, Date.now()))
      } else {
        assert.fail(`scan error ${r.path}: ${r.error.message}`)
      }
    }
    const enc = await encodeSnapshot([...this.index.values()].map(({ local: _l, ...e }): ShareEntry => e))
    this.snapshotRoot = enc.root
    this.snapshotBlocks = new Map(enc.blocks.map(b => [b.cid.toString(), b.bytes]))
  }

  /** Chunks this device can serve: what it hashed from its files, and its block store. */
  serve (cid: CID): Uint8Array | undefined {
    return this.chunkFile.blocks.get(cid.toString()) ?? this.store.get(cid.toString())
  }

  async pull (from: Device): Promise<void> {
    const blocks = { get: async (cid: CID) => from.snapshotBlocks.get(cid.toString()) ?? assert.fail('no block') }
    const remote = await loadSnapshot(from.snapshotRoot as CID, blocks)
    const plan = await planPull({ local: this.index, remote })
    assert.deepEqual(plan.errors, [])
    const result = await applyFrom(plan, {
      fs: nodeFs,
      root: this.root,
      store: this.store,
      peers: [from],
      onFetched: (bytes) => { this.fetchedBytes += bytes.byteLength },
      onApplied: async (entries) => { for (const e of entries) this.index.set(e.path, e) }
    })
    assert.deepEqual(result.errors.map(e => `${e.path}: ${e.error.message}`), [])
  }
}

/** path → content hash or link target, for comparing two folders byte for byte. */
async function tree (root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  const stack = ['']
  while (stack.length > 0) {
    const dir = stack.pop() as string
    for (const name of await readdir(`${root}/${dir}`)) {
      const path = dir === '' ? name : `${dir}/${name}`
      const s = await lstat(`${root}/${path}`)
      if (s.isDirectory()) {
        out[path] = 'dir'
        stack.push(path)
      } else if (s.isSymbolicLink()) out[path] = `-> ${await readlink(`${root}/${path}`)}`
      else out[path] = createHash('sha256').update(await readFile(`${root}/${path}`)).digest('hex')
    }
  }
  return out
}

const A_ID = '12D3KooWAliceAliceAliceAliceAliceAliceAliceAliceAlice'
const B_ID = '12D3KooWBobbyBobbyBobbyBobbyBobbyBobbyBobbyBobbyBobby'

describe('two devices converge (scan → snapshot → plan → apply)', () => {
  it('initial sync, rename without data, concurrent edits, delete without resurrection', async () => {
    const ra = await tempDir()
    const rb = await tempDir()
    try {
      const a = new Device(A_ID, ra)
      const b = new Device(B_ID, rb)
      await mkdir(`${ra}/photos/2024`, { recursive: true })
      const big = randomBytes(64 * 40)
      await writeFile(`${ra}/photos/2024/big.raw`, big)
      await writeFile(`${ra}/notes.txt`, 'first notes')
      await writeFile(`${ra}/doc.txt`, 'shared document')

      await a.scan()
      await b.scan()
      await b.pull(a)
      assert.deepEqual(await tree(rb), await tree(ra), 'initial sync')
      assert.equal(b.fetchedBytes, big.byteLength + 'first notes'.length + 'shared document'.length)
      await b.scan()
      assert.ok([...b.index.values()].every(e => e.version[B_ID] === undefined), 'applied files are not seen as local changes')

      // a rename on A transfers no file data
      await rename(`${ra}/photos/2024/big.raw`, `${ra}/moved.raw`)
      await a.scan()
      const before = b.fetchedBytes
      await b.pull(a)
      assert.equal(b.fetchedBytes, before, 'rename: no bytes fetched')
      assert.deepEqual(await tree(rb), await tree(ra))

      // concurrent edits of the same file: the same winner and conflict copy on both
      await writeFile(`${ra}/doc.txt`, 'edited on A')
      await utimes(`${ra}/doc.txt`, new Date(), new Date(Date.UTC(2024, 0, 1, 10)))
      await writeFile(`${rb}/doc.txt`, 'edited on B, later')
      await utimes(`${rb}/doc.txt`, new Date(), new Date(Date.UTC(2024, 0, 1, 11)))
      await a.scan()
      await b.scan()
      await a.pull(b)
      await b.pull(a)
      await a.scan()
      await b.scan()
      await a.pull(b)
      await b.pull(a)
      const ta = await tree(ra)
      assert.deepEqual(await tree(rb), ta)
      const copy = `doc.conflict-${A_ID.slice(-8)}-20240101-100000.txt`
      assert.equal(await readFile(`${ra}/doc.txt`, 'utf8'), 'edited on B, later')
      assert.equal(await readFile(`${rb}/${copy}`, 'utf8'), 'edited on A')

      // a delete propagates; an old snapshot replayed after a partition does not bring it back
      const oldB = { root: b.snapshotRoot, blocks: b.snapshotBlocks }
      await rm(`${ra}/notes.txt`)
      await a.scan()
      await b.pull(a)
      await assert.rejects(readFile(`${rb}/notes.txt`), { code: 'ENOENT' })
      const stale = new Device(B_ID, rb)
      stale.snapshotRoot = oldB.root
      stale.snapshotBlocks = oldB.blocks
      await a.pull(stale)
      await assert.rejects(readFile(`${ra}/notes.txt`), { code: 'ENOENT' })
      assert.deepEqual(await tree(rb), await tree(ra))
    } finally {
      await removeDir(ra)
      await removeDir(rb)
    }
  })
})
