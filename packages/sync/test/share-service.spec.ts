import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdir, readFile, rename, rm, symlink, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { chunkCid } from '@homecloud/store'
import { CID } from 'multiformats/cid'
import { SHARE_PROTOCOL, exchangeAnnounce, requestBlocks } from '../src/index.js'
import { removeDir, waitFor } from './helpers.js'
import { craftedMember, createDevice, readText, sameTree, stopDevice, twoDevicesWithDocs, type TestDevice } from './share-devices.js'

const BOUND = { timeout: 15_000, interval: 25 }

describe('share service: two devices in one swarm', () => {
  let root: string
  let a: TestDevice
  let b: TestDevice
  let dirA: string
  let dirB: string
  let shareId: string

  before(async () => {
    ({ root, dirA, dirB, a, b } = await twoDevicesWithDocs('hc-share-'))
  })

  after(async () => {
    await stopDevice(a)
    await stopDevice(b)
    await removeDir(root)
  })

  it('refuses bad input and changes nothing', async () => {
    await assert.rejects(a.shares.addShare('relative/path', { swarm: 'family' }), { code: 'ERR_INVALID_PARAMETERS' })
    await assert.rejects(a.shares.addShare(join(root, 'missing'), { swarm: 'family' }), { code: 'ERR_INVALID_PARAMETERS' })
    await assert.rejects(a.shares.addShare(dirA, { swarm: 'no-such-swarm' }), { code: 'ERR_NOT_FOUND' })
    await assert.rejects(a.shares.addShare(dirA, { swarm: 'family', mode: 'both-ways' as never }), { code: 'ERR_INVALID_PARAMETERS' })
    await assert.rejects(b.shares.acceptShare('0123abcd', join(root, 'b', 'x')), { code: 'ERR_SHARE_NOT_FOUND' })
    assert.throws(() => a.shares.status('nope'), { code: 'ERR_SHARE_NOT_FOUND' })
    assert.deepEqual(a.shares.list(), [])
  })

  it('initial sync of a folder through offer and accept', async () => {
    await writeFile(join(dirA, 'hello.txt'), 'hello v1')
    await writeFile(join(dirA, 'sub', 'big.bin'), randomBytes(1536 * 1024))
    await writeFile(join(dirA, 'doc.txt'), 'shared doc')
    await writeFile(join(dirA, 'x.txt'), 'x original')
    await writeFile(join(dirA, 'y.txt'), 'y to delete')
    const info = await a.shares.addShare(dirA, { swarm: 'family', name: 'docs' })
    shareId = info.id
    await assert.rejects(a.shares.addShare(join(dirA, 'sub'), { swarm: 'family' }), { code: 'ERR_SHARE_EXISTS' })
    await waitFor(() => b.shares.offers().some(o => o.id === shareId), BOUND)
    assert.equal(b.shares.offers()[0].name, 'docs')
    await b.shares.acceptShare(shareId, dirB)
    await waitFor(async () => sameTree(dirA, dirB), BOUND)
    await waitFor(() => a.shares.status('docs').peers.some(p => p.inSync), BOUND)
    const status = b.shares.status('docs')
    assert.equal(status.files, 5)
    assert.equal(status.pathErrors.length, 0)
    // B's store serves the pulled files' chunks: recorded by the apply (indexFiles), never hashed again by B's scan
    await waitFor(async () => (await b.store.stat()).files === 5, BOUND)
  })

  it('edits flow both ways; the replaced version is kept in history and restores', async () => {
    await writeFile(join(dirA, 'hello.txt'), 'hello v2 from A')
    await waitFor(async () => await readText(join(dirB, 'hello.txt')) === 'hello v2 from A', BOUND)
    await writeFile(join(dirB, 'from-b.txt'), 'made on B')
    await waitFor(async () => await readText(join(dirA, 'from-b.txt')) === 'made on B', BOUND)

    const versions = b.shares.history(shareId, 'hello.txt')
    assert.equal(versions.length, 1)
    assert.equal(versions[0].reason, 'replaced')
    const out = join(root, 'restored.txt')
    await b.shares.restore(shareId, 'hello.txt', { to: out })
    assert.equal(await readFile(out, 'utf8'), 'hello v1')
    await assert.rejects(b.shares.restore(shareId, 'hello.txt', { to: out }), { code: 'ERR_LOCAL_CHANGED' }, 'never overwrites')
    await assert.rejects(b.shares.restore(shareId, 'hello.txt', { version: 999 }), { code: 'ERR_VERSION_NOT_FOUND' })
    // restored in place, it is a new local change and reaches A
    await b.shares.restore(shareId, 'hello.txt')
    await waitFor(async () => await readText(join(dirA, 'hello.txt')) === 'hello v1', BOUND)
  })

  it('a rename transfers no chunk data', async () => {
    await waitFor(async () => sameTree(dirA, dirB), BOUND)
    const before = b.exchange.stats().bytesReceived
    await rename(join(dirA, 'sub', 'big.bin'), join(dirA, 'moved.bin'))
    await waitFor(async () => sameTree(dirA, dirB), BOUND)
    assert.equal(b.exchange.stats().bytesReceived, before)
  })

  it('concurrent edits give the same conflict copy on both; an edit beats a delete', async () => {
    await b.shares.stop()
    await writeFile(join(dirA, 'doc.txt'), 'edited on A')
    await utimes(join(dirA, 'doc.txt'), new Date(), new Date(Date.UTC(2024, 0, 1, 10)))
    await rm(join(dirA, 'x.txt'))
    await a.shares.rescan(shareId)
    await writeFile(join(dirB, 'doc.txt'), 'edited on B, later')
    await utimes(join(dirB, 'doc.txt'), new Date(), new Date(Date.UTC(2024, 0, 1, 11)))
    await writeFile(join(dirB, 'x.txt'), 'x edited on B')
    await b.shares.start()
    const copy = `doc.conflict-${a.peerId.toString().slice(-8)}-20240101-100000.txt`
    await waitFor(async () => await readText(join(dirB, copy)) === 'edited on A' && await readText(join(dirA, copy)) === 'edited on A', BOUND)
    await waitFor(async () => sameTree(dirA, dirB), BOUND)
    assert.equal(await readText(join(dirA, 'doc.txt')), 'edited on B, later')
    assert.equal(await readText(join(dirA, 'x.txt')), 'x edited on B', 'the edit beat the delete')
  })

  it('a delete propagates and does not come back', async () => {
    await rm(join(dirA, 'y.txt'))
    await waitFor(async () => await readText(join(dirB, 'y.txt')) === undefined, BOUND)
    assert.equal(b.shares.history(shareId, 'y.txt')[0]?.reason, 'deleted')
    // B restarts (a rescan from scratch of its folder): y.txt stays gone everywhere
    await b.shares.stop()
    await b.shares.start()
    await b.shares.rescan(shareId)
    await waitFor(async () => sameTree(dirA, dirB), BOUND)
    assert.equal(await readText(join(dirA, 'y.txt')), undefined)
  })

  it('an outsider cannot get heads, snapshot blocks or chunks', async () => {
    const c = await createDevice('c', join(root, 'c'))
    try {
      await c.swarms.create('other')
      await c.node.dial(a.node.getMultiaddrs())
      const refusedBefore = a.swarms.stats().gate.refused[SHARE_PROTOCOL] ?? 0
      const stream = await c.node.dialProtocol(a.peerId, SHARE_PROTOCOL)
      await assert.rejects(exchangeAnnounce(stream, [], { signal: AbortSignal.timeout(5000) }))
      await waitFor(() => (a.swarms.stats().gate.refused[SHARE_PROTOCOL] ?? 0) > refusedBefore, BOUND)
      // a chunk A holds (hello.txt is one chunk) is answered like one it does not hold
      const cid = await chunkCid(await readFile(join(dirA, 'hello.txt')))
      assert.equal(a.shares.policyFor(b.peerId, cid), true)
      assert.equal(a.shares.policyFor(c.peerId, cid), false)
      await assert.rejects(c.exchange.fetch([cid], { peers: [a.peerId], signal: AbortSignal.timeout(5000) }))
      assert.equal(await c.store.has(cid), false)
      const head = a.shares.status(shareId).head
      assert.ok(head != null)
      const blocks = await c.node.dialProtocol(a.peerId, SHARE_PROTOCOL)
      await assert.rejects(requestBlocks(blocks, shareId, [CID.parse(head.snapshot)], { signal: AbortSignal.timeout(5000) }))
    } finally {
      await stopDevice(c)
    }
  })

  it('a member sending a snapshot with ../../x: that entry fails alone, the canary is untouched', async () => {
    const canary = join(root, 'a', 'x')
    await writeFile(canary, 'canary')
    const m = await createDevice('m', join(root, 'm'), {}, false)
    try {
      const { code } = await a.swarms.invite('family')
      const swarm = (await m.swarms.join(code)).id
      const bytes = await readFile(join(dirA, 'x.txt'))
      const chunk = { cid: await chunkCid(bytes), length: bytes.byteLength }
      const member = await craftedMember(m, a, swarm, shareId)
      await member.publish([member.file('../../x', chunk, 1, Date.now()), member.file('evil-ok.txt', chunk, 1, Date.now())], 1)
      await waitFor(async () => await readText(join(dirA, 'evil-ok.txt')) === bytes.toString(), BOUND)
      const errors = a.shares.status(shareId).pathErrors
      assert.ok(errors.some(e => e.path === '../../x' && e.code === 'ERR_PATH_REJECTED'), JSON.stringify(errors))
      assert.equal(await readFile(canary, 'utf8'), 'canary')
    } finally {
      await stopDevice(m)
    }
  })

  it('receive-only: local changes are not sent and revert; a full disk pauses the share', async () => {
    const d = await createDevice('d', join(root, 'd'))
    const e = await createDevice('e', join(root, 'e'), { minFreeFraction: 0.999999 })
    try {
      for (const device of [d, e]) {
        const { code } = await a.swarms.invite('family')
        await device.swarms.join(code)
      }
      const dirD = join(root, 'd', 'docs')
      await waitFor(() => d.shares.offers().length === 1 && e.shares.offers().length === 1, BOUND)
      await d.shares.acceptShare(shareId, dirD, { mode: 'receive-only' })
      await e.shares.acceptShare(shareId, join(root, 'e', 'docs'))
      await waitFor(async () => sameTree(dirA, dirD), BOUND)

      const original = await readFile(join(dirA, 'from-b.txt'), 'utf8')
      await writeFile(join(dirD, 'from-b.txt'), 'changed on the backup box')
      await writeFile(join(dirD, 'local-only.txt'), 'added on the backup box')
      await d.shares.rescan(shareId)
      assert.equal(d.shares.status(shareId).locallyChanged, 2)
      assert.equal(a.shares.status(shareId).peers.find(p => p.device === d.peerId.toString())?.seq, undefined, 'no head is sent')
      // type changes, not scanned yet (revert scans first): a synced file becomes a directory with a file, a synced directory a link
      await rm(join(dirD, 'hello.txt'))
      await mkdir(join(dirD, 'hello.txt'))
      await writeFile(join(dirD, 'hello.txt', 'inner.txt'), 'inside')
      await rm(join(dirD, 'sub'), { recursive: true })
      await symlink('from-b.txt', join(dirD, 'sub'))
      assert.deepEqual(await d.shares.revert(shareId), { reverted: 5, failed: [], failedTotal: 0 })
      assert.equal(await readText(join(dirD, 'from-b.txt')), original)
      assert.equal(await readText(join(dirD, 'hello.txt')), await readText(join(dirA, 'hello.txt')))
      assert.equal(await readText(join(dirD, 'local-only.txt')), undefined)
      assert.equal(d.shares.status(shareId).locallyChanged, 0)
      assert.ok(await sameTree(dirA, dirD))
      // a directory added here holding a file the index never knows (ignored): that path fails alone, named in the result
      await writeFile(join(dirD, '.homecloudignore'), '*.tmp\n')
      await mkdir(join(dirD, 'added'))
      await writeFile(join(dirD, 'added', 'x.txt'), 'added')
      await writeFile(join(dirD, 'added', 'keep.tmp'), 'ignored')
      const partly = await d.shares.revert(shareId)
      assert.deepEqual(partly.failed.map(f => f.path), ['added'], JSON.stringify(partly))
      assert.equal(partly.failedTotal, 1)
      assert.equal(partly.reverted, 1, 'added/x.txt')
      assert.equal(await readText(join(dirD, 'added', 'x.txt')), undefined)
      assert.match(partly.failed[0].message, /keep\.tmp/)
      assert.equal(typeof partly.failed[0].code, 'string')
      assert.equal(await readText(join(dirD, 'added', 'keep.tmp')), 'ignored', 'never deleted')
      assert.ok(d.shares.status(shareId).pathErrors.some(e => e.path === 'added' && e.code === partly.failed[0].code), 'status names it too')
      await rm(join(dirD, 'added'), { recursive: true })
      await rm(join(dirD, '.homecloudignore'))
      await assert.rejects(a.shares.revert(shareId), { code: 'ERR_INVALID_PARAMETERS' })

      await waitFor(() => e.shares.status(shareId).state === 'paused', BOUND)
      const status = e.shares.status(shareId)
      assert.equal(status.lastError?.code, 'ERR_DISK_FULL')
      assert.ok(status.needFiles > 0)
    } finally {
      await stopDevice(d)
      await stopDevice(e)
    }
  })
})
