import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { lstat, mkdir, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { before, describe, it } from 'node:test'
import * as dagPb from '@ipld/dag-pb'
import { chunkCid } from '@homecloud/store'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { partialPathFor, type HomecloudNode } from '../src/index.js'
import { addressOf, startDevice, useDevices } from './helpers.js'

/** path → sha256 of a file, 'dir', or 'link:target': two equal maps are two identical trees. */
async function treeOf (root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  const stack = ['']
  while (stack.length > 0) {
    const rel = stack.pop() as string
    const path = join(root, rel)
    const st = await lstat(path)
    if (st.isDirectory()) {
      out[rel] = 'dir'
      for (const name of await readdir(path)) stack.push(join(rel, name))
    } else if (st.isSymbolicLink()) {
      out[rel] = `link:${await readlink(path)}`
    } else {
      out[rel] = createHash('sha256').update(await readFile(path)).digest('hex')
    }
  }
  return out
}

async function exists (path: string): Promise<boolean> {
  return lstat(path).then(() => true, () => false)
}

async function dagPbBlock (node: dagPb.PBNode): Promise<{ cid: CID, bytes: Uint8Array }> {
  const bytes = dagPb.encode(dagPb.prepare(node))
  return { cid: CID.createV1(dagPb.code, await sha256.digest(bytes)), bytes }
}

describe('content on a device: add, get, blocks', () => {
  const { devices, tempPath } = useDevices()
  let a: HomecloudNode
  let b: HomecloudNode
  let source: string
  let root: string

  before(async () => {
    source = tempPath('source')
    await mkdir(join(source, 'sub', 'deeper'), { recursive: true })
    await writeFile(join(source, 'empty.txt'), '')
    await writeFile(join(source, 'one.txt'), 'x')
    await writeFile(join(source, 'small.bin'), randomBytes(300 * 1024))
    await writeFile(join(source, 'sub', 'big.bin'), randomBytes(3 * 1024 * 1024 + 7))
    await writeFile(join(source, 'sub', 'deeper', 'note.md'), '# hello\n')
    await symlink('../one.txt', join(source, 'sub', 'link'))
    a = await startDevice(devices, 'a', { storePath: tempPath('a-store') })
    b = await startDevice(devices, 'b', { storePath: tempPath('b-store') })
    const added = await a.add(source)
    root = added.cid
    assert.equal(added.files, 5)
    assert.equal(added.provided, false, 'the DHT is off')
  })

  it('gets a tree from a peer: byte-identical, symlinks as links, indexed in place (no block copy), pinned', async () => {
    const output = tempPath('got')
    const events: string[] = []
    const result = await b.get(root, output, { from: [addressOf(a)], onProgress: evt => { events.push(evt.detail.phase) } })
    assert.deepEqual(await treeOf(output), await treeOf(source))
    assert.equal((await lstat(join(output, 'sub', 'link'))).isSymbolicLink(), true)
    assert.deepEqual([result.files, result.directories, result.symlinks], [5, 3, 1])
    assert.equal(result.receivedBytes, result.bytes)
    assert.equal(result.reusedBytes, 0)
    assert.equal(await exists(partialPathFor(output, CID.parse(root))), false, 'the partial output was renamed')
    for (const phase of ['providers', 'dag', 'scan', 'data', 'finish']) assert.ok(events.includes(phase), phase)
    const stat = await b.blocks.stat()
    assert.equal(stat.files, 5, 'every file is indexed where it was written')
    assert.equal(stat.fileBytes, result.bytes)
    assert.ok(stat.blockBytes < 64 * 1024, `only DAG nodes are in the block store (${stat.blockBytes} bytes)`)
    assert.equal(await b.store.isPinned(CID.parse(root)), true)
    // B can now serve it: its chunks are read back from the written files
    const chunk = await chunkCid(await readFile(join(output, 'one.txt')))
    assert.deepEqual(await b.store.get(chunk), new TextEncoder().encode('x'))
  })

  it('resumes an interrupted get: only the missing chunks move', async () => {
    const output = tempPath('resumed')
    // a file B holds no chunk of (B would copy those from its own store)
    const path = tempPath('resume.bin')
    await writeFile(path, randomBytes(4 * 1024 * 1024))
    const big = (await a.add(path)).cid
    const controller = new AbortController()
    await assert.rejects(b.get(big, output, {
      from: [addressOf(a)],
      signal: controller.signal,
      onProgress: evt => { if (evt.detail.phase === 'data' && evt.detail.bytes >= 1024 * 1024) controller.abort() }
    }), { code: 'ERR_ABORTED' })
    assert.equal(await exists(output), false)
    assert.equal(await exists(partialPathFor(output, CID.parse(big))), true, 'the partial output stays for a rerun')
    const again = await b.get(big, output, { from: [addressOf(a)] })
    assert.ok(again.reusedBytes >= 1024 * 1024, `reused ${again.reusedBytes}`)
    assert.ok(again.receivedBytes < again.bytes, `received ${again.receivedBytes} of ${again.bytes}`)
    assert.deepEqual(await readFile(output), await readFile(path))
  })

  it('refuses to overwrite, an unknown CID, a bad CID, a relative output; nothing is written', async () => {
    const existing = tempPath('got')
    await assert.rejects(b.get(root, existing, { from: [addressOf(a)] }), { code: 'ERR_OUTPUT_EXISTS' })
    const unknown = CID.createV1(0x55, await sha256.digest(randomBytes(32))).toString()
    const missing = tempPath('unknown')
    await assert.rejects(b.get(unknown, missing, { from: [addressOf(a)] }), { code: 'ERR_NOT_FOUND' })
    assert.equal(await exists(missing), false)
    await assert.rejects(b.get('not-a-cid', missing, { from: [addressOf(a)] }), { code: 'ERR_INVALID_PARAMETERS' })
    await assert.rejects(b.get(root, 'relative/out', { from: [addressOf(a)] }), { code: 'ERR_INVALID_PARAMETERS' })
    await assert.rejects(b.get(root, missing, { from: ['/ip4/127.0.0.1/tcp/1'] }), { code: 'ERR_INVALID_PARAMETERS' })
    await assert.rejects(b.get(root, missing), { code: 'ERR_NO_PROVIDERS' })
    assert.equal(await exists(missing), false)
  })

  it('refuses hostile names from a peer\'s DAG before writing anything', async () => {
    const chunk = new TextEncoder().encode('owned')
    const chunkId = await chunkCid(chunk)
    await a.store.put(chunkId, chunk)
    for (const name of ['..', 'a/b', 'nul\0', '']) {
      const node = await dagPbBlock({ Data: new UnixFS({ type: 'directory' }).marshal(), Links: [{ Name: name, Hash: chunkId, Tsize: chunk.length }] })
      await a.store.put(node.cid, node.bytes)
      const output = tempPath('hostile')
      await assert.rejects(b.get(node.cid.toString(), output, { from: [addressOf(a)] }), { code: 'ERR_UNSAFE_NAME' }, JSON.stringify(name))
      assert.equal(await exists(output), false)
      assert.equal(await exists(partialPathFor(output, node.cid)), false, 'nothing was created')
    }
    assert.equal(await exists(tempPath('owned')), false)
  })

  it('applies the DAG\'s mode and mtime (without set-id bits); an impossible mtime is refused before writing', async () => {
    // one.txt's chunk: part of the added (pinned) tree, so A serves it to anyone
    const chunk = new TextEncoder().encode('x')
    const chunkId = await chunkCid(chunk)
    const fileNode = async (mtime: { secs: bigint, nsecs?: number }): Promise<{ cid: CID, bytes: Uint8Array }> => dagPbBlock({
      Data: new UnixFS({ type: 'file', blockSizes: [BigInt(chunk.length)], mode: 0o640, mtime }).marshal(),
      Links: [{ Hash: chunkId, Tsize: chunk.length }]
    })
    const doc = await fileNode({ secs: 1_500_000_000n })
    const link = await dagPbBlock({ Data: new UnixFS({ type: 'symlink', data: new TextEncoder().encode('doc.txt'), mtime: { secs: 1_400_000_000n } }).marshal(), Links: [] })
    const folder = await dagPbBlock({
      Data: new UnixFS({ type: 'directory', mode: 0o4750, mtime: { secs: 1_600_000_000n, nsecs: 500_000_000 } }).marshal(),
      Links: [
        { Name: 'doc.txt', Hash: doc.cid, Tsize: doc.bytes.length + chunk.length },
        { Name: 'ln', Hash: link.cid, Tsize: link.bytes.length },
        { Name: 'plain.txt', Hash: chunkId, Tsize: chunk.length }
      ]
    })
    for (const node of [doc, link, folder]) await a.store.put(node.cid, node.bytes)
    const output = tempPath('with-meta')
    await b.get(folder.cid.toString(), output, { from: [addressOf(a)] })
    const [root, file, symlinkStat, plain] = await Promise.all(['', 'doc.txt', 'ln', 'plain.txt'].map(async name => lstat(join(output, name))))
    assert.equal(root.mode & 0o7777, 0o750, 'the set-uid bit is dropped')
    assert.equal(root.mtimeMs, 1_600_000_000_500)
    assert.equal(file.mode & 0o7777, 0o640)
    assert.equal(file.mtimeMs, 1_500_000_000_000)
    assert.equal(symlinkStat.isSymbolicLink(), true)
    assert.equal(symlinkStat.mtimeMs, 1_400_000_000_000)
    assert.notEqual(plain.mtimeMs, 1_500_000_000_000, 'a raw chunk carries no metadata')
    assert.equal(await readFile(join(output, 'doc.txt'), 'utf8'), 'x')

    const bad = await fileNode({ secs: 1n, nsecs: 1_000_000_000 })
    await a.store.put(bad.cid, bad.bytes)
    const badOutput = tempPath('bad-meta')
    await assert.rejects(b.get(bad.cid.toString(), badOutput, { from: [addressOf(a)] }), { code: 'ERR_BAD_DAG' })
    assert.equal(await exists(badOutput), false)
    assert.equal(await exists(partialPathFor(badOutput, bad.cid)), false, 'nothing was created')
  })

  it('never passes on bytes of a file changed after it was indexed: the get fails, nothing is written', async () => {
    const path = tempPath('changing.bin')
    await writeFile(path, randomBytes(200 * 1024))
    const cid = (await a.add(path)).cid
    await writeFile(path, randomBytes(200 * 1024))
    const output = tempPath('changed')
    await assert.rejects(b.get(cid, output, { from: [addressOf(a)] }), { code: 'ERR_NOT_FOUND' })
    assert.equal(await exists(output), false)
  })

  it('blocks: stat, verify and gc (pinned DAGs and file-backed chunks stay)', async () => {
    const verified = await a.blocks.verify()
    assert.deepEqual(verified.bad, [], 'the changed file was dropped when it failed to serve')
    const before = await a.blocks.stat()
    assert.ok(before.blocks > 0 && before.files > 0 && before.pins > 0)
    assert.ok(verified.checked >= before.blocks + before.fileChunks)
    const gc = await a.blocks.gc()
    assert.ok(gc.removedBlocks >= 1, 'the unpinned hostile directory nodes and the loose chunk are gone')
    const afterGc = await a.blocks.stat()
    assert.equal(afterGc.files, before.files)
    assert.equal(afterGc.pins, before.pins)
    // the pinned tree is still complete: B gets it again, from scratch
    const again = await b.get(root, tempPath('after-gc'), { from: [addressOf(a)] })
    assert.deepEqual(await treeOf(tempPath('after-gc')), await treeOf(source))
    assert.equal(again.reusedBytes, again.bytes, 'B already held every chunk (in the files it wrote earlier)')
  })
})
