import assert from 'node:assert/strict'
import { access, readFile } from 'node:fs/promises'
import { createServer, request } from 'node:http'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { removeDir, tempDir } from '@homecloud/test-support'
import type { DeviceIdentity, DeviceStatus, PeerConnectionInfo } from '@homecloud/interface'
import { runCli, spawnDaemon, waitFor } from '../src/child.js'
import type { DaemonChild } from '../src/child.js'
import { repoPaths } from '../src/repo.js'
import { cliJson, loopbackAddress, loopbackArgs, ok } from './daemon-cli.js'

async function exists (path: string): Promise<boolean> {
  return access(path).then(() => true, () => false)
}

async function get (url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(new URL('/api/v1/id', url), { headers, agent: false }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on('error', reject)
    req.end()
  })
}

/** Two real daemons, each a `homecloud start` process with its own repo, on loopback. */
describe('homecloud daemon (real processes)', async () => {
  const base = await tempDir('homecloud-daemon-')
  const repoA = join(base, 'a')
  const repoB = join(base, 'b')
  const daemons: DaemonChild[] = []
  let a: DaemonChild
  let b: DaemonChild

  before(async () => {
    for (const [repo, name] of [[repoA, 'box-a'], [repoB, 'box-b']]) await ok(repo, ['init', '--name', name])
    a = await spawnDaemon(repoA, loopbackArgs())
    daemons.push(a)
    b = await spawnDaemon(repoB, loopbackArgs())
    daemons.push(b)
  })

  after(async () => {
    // only reached with live daemons when a test failed
    await Promise.all(daemons.map(async (daemon) => daemon.stop('SIGKILL')))
    await removeDir(base)
  })

  it('prints a ready line and writes the API URL to <repo>/api', async () => {
    assert.match(a.apiUrl, /^http:\/\/127\.0\.0\.1:\d+$/)
    assert.notEqual(new URL(a.apiUrl).port, '5780')
    assert.match(a.output(), /homecloud daemon ready: box-a 12D3KooW/)
    assert.ok(a.output().includes(a.apiUrl))
  })

  it('id --json has peer id, name, addresses and reachability', async () => {
    const id = await cliJson<DeviceIdentity>(repoA, ['id'])
    assert.match(id.peerId, /^12D3KooW/)
    assert.equal(id.name, 'box-a')
    assert.ok(id.addresses.length > 0)
    assert.ok(id.addresses.every((address) => address.startsWith('/ip4/127.0.0.1/tcp/')), id.addresses.join(' '))
    assert.ok(['public', 'private', 'unknown'].includes(id.reachability))
    const human = await runCli(['--repo', repoA, 'id'])
    assert.match(human.stdout, new RegExp(`peer id\\s+${id.peerId}`))
  })

  it('connects the two devices; peers --json on both shows the other', async () => {
    const idA = await cliJson<DeviceIdentity>(repoA, ['id'])
    const idB = await cliJson<DeviceIdentity>(repoB, ['id'])
    const address = loopbackAddress(idB)
    const connected = await runCli(['--repo', repoA, 'connect', address])
    assert.equal(connected.code, 0, connected.stderr)
    assert.match(connected.stdout, new RegExp(`connected to ${idB.peerId}`))

    const peersOfA = await cliJson<{ peers: PeerConnectionInfo[] }>(repoA, ['peers'])
    assert.ok(peersOfA.peers.some((peer) => peer.peerId === idB.peerId && peer.path === 'direct' && peer.direction === 'outbound'), JSON.stringify(peersOfA))
    // B learns of the inbound connection as soon as it is upgraded; allow for that moment
    await waitFor(async () => (await cliJson<{ peers: PeerConnectionInfo[] }>(repoB, ['peers'])).peers.some((peer) => peer.peerId === idA.peerId), 10_000, 'B did not list A')

    const status = await cliJson<DeviceStatus>(repoA, ['status'])
    assert.equal(status.peerId, idA.peerId)
    assert.ok(status.connections >= 1)
    assert.ok(status.uptimeMs > 0)
    const human = await runCli(['--repo', repoB, 'peers'])
    assert.match(human.stdout, new RegExp(`^PEER ID.*\\n${idA.peerId}\\s+direct\\s+inbound`))
  })

  it('refuses a second daemon on the same repo, clearly, and keeps the first running', async () => {
    const second = await runCli(['--repo', repoA, 'start', ...loopbackArgs()], { timeoutMs: 30_000 })
    assert.notEqual(second.code, 0)
    assert.equal(second.code, 1)
    assert.equal(second.stderr, `homecloud: repo ${repoPaths(repoA).root} is in use by process ${a.child.pid} (another homecloud daemon?); if not, remove ${repoPaths(repoA).lock}\n`)
    assert.equal((await readFile(repoPaths(repoA).api, 'utf8')).trim(), a.apiUrl)
    assert.equal((await cliJson<DeviceIdentity>(repoA, ['id'])).name, 'box-a')
  })

  it('answers 401 without the token and 403 to a foreign Host', async () => {
    const token = (await readFile(repoPaths(repoA).token, 'utf8')).trim()
    const host = new URL(a.apiUrl).host
    assert.equal(await get(a.apiUrl, { host }), 401)
    assert.equal(await get(a.apiUrl, { host, authorization: 'Bearer wrong-token-wrong-token' }), 401)
    assert.equal(await get(a.apiUrl, { host: 'evil.example', authorization: `Bearer ${token}` }), 403)
    assert.equal(await get(a.apiUrl, { host, authorization: `Bearer ${token}` }), 200)
  })

  it('stops on SIGTERM with exit 0 and removes <repo>/api and the lock', async () => {
    for (const [daemon, repo] of [[a, repoA], [b, repoB]] as const) {
      const { code, signal } = await daemon.stop('SIGTERM')
      assert.equal(signal, null)
      assert.equal(code, 0, daemon.output())
      assert.equal(await exists(repoPaths(repo).api), false)
      assert.equal(await exists(repoPaths(repo).lock), false)
      const after = await runCli(['--repo', repo, 'id'])
      assert.equal(after.code, 1)
      assert.match(after.stderr, /no daemon is running/)
    }
  })

  it('fails clearly when the API address is taken, leaving no lock or api file', async () => {
    const holder = createServer()
    await new Promise<void>((resolve) => { holder.listen(0, '127.0.0.1', resolve) })
    try {
      const { port } = holder.address() as { port: number }
      const args = ['--listen', '/ip4/127.0.0.1/tcp/0', '--api', `127.0.0.1:${port}`, '--no-mdns', '--no-upnp']
      const { code, stderr } = await runCli(['--repo', repoB, 'start', ...args], { timeoutMs: 30_000 })
      assert.equal(code, 1)
      assert.equal(stderr, `homecloud: the API address 127.0.0.1:${port} is in use (another daemon?): choose another with --api HOST:PORT\n`)
      assert.equal(await exists(repoPaths(repoB).lock), false)
      assert.equal(await exists(repoPaths(repoB).api), false)
    } finally {
      holder.close()
    }
  })

  it('restarts with the same PeerId (identity kept in the repo) and stops on SIGINT', async () => {
    const before = JSON.parse(await readFile(join(repoA, 'config.json'), 'utf8')) as { name: string }
    const again = await spawnDaemon(repoA, loopbackArgs())
    daemons.push(again)
    const id = await cliJson<DeviceIdentity>(repoA, ['id'])
    assert.match(a.output(), new RegExp(id.peerId))
    assert.equal(id.name, before.name)
    const { code } = await again.stop('SIGINT')
    assert.equal(code, 0)
    assert.equal(await exists(repoPaths(repoA).api), false)
  })
})
