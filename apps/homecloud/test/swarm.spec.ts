import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { removeDir, tempDir } from '@homecloud/test-support'
import type { DeviceIdentity, PeerConnectionInfo } from '@homecloud/interface'
import { createHomecloudNode, ROSTER_SYNC_PROTOCOL } from '@homecloud/node'
import type { CreatedInvite, SwarmInfo, SwarmMemberInfo, SwarmStats } from '@homecloud/node'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { connectToDaemon } from '../src/api-client.js'
import { runCli, spawnDaemon, waitFor } from '../src/child.js'
import type { CliResult, DaemonChild } from '../src/child.js'
import { repoPaths } from '../src/repo.js'
import { cliJson, loopbackAddress, loopbackArgs, ok } from './daemon-cli.js'

async function cli (repo: string, args: string[]): Promise<CliResult> {
  return runCli(['--repo', repo, ...args])
}

async function members (repo: string): Promise<SwarmMemberInfo[]> {
  return (await cliJson<{ members: SwarmMemberInfo[] }>(repo, ['swarm', 'members', 'family'])).members
}

/** The gate's refusals of roster sync streams on a daemon, from its control API. */
async function refusedRosterSyncs (repo: string): Promise<number> {
  const client = await connectToDaemon(repoPaths(repo))
  const stats = await client.get('swarm/stats') as SwarmStats
  return stats.gate.refused[ROSTER_SYNC_PROTOCOL] ?? 0
}

/** `/ip4/127.0.0.1/tcp/N/p2p/<id>` of a daemon. */
async function addressOf (repo: string): Promise<string> {
  return loopbackAddress(await cliJson<DeviceIdentity>(repo, ['id']))
}

