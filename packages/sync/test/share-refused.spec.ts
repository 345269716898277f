/**
 * A member whose heads hold entries this device refuses for good (a path
 * that climbs out of the share, a file under a link): the rest of the head
 * syncs, the refused entries are named in status, and the head is not
 * pulled again every retry interval; a new head is considered afresh.
 * Real libp2p on loopback, the real share protocol and service.
 */
import assert from 'node:assert/strict'
import { mkdir, readFile, readlink, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { chunkCid } from '@homecloud/store'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { ChunkUnavailableError, PathRejectedError, SHARE_PROTOCOL, encodeSnapshot, exchangeAnnounce, serveShareStream, signHead, type ShareEntry } from '../src/index.js'
import { RefusedEntries } from '../src/refused-entries.js'
import { removeDir, tempDir, waitFor } from './helpers.js'
import { createDevice, readText, stopDevice, type TestDevice } from './share-devices.js'

const RETRY_MS = 200
const BOUND = { timeout: 15_000, interval: 20 }

/** Lets `ms` pass: the window in which something must NOT happen (a retry). */
async function observe (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

describe('entries refused for good are not pulled again every retry', () => {
  let root: string
  let dirA: string
  let a: TestDevice
  let m: TestDevice
  let shareId: string
  let swarm: string
  /** How often each snapshot root was asked of the member. */
  const rootAsked = new Map<string, number>()
  /** When (ms) each snapshot root was asked. */
  const rootTimes = new Map<string, number[]>()
  const roots = new Set<string>()
  let blocks = new Map<string, Uint8Array>()
  let announced: Array<{ id: string, name: string, swarm: string, head: Uint8Array }> = []
  let seed: Uint8Array
  let seedChunk: { cid: CID, length: number }

  const file = (path: string, seq: number, chunk = seedChunk, size = seed.byteLength): ShareEntry => ({
    path, type: 'file', size, mtime: 1_700_000_000_000, mode: 0o644, version: { [m.peerId.toString()]: seq }, modifiedBy: m.peerId.toString(), chunks: [chunk]
  })
  const link = (path: string, target: string): ShareEntry => ({
    path, type: 'symlink', size: 0, mtime: 1_700_000_000_000, mode: 0o777, version: { [m.peerId.toString()]: 1 }, modifiedBy: m.peerId.toString(), target
  })

  /** Serves a new head of the member's with `entries` and tells the victim. */
  async function publish (entries: ShareEntry[], seq: number): Promise<string> {
    const snapshot = await encodeSnapshot(entries)
    blocks = new Map(snapshot.blocks.map(b => [b.cid.toString(), b.bytes]))
    roots.add(snapshot.root.toString())
    const head = await signHead({ share: shareId, device: m.peerId.toString(), seq, snapshot: snapshot.root }, m.privateKey)
    announced = [{ id: shareId, name: 'docs', swarm, head }]
    const { stream, release } = await m.swarms.gate.dial(swarm, a.peerId, SHARE_PROTOCOL)
    try {
      await exchangeAnnounce(stream, announced, { signal: AbortSignal.timeout(5000) })
    } finally {
      release()
    }
    return snapshot.root.toString()
  }

  before(async () => {
    root = await tempDir('hc-refused-')
    dirA = join(root, 'a', 'docs')
    await mkdir(dirA, { recursive: true })
    seed = new TextEncoder().encode('bytes the victim holds already\n')
    seedChunk = { cid: await chunkCid(seed), length: seed.byteLength }
    await writeFile(join(dirA, 'seed.txt'), seed)
    a = await createDevice('a', join(root, 'a'), { retryIntervalMs: RETRY_MS })
    m = await createDevice('m', join(root, 'm'), {}, false)
    swarm = (await a.swarms.create('family')).id
    await m.swarms.join((await a.swarms.invite('family')).code)
    shareId = (await a.shares.addShare(dirA, { swarm: 'family', name: 'docs' })).id
    await waitFor(() => a.shares.status(shareId).files === 1, BOUND)
    await m.swarms.gate.handle(SHARE_PROTOCOL, async (stream) => {
      await serveShareStream(stream, {
        announce: async () => announced,
        bindShare: () => {},
        block: async (_share, cid) => {
          const key = cid.toString()
          if (roots.has(key)) {
            rootAsked.set(key, (rootAsked.get(key) ?? 0) + 1)
            rootTimes.set(key, [...rootTimes.get(key) ?? [], Date.now()])
          }
          return blocks.get(key)
        }
      }, { signal: AbortSignal.timeout(5000) })
    })
  })

  after(async () => {
    await stopDevice(a)
    await stopDevice(m)
    await removeDir(root)
  })

  it('a head whose only failures are refused paths is pulled once; status names them once each', async () => {
    const first = await publish([file('../../x', 1), link('escape', '../..'), file('escape/x', 1), file('good-1.txt', 1)], 1)
    await waitFor(async () => await readText(join(dirA, 'good-1.txt')) === new TextDecoder().decode(seed) &&
      a.shares.status(shareId).pathErrors.some(e => e.path === 'escape/x'), BOUND)
    assert.equal(await readlink(join(dirA, 'escape')), '../..', 'the link syncs as a link')
    const asked = rootAsked.get(first) ?? 0
    assert.ok(asked >= 1)
    await observe(6 * RETRY_MS)
    assert.equal(rootAsked.get(first), asked, 'not pulled again in six retry intervals')
    const { pathErrors, peers } = a.shares.status(shareId)
    for (const [path, reason] of [['../../x', 'dot-segment'], ['escape/x', 'symlinked-parent']]) {
      const errors = pathErrors.filter(e => e.path === path)
      assert.equal(errors.length, 1, `${path} named once: ${JSON.stringify(pathErrors)}`)
      assert.equal(errors[0].code, PathRejectedError.code)
      assert.match(errors[0].message, new RegExp(`rejected \\(${reason}\\)`))
    }
    assert.equal(peers.find(p => p.device === m.peerId.toString())?.applied, false, 'not applied in full')
  })

  it('a new head from that member is considered afresh: a refused entry that is fine now arrives', async () => {
    // `escape` becomes a directory: escape/x no longer goes through a link
    const dir: ShareEntry = { ...link('escape', ''), type: 'dir', mode: 0o755, version: { [m.peerId.toString()]: 2 } }
    delete dir.target
    await publish([file('../../x', 1), dir, file('escape/x', 1), file('good-1.txt', 1)], 2)
    await waitFor(async () => await readText(join(dirA, 'escape', 'x')) === new TextDecoder().decode(seed), BOUND)
    assert.ok((await stat(join(dirA, 'escape'))).isDirectory())
    // the file is visible once renamed; its step is done once the index records it too
    await waitFor(() => !a.shares.status(shareId).pathErrors.some(e => e.path === 'escape/x'), BOUND)
    assert.ok(a.shares.status(shareId).pathErrors.some(e => e.path === '../../x'), 'still named')
  })

  it('a failure that may pass (a chunk no member serves now) is still retried, less and less often; a new connection retries at once', async () => {
    const missing = { cid: CID.createV1(raw.code, await sha256.digest(new TextEncoder().encode('nobody has this'))), length: 15 }
    const third = await publish([file('../../x', 1), file('missing.bin', 3, missing, 15), file('good-3.txt', 3)], 3)
    await waitFor(() => a.shares.status(shareId).pathErrors.some(e => e.path === 'missing.bin' && e.code === ChunkUnavailableError.code), BOUND)
    // the first pull, then retries after 1, 2, 4 and 8 retry intervals (each checked on the retry timer's tick)
    await waitFor(() => (rootTimes.get(third) ?? []).length >= 5, BOUND)
    const times = rootTimes.get(third) ?? []
    const gaps = times.slice(1).map((t, i) => t - times[i])
    assert.ok(gaps[3] >= 8 * RETRY_MS - 50, `the gap grows: ${gaps.join()}`)
    assert.ok(gaps[2] >= 4 * RETRY_MS - 50, `the gap grows: ${gaps.join()}`)
    assert.ok(gaps[3] > gaps[0] && gaps[2] > gaps[0], `the gap grows: ${gaps.join()}`)
    assert.equal(await readFile(join(dirA, 'missing.bin')).catch(() => undefined), undefined, 'nothing written without its bytes')
    // the next retry waits 16 intervals; the member connecting again (it may hold the chunks now) ends the wait
    const last = times[4]
    await a.node.hangUp(m.peerId)
    await waitFor(() => m.node.getConnections(a.peerId).length === 0, BOUND)
    await m.node.dial(a.peerId)
    await waitFor(() => (rootTimes.get(third) ?? []).length >= 6, BOUND)
    const again = (rootTimes.get(third) ?? [])[5]
    assert.ok(again - last < 16 * RETRY_MS, `retried ${again - last} ms after the last pull, not after the backoff`)
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
  })
})
