/**
 * A hostile member of the swarm (it joined by invite, so the roster gate
 * lets it in) against a real victim device: snapshots whose paths climb out
 * of the share, are absolute, hold NUL, are too long, are invalid on other
 * filesystems, collide, or write through a link; and chunks whose bytes do
 * not match their CID. Real libp2p on loopback, the real share protocol, a
 * head signed by the hostile device's own key (it verifies: only the
 * content is bad).
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { access, mkdir, readdir, readFile, readlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { chunkCid } from '@homecloud/store'
import { SERVICE } from '../src/libp2p-options.js'
import { createHomecloudNode, type HomecloudNode, type ShareStatus } from '../src/index.js'
import { HostilePeer, fileEntry, linkEntry } from './hostile-peer.js'
import { startDevice, stopAll, tempDir, testConfig, waitFor } from './helpers.js'
import type { ChunkExchange } from '@homecloud/exchange'
import type { ShareEntry } from '@homecloud/sync'

const CANARY = 'canary: must never change\n'
const TEMP_PREFIX = '.homecloud-tmp-'

async function exists (path: string): Promise<boolean> {
  return access(path).then(() => true, () => false)
}

describe('a hostile member serving bad snapshots and bad chunks', () => {
  const devices: HomecloudNode[] = []
  let dir: Awaited<ReturnType<typeof tempDir>>
  let victim: HomecloudNode
  let honest: HomecloudNode
  let hostile: HostilePeer
  let root: string
  let share: { id: string, name: string, swarm: string }
  /** The entries of the hostile device's first snapshot that must arrive. */
  const good: Record<string, Buffer> = {
    'good.txt': Buffer.from('a good file from a bad peer\n'),
    'dir/good.bin': randomBytes(300 * 1024),
    'README.txt': Buffer.from('the first spelling of a case-collision pair\n')
  }
  /** Refused paths and the reason each must be refused with. */
  const refused: Array<[string, string]> = [
    ['../../etc/x', 'dot-segment'],
    ['a/../../x', 'dot-segment'],
    ['/abs/x', 'absolute'],
    ['nul\u0000name', 'control-char'],
    ['n'.repeat(300), 'name-too-long'],
    ['CON', 'reserved-name'],
    ['aux.txt', 'reserved-name'],
    ['trailing.', 'trailing-dot-or-space'],
    ['trailing ', 'trailing-dot-or-space'],
    ['..\\..\\x', 'backslash'],
    ['C:evil', 'drive-letter'],
    ['.homecloud-tmp-evil', 'internal-name'],
    ['Readme.txt', 'collision'],
    // `escape` arrives as a link (to ../../etc, outside the share): nothing is ever written through it
    ['escape/x', 'symlinked-parent']
  ]
  const entries: ShareEntry[] = []
  let status: ShareStatus

  before(async () => {
    dir = await tempDir()
    // the victim's share is <dir>/v/share: ../../etc/x, a/../../x and escape/x would land on these canaries
    root = join(dir.path, 'v', 'share')
    await mkdir(join(dir.path, 'etc'), { recursive: true })
    await mkdir(join(dir.path, 'v'), { recursive: true })
    await writeFile(join(dir.path, 'etc', 'x'), CANARY)
    await writeFile(join(dir.path, 'v', 'x'), CANARY)
    const tuning = { watchDebounceMs: 50, retryIntervalMs: 1000 }
    victim = await startDevice(devices, 'victim', { storePath: join(dir.path, 'victim-store'), shares: tuning })
    honest = await startDevice(devices, 'honest', { storePath: join(dir.path, 'honest-store'), shares: tuning })
    const config = await testConfig('hostile', { storePath: join(dir.path, 'hostile-store') })
    const device = await createHomecloudNode(config)
    devices.push(device)
    hostile = await HostilePeer.take(device, config.privateKey)

    const swarm = await victim.swarms.create('family')
    for (const member of [honest, device]) await member.swarms.join((await victim.swarms.invite('family')).code)
    share = { id: randomBytes(16).toString('hex'), name: 'docs', swarm: swarm.id }

    const me = hostile.id
    for (const [path, bytes] of Object.entries(good)) {
      const { entry, chunks } = await fileEntry(path, bytes, me)
      entries.push(entry)
      for (const [cid, piece] of chunks) hostile.chunks.set(cid.toString(), piece)
    }
    entries.push(linkEntry('escape', '../../etc', me))
    for (const [path] of refused) {
      // served with content, so only the path check stands between it and the disk
      const { entry, chunks } = await fileEntry(path, Buffer.from(`written by the hostile peer at ${path}\n`), me)
      entries.push(entry)
      for (const [cid, piece] of chunks) hostile.chunks.set(cid.toString(), piece)
    }
  })

  after(async () => {
    await hostile?.stop()
    await stopAll(devices)
    await dir.remove()
  })

  it('refuses every bad path alone with a clear error in status; canaries untouched; the good entries of the same snapshot sync', async () => {
    const absBefore = await exists('/abs/x')
    await hostile.publish(share, entries, 1)
    await hostile.announceTo(victim.peerId)
    await waitFor(() => victim.shares.offers().some(o => o.id === share.id), { timeout: 10_000, what: 'the offer from the hostile member' })
    await victim.shares.acceptShare(share.id, root)

    await waitFor(async () => {
      for (const [path, bytes] of Object.entries(good)) {
        if (!(await readFile(join(root, path)).catch(() => undefined))?.equals(bytes)) return false
      }
      status = victim.shares.status(share.id)
      return refused.every(([path]) => status.pathErrors.some(e => e.path === path))
    }, { timeout: 20_000, what: 'the good files and an error for every refused path' }).catch((err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(victim.shares.status(share.id))}`, { cause: err })
    })
    for (const [path, reason] of refused) {
      const error = status.pathErrors.find(e => e.path === path)
      assert.equal(error?.code, 'ERR_PATH_REJECTED', `${JSON.stringify(path)}: ${JSON.stringify(error)}`)
      assert.ok(error.message.includes(`rejected (${reason})`), `${JSON.stringify(path)}: ${error.message}`)
    }
    assert.equal(await readlink(join(root, 'escape')), '../../etc', 'a link syncs as a link')
    for (const canary of [join(dir.path, 'etc', 'x'), join(dir.path, 'v', 'x')]) assert.equal(await readFile(canary, 'utf8'), CANARY, canary)
    assert.equal(await exists('/abs/x'), absBefore, 'nothing written at an absolute path')
    assert.deepEqual((await readdir(root)).sort(), ['README.txt', 'dir', 'escape', 'good.txt'])
    assert.deepEqual(await readdir(join(root, 'dir')), ['good.bin'])
  })

  // the snapshot decoder leaves path length to path policy, so one over-long path cannot refuse the whole snapshot
  it('a path over the path length cap fails alone: the other entries of that snapshot still sync', async () => {
    // 21 names of 240 bytes: each name is allowed, the whole path (5,060 bytes) is over the 4,096-byte cap
    const long = Array.from({ length: 21 }, (_, i) => `${i}`.padEnd(240, 'x')).join('/')
    const late = await fileEntry('late-good.txt', Buffer.from('next to a path that is too long\n'), hostile.id)
    const tooLong = await fileEntry(long, Buffer.from('too long\n'), hostile.id)
    for (const { chunks } of [late, tooLong]) for (const [cid, piece] of chunks) hostile.chunks.set(cid.toString(), piece)
    await hostile.publish(share, [...entries, late.entry, tooLong.entry], 2)
    await hostile.announceTo(victim.peerId)
    const arrived = async (): Promise<boolean> => (await readFile(join(root, 'late-good.txt'), 'utf8').catch(() => undefined)) === 'next to a path that is too long\n'
    // until it arrives, or the victim refuses the whole snapshot (then it never will)
    await waitFor(async () => await arrived() || victim.shares.status(share.id).lastError?.code === 'ERR_INVALID_SNAPSHOT', {
      timeout: 15_000, what: 'the good entry beside the too-long path'
    })
    const { state, lastError } = victim.shares.status(share.id)
    assert.ok(await arrived(), `the good entry did not sync: ${JSON.stringify({ state, lastError })}`)
    const error = victim.shares.status(share.id).pathErrors.find(e => e.path.startsWith('0xxx'))
    assert.match(error?.message ?? '', /path-too-long/)
    assert.equal(await exists(join(root, '0'.padEnd(240, 'x'))), false)
    entries.push(late.entry)
  })

  it('a chunk that does not match its CID is refused: fetched from an honest member that has it, else the file is not written and the error shown', async () => {
    // the honest member holds `fromHonest` in a share of its own (so it serves its chunk to members); nobody honest holds `onlyHostile`
    const fromHonest = randomBytes(100 * 1024) // one chunk: below the chunker's minimum
    const onlyHostile = randomBytes(100 * 1024)
    await mkdir(join(dir.path, 'stash'))
    await writeFile(join(dir.path, 'stash', 'honest.bin'), fromHonest)
    await honest.shares.addShare(join(dir.path, 'stash'), { swarm: 'family', name: 'stash' })
    await waitFor(() => honest.shares.status('stash').files === 1, { timeout: 10_000, what: 'the honest member to index its file' })
    await honest.connect(victim.identity().addresses.find(a => a.startsWith('/ip4/127.0.0.1/tcp/')) as string)
    // the victim asks the members it sees online: the honest one must be among them before the head arrives
    await waitFor(() => victim.swarms.members(share.swarm).some(m => m.peerId === honest.peerId.toString() && m.online), {
      timeout: 10_000, what: 'the victim to see the honest member online'
    })

    const exchange = victim.libp2p.services[SERVICE.chunks] as ChunkExchange
    const wrongBefore = exchange.stats().wrongBlocks
    const me = hostile.id
    const honestFile = await fileEntry('from-honest.bin', fromHonest, me, fromHonest.byteLength)
    const hostileFile = await fileEntry('only-hostile.bin', onlyHostile, me, onlyHostile.byteLength)
    assert.equal(honestFile.entry.chunks?.[0].cid.toString(), (await chunkCid(fromHonest)).toString())
    for (const { chunks } of [honestFile, hostileFile]) {
      for (const [cid, piece] of chunks) hostile.chunks.set(cid.toString(), randomBytes(piece.byteLength))
    }
    const published = Date.now()
    await hostile.publish(share, [...entries, honestFile.entry, hostileFile.entry], 3)
    await hostile.announceTo(victim.peerId)

    await waitFor(async () => (await readFile(join(root, 'from-honest.bin')).catch(() => undefined))?.equals(fromHonest), {
      timeout: 20_000, what: 'the file whose chunk the honest member has'
    }).catch((err: Error) => { throw new Error(`${err.message}: ${JSON.stringify(victim.shares.status(share.id))}`, { cause: err }) })
    await waitFor(() => victim.shares.status(share.id).pathErrors.some(e => e.path === 'only-hostile.bin'), { timeout: 20_000, what: 'an error for the file only the hostile member serves' })
    const error = victim.shares.status(share.id).pathErrors.findLast(e => e.path === 'only-hostile.bin')
    assert.ok(error != null && error.message.length > 0, JSON.stringify(error))
    assert.ok(exchange.stats().wrongBlocks > wrongBefore, 'the wrong bytes were seen and counted')
    assert.ok((exchange.penalty(hostile.device.peerId)?.faults ?? 0) > 0 || (exchange.penalty(hostile.device.peerId)?.bannedUntil ?? 0) > 0, 'the hostile member is penalised')
    assert.equal(await exists(join(root, 'only-hostile.bin')), false, 'no file from bytes that did not verify')
    // status says a file waits for a chunk no member serves, and when it is tried next
    const waiting = await waitFor(() => {
      const s = victim.shares.status(share.id)
      return s.waitingFiles === 1 && s.nextRetryAt != null ? s : undefined
    }, { timeout: 10_000, what: 'status to name the file waiting for a chunk' })
    assert.ok((waiting.nextRetryAt as number) > published, `the next try comes after the head: ${waiting.nextRetryAt}`)
    assert.equal(await victim.store.has(hostileFile.chunks[0][0]), false, 'the wrong bytes are not in the store')
    // a retry may be writing one right now: none stays
    let temps: string[] = []
    await waitFor(async () => (temps = (await readdir(root)).filter(n => n.startsWith(TEMP_PREFIX))).length === 0, { timeout: 5_000, what: 'no temp file left behind' })
      .catch((err: Error) => { throw new Error(`${err.message}: ${temps.join(', ')}`, { cause: err }) })
  })
})