/** Three real daemons on loopback: A creates the family swarm, B joins it, C stays outside. */
describe('homecloud swarm (real daemons)', async () => {
  const base = await tempDir('homecloud-swarm-')
  const [repoA, repoB, repoC] = ['a', 'b', 'c'].map((name) => join(base, name))
  const daemons: DaemonChild[] = []
  const ids = new Map<string, string>()
  let code: string

  const start = async (repo: string): Promise<DaemonChild> => {
    const daemon = await spawnDaemon(repo, loopbackArgs())
    daemons.push(daemon)
    return daemon
  }

  before(async () => {
    for (const [repo, name] of [[repoA, 'box-a'], [repoB, 'box-b'], [repoC, 'box-c']]) {
      await ok(repo, ['init', '--name', name])
    }
    await Promise.all([repoA, repoB, repoC].map(start))
    for (const repo of [repoA, repoB, repoC]) ids.set(repo, (await cliJson<DeviceIdentity>(repo, ['id'])).peerId)
  })

  after(async () => {
    await Promise.all(daemons.map(async (daemon) => daemon.stop('SIGKILL')))
    await removeDir(base)
  })

  it('create → invite → join with the code alone; members on both list both', async () => {
    assert.match(await ok(repoA, ['swarm', 'create', 'family']), /^created swarm family \(id b[a-z2-7]+\)\n/)
    const invite = await cliJson<CreatedInvite>(repoA, ['swarm', 'invite', 'family', '--expires', '1h'])
    code = invite.code
    assert.ok(code.length <= 200, code)
    assert.ok(invite.expires > Date.now() + 59 * 60_000 && invite.expires <= Date.now() + 3_600_000)
    // B has never been connected to A: the addresses in the code are all it has
    assert.equal((await cliJson<{ peers: PeerConnectionInfo[] }>(repoB, ['peers'])).peers.length, 0)

    assert.equal(await ok(repoB, ['swarm', 'join', code, '--name', 'pi-parents']), 'joined swarm family (2 members)\n')
    const expected = [[ids.get(repoA), 'box-a'], [ids.get(repoB), 'pi-parents']].sort()
    for (const repo of [repoA, repoB]) {
      await waitFor(async () => (await members(repo)).length === 2, 10_000, `${repo} did not list two members`)
      const rows = await members(repo)
      assert.deepEqual(rows.map((m) => [m.peerId, m.name]).sort(), expected)
      const other = rows.find((m) => !m.self)
      assert.equal(other?.online, true)
      assert.equal(other?.path, 'direct')
    }
    const human = await ok(repoA, ['swarm', 'members', 'family'])
    assert.match(human, /^NAME\s+PEER ID\s+ONLINE\s+PATH\s+LAST SEEN\n/)
    assert.match(human, new RegExp(`pi-parents\\s+${ids.get(repoB)}\\s+yes\\s+direct\\s+now`))
    const lists = await Promise.all([repoA, repoB].map(async (repo) => cliJson<{ swarms: SwarmInfo[] }>(repo, ['swarm', 'list'])))
    assert.deepEqual(lists[0], lists[1])
    assert.match(await ok(repoB, ['swarm', 'list']), /^NAME\s+MEMBERS\s+ID\nfamily\s+2\s+b/)
  })

  it('refuses a reused, a tampered and an expired code with one clear line and exit 1; --qr prints a QR code', async () => {
    const reused = await cli(repoC, ['swarm', 'join', code])
    assert.equal(reused.code, 1)
    assert.equal(reused.stderr, 'homecloud: the invite has already been used\n')
    const tampered = code.slice(0, 30) + (code[30] === 'a' ? 'b' : 'a') + code.slice(31)
    const altered = await cli(repoC, ['swarm', 'join', tampered])
    assert.equal(altered.code, 1)
    assert.equal(altered.stderr, 'homecloud: the invite code checksum does not match (mistyped or altered)\n')

    const short = await cliJson<CreatedInvite>(repoA, ['swarm', 'invite', 'family', '--expires', '1s'])
    await waitFor(() => Date.now() > short.expires, 3_000, 'the code did not expire')
    const expired = await cli(repoC, ['swarm', 'join', short.code])
    assert.equal(expired.code, 1)
    assert.match(expired.stderr, /^homecloud: the invite expired at \d{4}-\d\d-\d\dT[\d:.]+Z\n$/)
    assert.deepEqual(await cliJson<{ swarms: SwarmInfo[] }>(repoC, ['swarm', 'list']), { swarms: [] })

    const bad = await cli(repoA, ['swarm', 'invite', 'family', '--uses', 'many'])
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /^homecloud: --uses "many" is not a positive whole number\n/)
    const qr = await ok(repoA, ['swarm', 'invite', 'family', '--qr', '--uses', '2'])
    const [line, ...rest] = qr.split('\n')
    assert.match(line, /^b[a-z2-7]+$/)
    assert.match(rest.join('\n'), /[▀▄█]/)
    assert.match(qr, /for 2 devices, until /)
  })

  it('an outsider gets every private stream reset before a byte, and the member counts it', async () => {
    const before = await refusedRosterSyncs(repoA)
    const outsider = await createHomecloudNode({
      privateKey: await generateKeyPair('Ed25519'),
      name: 'outsider',
      listen: ['/ip4/127.0.0.1/tcp/0'],
      services: { mdns: false, upnp: false, autonat: false, websockets: false, dcutr: false, dht: 'off' }
    })
    try {
      const address = await addressOf(repoA)
      await outsider.connect(address)
      const stream = await outsider.libp2p.dialProtocol(multiaddr(address), ROSTER_SYNC_PROTOCOL)
      let bytes = 0
      let reset = false
      try {
        for await (const chunk of stream) bytes += chunk.byteLength
      } catch {
        reset = true
      }
      reset ||= stream.status === 'reset' || stream.status === 'aborted'
      assert.deepEqual({ bytes, reset }, { bytes: 0, reset: true })
    } finally {
      await outsider.stop()
    }
    await waitFor(async () => (await refusedRosterSyncs(repoA)) > before, 5_000, 'A did not count the refusal')
  })

  it('restart keeps swarms and rosters', async () => {
    const listsBefore = await Promise.all([repoA, repoB].map(async (repo) => cliJson<{ swarms: SwarmInfo[] }>(repo, ['swarm', 'list'])))
    const rostersBefore = await Promise.all([repoA, repoB].map(async (repo) => (await members(repo)).map((m) => m.peerId).sort()))
    for (const daemon of daemons.splice(0, 2)) {
      assert.equal((await daemon.stop('SIGTERM')).code, 0)
    }
    await start(repoA)
    await start(repoB)
    assert.deepEqual(await Promise.all([repoA, repoB].map(async (repo) => cliJson<{ swarms: SwarmInfo[] }>(repo, ['swarm', 'list']))), listsBefore)
    assert.deepEqual(await Promise.all([repoA, repoB].map(async (repo) => (await members(repo)).map((m) => m.peerId).sort())), rostersBefore)
    // the restarted daemons listen on new ports; bring them together again for the next test
    await ok(repoB, ['connect', await addressOf(repoA)])
    await waitFor(async () => (await members(repoA)).some((m) => m.name === 'pi-parents' && m.online), 10_000, 'A did not see B online')
  })

  it('remove: within 10 s B is off A\'s roster and disconnected, and B\'s private streams are refused', async () => {
    const startedAt = Date.now()
    assert.equal(await ok(repoA, ['swarm', 'remove', 'family', 'pi-parents']), `removed pi-parents (${ids.get(repoB)}) from family\n`)
    await waitFor(async () => (await members(repoA)).length === 1, 10_000, 'B still on A\'s roster')
    const connectedToA = async (): Promise<boolean> =>
      (await cliJson<{ peers: PeerConnectionInfo[] }>(repoB, ['peers'])).peers.some((p) => p.peerId === ids.get(repoA))
    await waitFor(async () => !(await connectedToA()), 10_000 - (Date.now() - startedAt), 'B still connected to A')
    const [family] = (await cliJson<{ swarms: SwarmInfo[] }>(repoA, ['swarm', 'list'])).swarms
    assert.equal(family.epoch, 1, 'the secret was rotated')

    // B does not know yet: when it connects again, it syncs its roster with A, and A's gate refuses it
    const before = await refusedRosterSyncs(repoA)
    await ok(repoB, ['connect', await addressOf(repoA)])
    await waitFor(async () => (await refusedRosterSyncs(repoA)) > before, 10_000, 'A did not refuse B')
    assert.deepEqual((await members(repoA)).map((m) => m.name), ['box-a'])
  })
})
