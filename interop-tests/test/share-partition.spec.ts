/**
 * Issue 5: a share across a real network partition. Three `homecloud` daemons, each a public
 * host of the lab's internet (its own network namespace), in one private swarm sharing one
 * folder. While every daemon keeps running, the internet bridge drops all traffic between C and
 * A/B (`lab.cut`, nftables, both ways); a delete on A, an edit on C and one file edited on both
 * sides (B and C); then the cut heals and the three trees must converge: the deleted file does
 * not come back, C's edit is everywhere, one winner and one conflict copy, the same on every
 * device. Root only (CI is root); elsewhere skipped with the reason printed.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { after, before, describe, it } from 'node:test'
import { folderTree, sameFolders, type FolderTree } from '@homecloud/sync'
import { waitFor } from '@homecloud/test-support'
import { createLab, CUT_TABLE, labSkipReason, LabConfigError, LabDevice, type Lab } from '../src/index.js'
import { teardown } from './webrtc-lab.js'

const SKIP = labSkipReason()
if (SKIP !== undefined) {
  console.log(`# share partition lab skipped: ${SKIP}`)
}

const SYNC_BOUND_MS = 20_000
/**
 * From the heal until the three trees are identical. Generous: after a long silence TCP retries
 * a stalled connection with a doubled timeout (~13 s after a 12 s cut) before anything moves.
 */
const HEAL_BOUND_MS = 30_000
/**
 * The long cut lasts longer than one share exchange may (DEFAULT_SHARE_PROTOCOL_TIMEOUT_MS,
 * 10 s, packages/sync): every announce sent across it has given up by the heal. A shorter cut
 * is bridged by TCP retransmitting the stalled exchange once the path is back.
 */
const LONG_CUT_MS = 12_000
const ROUNDS = ['r1', 'r2'] as const

interface Id { peerId: string }
interface ShareStatus {
  head?: { seq: number }
  peers: Array<{ device: string, online: boolean, seq?: number, inSync: boolean, retrying?: boolean }>
}

function text (path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return undefined
  }
}

/** Waits until every folder holds the same tree; returns it (with the trees seen last when it times out). */
async function converged (dirs: readonly string[], what: string, timeout: number): Promise<FolderTree> {
  await waitFor(async () => sameFolders(dirs), { timeout, interval: 100, what }).catch(async (err: Error) => {
    const trees = await Promise.all(dirs.map(async d => JSON.stringify(await folderTree(d))))
    throw new Error(`${err.message}: ${trees.join(' | ').slice(0, 3000)}`, { cause: err })
  })
  return folderTree(dirs[0])
}

/** The entries of one round (`r1-…`) of a tree. */
function round (tree: FolderTree, prefix: string): FolderTree {
  return Object.fromEntries(Object.entries(tree).filter(([path]) => path.startsWith(`${prefix}-`)))
}

