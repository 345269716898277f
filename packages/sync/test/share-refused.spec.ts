/**
 * A member whose heads hold entries this device refuses for good (a path
 * that climbs out of the share, a file under a link): the rest of the head
 * syncs, the refused entries are named in status, and the head is not
 * pulled again every retry interval; a new head is considered afresh.
 * Real libp2p on loopback, the real share protocol and service.
 */
import assert from 'node:assert/strict'
import { readFile, readlink, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { chunkCid } from '@homecloud/store'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { ChunkUnavailableError, MemoryShareKv, PathRejectedError, SHARE_PROTOCOL, encodeSnapshot, exchangeAnnounce, signHead, type ShareEntry } from '../src/index.js'
import { encodeRecord, MAX_KEPT_REFUSED_PATHS, shareKeys, ShareRecords } from '../src/share-state.js'
import { RefusedEntries } from '../src/refused-entries.js'
import { waitFor } from './helpers.js'
import { readText, shareWithCraftedMember, stopFixture, type MemberFixture } from './share-devices.js'

const RETRY_MS = 200
const BOUND = { timeout: 15_000, interval: 20 }

/** Lets `ms` pass: the window in which something must NOT happen (a retry). */
async function observe (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

describe('entries refused for good are not pulled again every retry', () => {
  let t: MemberFixture
  let seed: Uint8Array
  let seedChunk: { cid: CID, length: number }

  const file = (path: string, seq: number, chunk = seedChunk): ShareEntry => t.member.file(path, chunk, seq)
  const link = (path: string, target: string): ShareEntry => ({
    path, type: 'symlink', size: 0, mtime: 1_700_000_000_000, mode: 0o777, version: { [t.m.peerId.toString()]: 1 }, modifiedBy: t.m.peerId.toString(), target
  })

  before(async () => {
    seed = new TextEncoder().encode('bytes the victim holds already\n')
    seedChunk = { cid: await chunkCid(seed), length: seed.byteLength }
    t = await shareWithCraftedMember('hc-refused-', { retryIntervalMs: RETRY_MS }, async (dir) => { await writeFile(join(dir, 'seed.txt'), seed) })
    await waitFor(() => t.a.shares.status(t.shareId).files === 1, BOUND)
  })

  after(async () => {
    await stopFixture(t)
  })

  it('a head whose only failures are refused paths is pulled once; status names them once each', async () => {
    const first = await t.member.publish([file('../../x', 1), link('escape', '../..'), file('escape/x', 1), file('good-1.txt', 1)], 1)
    await waitFor(async () => await readText(join(t.dir, 'good-1.txt')) === new TextDecoder().decode(seed) &&
      t.a.shares.status(t.shareId).pathErrors.some(e => e.path === 'escape/x'), BOUND)
    assert.equal(await readlink(join(t.dir, 'escape')), '../..', 'the link syncs as a link')
    const asked = t.member.rootAsks.get(first)?.length ?? 0
    assert.ok(asked >= 1)
    await observe(6 * RETRY_MS)
    assert.equal(t.member.rootAsks.get(first)?.length, asked, 'not pulled again in six retry intervals')
    const { pathErrors, peers } = t.a.shares.status(t.shareId)
    for (const [path, reason] of [['../../x', 'dot-segment'], ['escape/x', 'symlinked-parent']]) {
      const errors = pathErrors.filter(e => e.path === path)
      assert.equal(errors.length, 1, `${path} named once: ${JSON.stringify(pathErrors)}`)
      assert.equal(errors[0].code, PathRejectedError.code)
      assert.match(errors[0].message, new RegExp(`rejected \\(${reason}\\)`))
    }
    assert.equal(peers.find(p => p.device === t.m.peerId.toString())?.applied, false, 'not applied in full')
  })

  it('a new head from that member is considered afresh: a refused entry that is fine now arrives', async () => {
    // `escape` becomes a directory: escape/x no longer goes through a link
    const dir: ShareEntry = { ...link('escape', ''), type: 'dir', mode: 0o755, version: { [t.m.peerId.toString()]: 2 } }
    delete dir.target
    await t.member.publish([file('../../x', 1), dir, file('escape/x', 1), file('good-1.txt', 1)], 2)
    await waitFor(async () => await readText(join(t.dir, 'escape', 'x')) === new TextDecoder().decode(seed), BOUND)
    assert.ok((await stat(join(t.dir, 'escape'))).isDirectory())
    // the file is visible once renamed; its step is done once the index records it too
    await waitFor(() => !t.a.shares.status(t.shareId).pathErrors.some(e => e.path === 'escape/x'), BOUND)
    assert.ok(t.a.shares.status(t.shareId).pathErrors.some(e => e.path === '../../x'), 'still named')
  })

  it('a failure that may pass (a chunk no member serves now) is still retried, less and less often; a new connection retries at once', async () => {
    const missing = { cid: CID.createV1(raw.code, await sha256.digest(new TextEncoder().encode('nobody has this'))), length: 15 }
    const third = await t.member.publish([file('../../x', 1), file('missing.bin', 3, missing), file('good-3.txt', 3)], 3)
    await waitFor(() => t.a.shares.status(t.shareId).pathErrors.some(e => e.path === 'missing.bin' && e.code === ChunkUnavailableError.code), BOUND)
    // the first pull, then retries after 1, 2, 4 and 8 retry intervals (each checked on the retry timer's tick)
    await waitFor(() => (t.member.rootAsks.get(third) ?? []).length >= 5, BOUND)
    const times = [...t.member.rootAsks.get(third) ?? []]
    const gaps = times.slice(1).map((t, i) => t - times[i])
    assert.ok(gaps[3] >= 8 * RETRY_MS - 50, `the gap grows: ${gaps.join()}`)
    assert.ok(gaps[2] >= 4 * RETRY_MS - 50, `the gap grows: ${gaps.join()}`)
    assert.ok(gaps[3] > gaps[0] && gaps[2] > gaps[0], `the gap grows: ${gaps.join()}`)
    assert.equal(await readFile(join(t.dir, 'missing.bin')).catch(() => undefined), undefined, 'nothing written without its bytes')
    // status says what waits and when it is tried next (once the pull that asked last has ended)
    const waiting = await waitFor(() => {
      const s = t.a.shares.status(t.shareId)
      return s.nextRetryAt != null && s.nextRetryAt >= times[4] + 16 * RETRY_MS ? s : undefined
    }, BOUND)
    assert.equal(waiting?.waitingFiles, 1, 'missing.bin')
    // the folder is not complete: an error that says why, not idle
    assert.equal(waiting?.state, 'error')
    assert.equal(waiting?.lastError?.code, ChunkUnavailableError.code)
    assert.match(waiting?.lastError?.message ?? '', /1 file waits for chunks no member online serves/)
    // a rescan ending (nothing changed here) does not make the folder complete: the error stays
    const scansBefore = t.a.shares.status(t.shareId).lastScanAt ?? 0
    await t.a.shares.rescan(t.shareId)
    const rescanned = await waitFor(() => {
      const s = t.a.shares.status(t.shareId)
      return (s.lastScanAt ?? 0) > scansBefore && s.state !== 'scanning' ? s : undefined
    }, BOUND)
    assert.equal(rescanned?.state, 'error')
    assert.equal(rescanned?.lastError?.code, ChunkUnavailableError.code)
    // the next retry waits 16 intervals; the member connecting again (it may hold the chunks now) ends the wait
    const last = times[4]
    await t.a.node.hangUp(t.m.peerId)
    await waitFor(() => t.m.node.getConnections(t.a.peerId).length === 0, BOUND)
    await t.m.node.dial(t.a.peerId)
    await waitFor(() => (t.member.rootAsks.get(third) ?? []).length >= 6, BOUND)
    const again = (t.member.rootAsks.get(third) ?? [])[5]
    assert.ok(again - last < 16 * RETRY_MS, `retried ${again - last} ms after the last pull, not after the backoff`)
  })

  it('a new head of that member in another share of the swarm (one this device does not hold) retries at once too', async () => {
    const [third] = [...t.member.rootAsks.entries()].filter(([, asks]) => asks.length >= 6).map(([root]) => root)
    assert.ok(third != null, 'the head of the test before')
    const asks = (): number[] => t.member.rootAsks.get(third) ?? []
    // after the reconnection's retry, 1, 2 and 4 intervals: the next waits 8
    await waitFor(() => asks().length >= 9, BOUND)
    const last = asks()[8]
    // the member now serves a chunk through a share of its own in the swarm: it says so by a new head there
    const swarm = t.a.shares.status(t.shareId).share.swarm
    const stash = 'f'.repeat(32)
    const snapshot = await encodeSnapshot([])
    const head = await signHead({ share: stash, device: t.m.peerId.toString(), seq: 1, snapshot: snapshot.root }, t.m.privateKey)
    const { stream, release } = await t.m.swarms.gate.dial(swarm, t.a.peerId, SHARE_PROTOCOL)
    try {
      await exchangeAnnounce(stream, [{ id: stash, name: 'stash', swarm, head }], { signal: AbortSignal.timeout(5000) })
    } finally {
      release()
    }
    assert.ok(t.a.shares.offers().some(o => o.id === stash), 'offered')
    await waitFor(() => asks().length >= 10, BOUND)
    const again = asks()[9]
    assert.ok(again - last < 8 * RETRY_MS, `retried ${again - last} ms after the last pull, not after the backoff`)
  })
})

describe('RefusedEntries', () => {
  const head1 = CID.parse('bafyreihck5tqzmmgdtlpu7oancm34qbkxxpe2tc2eddx5trihimprzolrq')
  const head2 = CID.parse('bafyreicjuszrce3kkaxybdo66tc6v27ye5crhquyiswvpx7w65noum27oq')
  const refusedError = new PathRejectedError('../x', 'dot-segment', 'climbs out')

  it('remembers refused paths per head; settles only when nothing else failed; a new head or a local change starts afresh', () => {
    const r = new RefusedEntries()
    assert.deepEqual([...r.paths('d', head1)], [])
    assert.deepEqual(r.record('d', head1, [{ path: '../x', error: refusedError }, { path: 'f', error: new ChunkUnavailableError('f: 1 chunk') }]), { retry: true })
    assert.deepEqual([...r.paths('d', head1)], ['../x'])
    assert.equal(r.settled('d', head1), false, 'a chunk may come: retried')
    // the retry of the same head skips ../x; only the chunk failed then passed
    assert.deepEqual(r.record('d', head1, []), { retry: false })
    assert.equal(r.settled('d', head1), true)
    assert.deepEqual([...r.paths('e', head1)], [], 'per device')
    assert.equal(r.settled('d', head2), false, 'a new head is considered afresh')
    assert.deepEqual([...r.paths('d', head1)], [], 'and the old head is forgotten')
    r.record('d', head2, [{ path: '../x', error: refusedError }])
    assert.equal(r.settled('d', head2), true)
    r.clear()
    assert.equal(r.settled('d', head2), false)
    r.record('d', head2, [{ path: '../x', error: refusedError }])
    r.forget('d')
    assert.deepEqual([...r.paths('d', head2)], [])
  })

  it('a pull without any failure leaves nothing behind', () => {
    const r = new RefusedEntries()
    assert.deepEqual(r.record('d', head1, []), { retry: false })
    assert.equal(r.settled('d', head1), false)
    assert.equal(r.kept('d'), undefined)
  })

  it('is kept in the share\'s records and starts from them: at most MAX_KEPT_REFUSED_PATHS paths; a record it cannot read is skipped', async () => {
    const records = new ShareRecords(new MemoryShareKv())
    const r = new RefusedEntries()
    r.record('d', head1, [{ path: '../x', error: refusedError }])
    r.record('e', head2, Array.from({ length: MAX_KEPT_REFUSED_PATHS + 5 }, (_, i) => ({ path: `../${i}`, error: refusedError })))
    for (const device of r.devices()) await records.putRefused('s1', device, r.kept(device))
    await records.putRefused('s2', 'd', r.kept('d'))
    await records.kv.batch([{ type: 'put', key: shareKeys.refused('s1', 'bad'), value: encodeRecord({ snapshot: 'not a cid', paths: [], settled: true }) }])
    const kept = await records.refused('s1')
    assert.deepEqual([...kept.keys()].sort(), ['d', 'e'], 'per share; the unreadable record skipped')
    assert.equal(kept.get('e')?.paths.length, MAX_KEPT_REFUSED_PATHS)
    const again = new RefusedEntries(kept)
    assert.equal(again.settled('d', head1), true, 'settled after a restart too')
    assert.deepEqual([...again.paths('d', head1)], ['../x'])
    assert.equal(again.settled('d', head2), false, 'a new head is still considered afresh')
    await records.putRefused('s1', 'd', undefined)
    assert.deepEqual([...(await records.refused('s1')).keys()], ['e'], 'forgotten')
    await records.deleteShare('s1')
    assert.equal((await records.refused('s1')).size, 0, 'removed with the share')
    assert.equal((await records.refused('s2')).size, 1)
  })
})

describe('entries refused for good stay so across a restart', () => {
  let t: MemberFixture
  let seed: Uint8Array

  before(async () => {
    seed = new TextEncoder().encode('bytes the device holds already\n')
    t = await shareWithCraftedMember('hc-refused-restart-', { retryIntervalMs: RETRY_MS }, async (dir) => { await writeFile(join(dir, 'seed.txt'), seed) })
    await waitFor(() => t.a.shares.status(t.shareId).files === 1, BOUND)
  })

  after(async () => {
    await stopFixture(t)
  })

  it('a head whose only failures were refused paths is not pulled again after the share service restarts', async () => {
    const chunk = { cid: await chunkCid(seed), length: seed.byteLength }
    const root = await t.member.publish([t.member.file('../../x', chunk), t.member.file('good.txt', chunk)], 1)
    await waitFor(async () => await readText(join(t.dir, 'good.txt')) === new TextDecoder().decode(seed) &&
      t.a.shares.status(t.shareId).pathErrors.some(e => e.path === '../../x'), BOUND)
    // the pull is over once the share is settled (a rescan waits for the queue and every apply)
    await t.a.shares.rescan(t.shareId)
    const asked = t.member.rootAsks.get(root)?.length ?? 0
    assert.ok(asked >= 1)
    await t.a.shares.stop()
    await t.a.shares.start()
    // the start scans, then asks for a pull of every member's head: the rescan waits for all of that
    await t.a.shares.rescan(t.shareId)
    assert.equal(t.a.shares.status(t.shareId).peers.find(p => p.device === t.m.peerId.toString())?.seq, 1, 'the head is known after the restart')
    assert.equal(t.member.rootAsks.get(root)?.length, asked, 'not pulled again')
  })
})