describe('share across a network partition, every daemon running (issue 5)', { skip: SKIP ?? false }, () => {
  let lab: Lab
  let a: LabDevice, b: LabDevice, c: LabDevice
  const devices: LabDevice[] = []
  const ids = new Map<LabDevice, string>()
  let dirs: string[] = []

  async function status (device: LabDevice): Promise<ShareStatus> {
    return device.json<ShareStatus>(['share', 'status', 'docs'])
  }

  /** Every device has the heads of both others and they name its own snapshot: nothing left to exchange. */
  async function allInSync (what: string): Promise<void> {
    for (const device of devices) {
      const others = devices.filter(d => d !== device).map(d => ids.get(d))
      await waitFor(async () => {
        const s = await status(device)
        return others.every(o => s.peers.some(p => p.device === o && p.online && p.inSync))
      }, { timeout: SYNC_BOUND_MS, interval: 100, what: `${device.name} to see both others online and in sync ${what}` })
    }
  }

  /**
   * One partition: cut C off, change files on both sides, hold the cut until A and B agree (and
   * for `holdMs` more), heal, and check the three trees converge the way issue 5 says.
   */
  async function partitionRound (prefix: string, holdMs: number): Promise<void> {
    const [dirA, dirB, dirC] = dirs
    const name = (file: string): string => `${prefix}-${file}.txt`
    const cSeqBefore = (await status(c)).head?.seq ?? 0

    lab.cut([c.host], [a.host, b.host])
    const cutAt = performance.now()
    unlinkSync(join(dirA, name('gone')))
    writeFileSync(join(dirB, name('both')), `${prefix} both edited on B during the cut\n`)
    writeFileSync(join(dirC, name('c-edit')), `${prefix} c-edit edited on C during the cut\n`)
    writeFileSync(join(dirC, name('both')), `${prefix} both edited on C during the cut\n`)

    // A and B agree on their side of the cut; C published its edits (a new head)
    const majority = await converged([dirA, dirB], 'A and B to agree during the cut', SYNC_BOUND_MS)
    assert.equal(majority[name('gone')], undefined)
    assert.equal(text(join(dirA, name('both'))), `${prefix} both edited on B during the cut\n`)
    await waitFor(async () => ((await status(c)).head?.seq ?? 0) > cSeqBefore, { timeout: SYNC_BOUND_MS, interval: 100, what: 'C to publish its edits' })
    // the length of the partition is the scenario here, not a synchronisation
    const left = holdMs - (performance.now() - cutAt)
    if (left > 0) await delay(left)
    if (holdMs > 0) {
      // A's announce to C timed out across the cut: its status says C is not answering, though the connection is open
      await waitFor(async () => (await status(a)).peers.find(p => p.device === ids.get(c))?.retrying === true,
        { timeout: SYNC_BOUND_MS, interval: 200, what: 'A to report C as not answering' })
    }
    // nothing crossed the cut, either way
    assert.equal(text(join(dirC, name('gone'))), `${name('gone')} from A\n`, 'the delete did not reach C')
    assert.equal(text(join(dirC, name('both'))), `${prefix} both edited on C during the cut\n`)
    assert.equal(text(join(dirA, name('c-edit'))), `${name('c-edit')} from A\n`, 'C\'s edit did not reach A')
    assert.equal(text(join(dirB, name('c-edit'))), `${name('c-edit')} from A\n`, 'C\'s edit did not reach B')
    // what A says of C at the end of the cut
    const aSeesC = (await status(a)).peers.find(p => p.device === ids.get(c))
    const cutMs = performance.now() - cutAt

    const dropped = lab.heal()
    const healedAt = performance.now()
    assert.ok(dropped > 0, 'the cut dropped packets')
    const final = round(await converged(dirs, 'the three trees to converge after the heal', HEAL_BOUND_MS), prefix)
    const healMs = performance.now() - healedAt
    console.log(`# share partition ${prefix}: cut held ${(cutMs / 1000).toFixed(1)} s (${dropped} packets dropped; A still showed C ` +
      `${aSeesC?.online === true ? 'online' : 'offline'}${aSeesC?.retrying === true ? ', not answering' : ''}), heal to identical trees ${(healMs / 1000).toFixed(2)} s`)

    // the delete stays a delete everywhere: the copy C still held does not come back
    assert.equal(final[name('gone')], undefined, JSON.stringify(final))
    // C's edit reached A and B (the trees are identical: one read says it for all three)
    assert.equal(text(join(dirA, name('c-edit'))), `${prefix} c-edit edited on C during the cut\n`)
    // one winner under the real name, the loser as one conflict copy named the same everywhere
    const conflictRe = new RegExp(`^${prefix}-both\\.conflict-[^/]+-\\d{8}-\\d{6}\\.txt$`)
    const copies = Object.keys(final).filter(p => conflictRe.test(p))
    assert.equal(copies.length, 1, JSON.stringify(final))
    assert.deepEqual(Object.keys(final).sort(), [name('both'), copies[0], name('c-edit'), name('kept')].sort())
    assert.deepEqual([text(join(dirA, name('both'))), text(join(dirA, copies[0]))].sort(),
      [`${prefix} both edited on B during the cut\n`, `${prefix} both edited on C during the cut\n`])
    // settled: every head exchanged, and still the same trees with no resurrection
    await allInSync('after the heal')
    assert.deepEqual(round(await converged(dirs, 'the trees once settled', SYNC_BOUND_MS), prefix), final)
  }

  before(async () => {
    lab = createLab({ log: console.log })
    ;[a, b, c] = ['a', 'b', 'c'].map(name => new LabDevice(lab, lab.addPublicHost(name), { dht: 'off' }))
    devices.push(a, b, c)
    await Promise.all(devices.map(async d => d.start()))
    for (const d of devices) ids.set(d, (await d.json<Id>(['id'])).peerId)

    await a.json(['swarm', 'create', 'family'])
    const { code } = await a.json<{ code: string }>(['swarm', 'invite', 'family', '--uses', '2'])
    await b.json(['swarm', 'join', code])
    await c.json(['swarm', 'join', code])
    // a full mesh: B and C met only A through the invite
    await c.json(['connect', `/ip4/${b.host.ip}/tcp/4001/p2p/${ids.get(b)}`])

    dirs = devices.map(d => join(lab.dir, `folder-${d.name}`))
    mkdirSync(dirs[0])
    for (const prefix of ROUNDS) {
      for (const file of ['gone', 'c-edit', 'both', 'kept']) writeFileSync(join(dirs[0], `${prefix}-${file}.txt`), `${prefix}-${file}.txt from A\n`)
    }
    await a.json(['share', 'add', dirs[0], '--swarm', 'family', '--name', 'docs'])
    for (const [device, dir] of [[b, dirs[1]], [c, dirs[2]]] as const) {
      await waitFor(async () => (await device.json<{ offers: Array<{ name: string }> }>(['share', 'list'])).offers.some(o => o.name === 'docs'),
        { timeout: SYNC_BOUND_MS, interval: 100, what: `${device.name} to see the offer` })
      await device.json(['share', 'accept', 'docs', dir])
    }
    assert.equal(Object.keys(await converged(dirs, 'the initial sync', SYNC_BOUND_MS)).length, 4 * ROUNDS.length)
    await allInSync('before the cuts')
  })

  after(async () => {
    await teardown(lab, devices)
  })

  it('a bad cut (an empty or overlapping group, a device behind a home router) is refused and changes nothing', () => {
    const behindRouter = lab.addHome('hx', { nat: 'typical' }).addDevice('x1')
    for (const [side, others] of [[[], [a.host]], [[c.host], [a.host, c.host]], [[behindRouter], [a.host]]]) {
      assert.throws(() => { lab.cut(side, others) }, (err: unknown) => err instanceof LabConfigError && err.code === 'ERR_LAB_CONFIG')
    }
    const tables = execFileSync('ip', ['netns', 'exec', lab.internetNs, 'nft', 'list', 'tables'], { encoding: 'utf8' })
    assert.ok(!tables.includes(CUT_TABLE), tables)
    assert.equal(lab.cutDrops(), 0)
  })

  it('a brief cut (healed once A and B agree): no resurrection, C\'s edit everywhere, one conflict copy named the same on all three', { timeout: 90_000 }, async () => {
    await partitionRound(ROUNDS[0], 0)
  })

  it('a cut longer than a share exchange may take (12 s): the same once healed', { timeout: 90_000 }, async () => {
    // the announces sent across the cut time out while the connections stay open: the
    // share service tries a failed announce again (doubling gap) until it gets through
    await partitionRound(ROUNDS[1], LONG_CUT_MS)
  })
})
