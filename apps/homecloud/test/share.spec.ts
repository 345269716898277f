import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readFile, readdir, readlink, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { DeviceIdentity } from '@homecloud/interface'
import type { HistoryVersion, ShareInfo, ShareOffer, ShareStatus } from '@homecloud/node'
import { folderTree } from '@homecloud/sync'
import { connectToDaemon } from '../src/api-client.js'
import { runCli, spawnDaemon, waitFor } from '../src/child.js'
import type { CliResult, DaemonChild } from '../src/child.js'
import { repoPaths } from '../src/repo.js'
import { cliJson, loopbackArgs, ok } from './daemon-cli.js'

const DAEMON_ARGS = loopbackArgs('--dht', 'off')
const SYNC_TIMEOUT_MS = 20_000

async function cli (repo: string, args: string[]): Promise<CliResult> {
  return runCli(['--repo', repo, ...args])
}

/** A daemon's answer to one GET, without spawning a CLI (polling). */
async function api <T> (repo: string, route: string): Promise<T> {
  return await (await connectToDaemon(repoPaths(repo))).get(route, { signal: AbortSignal.timeout(10_000) }) as T
}

function sha (bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex')
}

const tree = folderTree

/** Waits until every folder holds the same tree (compared by hashes); returns it. */
async function converged (dirs: string[], what: string, timeoutMs = SYNC_TIMEOUT_MS): Promise<Record<string, string>> {
  let last: string[] = []
  await waitFor(async () => {
    last = await Promise.all(dirs.map(async (d) => JSON.stringify(await tree(d))))
    return last.every((t) => t === last[0])
  }, timeoutMs, `${what}: trees differ ${last.join(' | ')}`)
  return JSON.parse(last[0]) as Record<string, string>
}

async function text (path: string): Promise<string | undefined> {
  return readFile(path, 'utf8').catch(() => undefined)
}

/** Three real daemons on loopback in one swarm: A shares a folder, B accepts it, C auto-accepts (a backup box). */
describe('homecloud share (real daemons)', async () => {
  const base = await mkdtemp(join(tmpdir(), 'homecloud-share-'))
  const [repoA, repoB, repoC] = ['a', 'b', 'c'].map((name) => join(base, name))
  const dirA = join(base, 'folder-a')
  const dirB = join(base, 'folder-b')
  const backups = join(base, 'backups')
  const dirC = join(backups, 'docs')
  const daemons = new Map<string, DaemonChild>()

  const start = async (repo: string): Promise<void> => {
    const extra = repo === repoC ? ['--auto-accept', backups] : []
    daemons.set(repo, await spawnDaemon(repo, [...DAEMON_ARGS, ...extra]))
  }
  const stop = async (repo: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    const daemon = daemons.get(repo)
    daemons.delete(repo)
    const exit = await daemon?.stop(signal)
    if (signal === 'SIGTERM') assert.equal(exit?.code, 0, daemon?.output())
  }
  const addressOf = async (repo: string): Promise<string> => {
    const id = await api<DeviceIdentity>(repo, 'id')
    const address = id.addresses.find((a) => a.startsWith('/ip4/127.0.0.1/tcp/')) ?? id.addresses[0]
    return address.includes('/p2p/') ? address : `${address}/p2p/${id.peerId}`
  }
  /** A restarted daemon listens on a new port and knows no addresses: it dials the running members. */
  const rejoin = async (repo: string): Promise<void> => {
    for (const other of [repoA, repoB, repoC]) {
      if (other !== repo && daemons.has(other)) await ok(repo, ['connect', await addressOf(other)])
    }
  }

  before(async () => {
    for (const [repo, name] of [[repoA, 'box-a'], [repoB, 'box-b'], [repoC, 'backup']]) {
      await ok(repo, ['init', '--name', name])
    }
    await Promise.all([repoA, repoB, repoC].map(start))
    await ok(repoA, ['swarm', 'create', 'family'])
    for (const repo of [repoB, repoC]) {
      const { code } = await cliJson<{ code: string }>(repoA, ['swarm', 'invite', 'family'])
      await ok(repo, ['swarm', 'join', code])
    }
    await ok(repoB, ['connect', await addressOf(repoC)])

    await mkdir(join(dirA, 'sub', 'deeper'), { recursive: true })
    for (const name of ['a.txt', 'c.txt', 'd.txt', 'e.txt', 'f.txt']) await writeFile(join(dirA, name), `${name} from A\n`)
    await writeFile(join(dirA, 'sub', 'b.txt'), 'b\n')
    await writeFile(join(dirA, 'sub', 'deeper', 'data.bin'), randomBytes(300 * 1024))
    await writeFile(join(dirA, 'big.bin'), 'old big\n')
  })

  after(async () => {
    await Promise.all([...daemons.values()].map(async (daemon) => daemon.stop('SIGKILL')))
    await rm(base, { recursive: true, force: true })
  })

  it('share add on A; B sees the offer in `share list` and accepts; C auto-accepts; all three trees are identical', async () => {
    assert.match(await ok(repoA, ['share', 'add', dirA, '--swarm', 'family', '--name', 'docs']), /^sharing \S+folder-a as docs \(send-receive, id [0-9a-f]+\)\n/)
    await waitFor(async () => (await api<{ offers: ShareOffer[] }>(repoB, 'share/offers')).offers.length > 0, 10_000, 'the offer did not reach B')
    assert.match(await ok(repoB, ['share', 'list']), /offered by members, not accepted here[^\n]*\nNAME\s+FROM\s+ID\ndocs\s+[12] devices?\s+[0-9a-f]+\n/)
    const accepted = await cliJson<ShareInfo>(repoB, ['share', 'accept', 'docs', dirB])
    assert.equal(accepted.path, dirB)

    const synced = await converged([dirA, dirB, dirC], 'initial sync')
    assert.ok(Object.keys(synced).includes('sub/deeper/data.bin'), JSON.stringify(synced))
    const [onC] = (await cliJson<{ shares: ShareInfo[] }>(repoC, ['share', 'list'])).shares
    assert.deepEqual({ name: onC.name, mode: onC.mode, path: onC.path }, { name: 'docs', mode: 'receive-only', path: dirC })

    await waitFor(async () => (await api<ShareStatus>(repoB, 'share/status?share=docs')).peers.filter((p) => p.inSync).length === 1, 10_000, 'B did not see A in sync')
    const status = await cliJson<ShareStatus>(repoB, ['share', 'status', 'docs'])
    assert.equal(status.state, 'idle')
    assert.equal(status.needFiles, 0)
    assert.equal(status.files, Object.values(synced).filter((v) => v !== 'dir').length)
    const human = await ok(repoB, ['share', 'status'])
    assert.match(human, /^docs \(send-receive\) \S+folder-b\n\s+state\s+idle\n/)
    assert.match(human, /PEER\s+ONLINE\s+IN SYNC\s+SEQ\s+LAST ANSWER\n[\s\S]*\n\s+box-a\s+yes\s+yes\s+\d+\s+[\w ]+ ago\n/)
    // B exchanged heads with A: the time is known and recent, and nothing is being retried
    const fromA = status.peers.find((p) => p.name === 'box-a')
    assert.ok(fromA?.lastAnswer !== undefined && Date.now() - fromA.lastAnswer < 60_000, JSON.stringify(fromA))
    assert.equal(fromA.retrying, false)
    // a receive-only backup sends no head: it is online, never "in sync" as a source
    assert.match(human, /\n\s+backup\s+yes\s+no\s+-/)
  })

  it('an edit on B reaches A and C; A keeps the replaced version: `history` lists it and `restore --to` writes it', async () => {
    await writeFile(join(dirB, 'a.txt'), 'a.txt edited on B\n')
    await converged([dirA, dirB, dirC], 'edit on B')
    assert.equal(await text(join(dirA, 'a.txt')), 'a.txt edited on B\n')

    const { versions } = await cliJson<{ versions: HistoryVersion[] }>(repoA, ['history', 'docs', 'a.txt'])
    assert.equal(versions.length, 1)
    assert.equal(versions[0].reason, 'replaced')
    assert.match(await ok(repoA, ['history', 'docs', 'a.txt']), new RegExp(`^VERSION\\s+KEPT\\s+REASON\\s+SIZE\\s+MODIFIED\\s+BY\\n${versions[0].version}\\s+\\S+\\s+replaced`))
    const out = join(base, 'restored-a.txt')
    assert.equal(await ok(repoA, ['restore', 'docs', 'a.txt', '--version', String(versions[0].version), '--to', out]),
      `restored version ${versions[0].version} of a.txt (docs) to ${out}\n`)
    assert.equal(await text(out), 'a.txt from A\n')
    const taken = await cli(repoA, ['restore', 'docs', 'a.txt', '--version', '999'])
    assert.equal(taken.code, 1)
    assert.match(taken.stderr, /^homecloud: no version 999 of a\.txt\n$/)
    assert.equal((await cli(repoA, ['restore', 'docs', 'a.txt', '--version', 'x'])).code, 2)
  })

  it('a rename on A is a rename everywhere; a symlink loop (`ln -s . loop`) syncs as a link and breaks nothing', async () => {
    await rename(join(dirA, 'sub', 'b.txt'), join(dirA, 'sub', 'b-renamed.txt'))
    await symlink('.', join(dirA, 'loop'))
    await writeFile(join(dirA, 'after-loop.txt'), 'still syncing\n')
    const synced = await converged([dirA, dirB, dirC], 'rename and loop')
    assert.equal(synced['sub/b.txt'], undefined)
    assert.equal(synced['sub/b-renamed.txt'], sha('b\n'))
    assert.equal(synced.loop, '-> .')
    assert.equal(await readlink(join(dirB, 'loop')), '.')
  })

  it('concurrent edits while B is stopped: the same winner and the same conflict copy on every device', async () => {
    await stop(repoB)
    await writeFile(join(dirA, 'c.txt'), 'c.txt edited on A\n')
    await converged([dirA, dirC], 'edit on A while B is down')
    await writeFile(join(dirB, 'c.txt'), 'c.txt edited on B while stopped\n')
    await start(repoB)
    await rejoin(repoB)
    const synced = await converged([dirA, dirB, dirC], 'conflict')
    const copies = Object.keys(synced).filter((p) => /^c\.conflict-[^/]+-\d{8}-\d{6}\.txt$/.test(p))
    assert.equal(copies.length, 1, JSON.stringify(synced))
    const both = [await text(join(dirA, 'c.txt')), await text(join(dirA, copies[0]))].sort()
    assert.deepEqual(both, ['c.txt edited on A\n', 'c.txt edited on B while stopped\n'])
  })

  it('edit vs delete: the edit wins', async () => {
    await stop(repoB)
    await unlink(join(dirA, 'd.txt'))
    await converged([dirA, dirC], 'delete on A while B is down')
    await writeFile(join(dirB, 'd.txt'), 'd.txt edited on B\n')
    await start(repoB)
    await rejoin(repoB)
    const synced = await converged([dirA, dirB, dirC], 'edit vs delete')
    assert.equal(synced['d.txt'], sha('d.txt edited on B\n'))
  })

  it('a delete propagates and does not come back after a restart', async () => {
    await unlink(join(dirA, 'e.txt'))
    await converged([dirA, dirB, dirC], 'delete')
    assert.equal(await text(join(dirB, 'e.txt')), undefined)
    await stop(repoB)
    await start(repoB)
    await rejoin(repoB)
    await waitFor(async () => (await api<ShareStatus>(repoB, 'share/status?share=docs')).peers.some((p) => p.name === 'box-a' && p.online && p.inSync), 15_000, 'B did not get back in sync')
    const synced = await converged([dirA, dirB, dirC], 'after restart')
    assert.equal(synced['e.txt'], undefined)
  })

  it('share revert on the receive-only backup puts local changes back; a path that fails is printed with its code and message, and the exit code is 1', async () => {
    await writeFile(join(dirC, 'a.txt'), 'a.txt edited on the backup\n')
    // an added folder holding a file the index never knows (ignored here): it cannot go, and says why
    await writeFile(join(dirC, '.homecloudignore'), '*.tmp\n')
    await mkdir(join(dirC, 'added'))
    await writeFile(join(dirC, 'added', 'x.txt'), 'x\n')
    await writeFile(join(dirC, 'added', 'keep.tmp'), 'ignored\n')
    const partly = await cli(repoC, ['share', 'revert', 'docs'])
    assert.equal(partly.code, 1, 'some paths failed')
    assert.match(partly.stdout, /^reverted 2 paths of docs; 1 path failed:\n {2}added {2}ERR_LOCAL_CHANGED {2}[^\n]*keep\.tmp[^\n]*\n$/)
    assert.equal(partly.stderr, '')
    // the JSON says the same, with the same exit code
    const still = await cli(repoC, ['share', 'revert', 'docs', '--json'])
    assert.equal(still.code, 1)
    assert.deepEqual((JSON.parse(still.stdout) as { failed: Array<{ path: string }>, failedTotal: number }).failed.map((e) => e.path), ['added'])
    assert.equal(await text(join(dirC, 'a.txt')), await text(join(dirA, 'a.txt')))
    assert.equal(await text(join(dirC, 'added', 'x.txt')), undefined)
    assert.equal(await text(join(dirC, 'added', 'keep.tmp')), 'ignored\n', 'never deleted')
    await rm(join(dirC, 'added'), { recursive: true })
    await rm(join(dirC, '.homecloudignore'))
    // nothing failed: exit 0 (`json` checks it)
    const again = await cliJson<{ reverted: number, failed: unknown[], failedTotal: number }>(repoC, ['share', 'revert', 'docs'])
    assert.deepEqual({ failed: again.failed, failedTotal: again.failedTotal }, { failed: [], failedTotal: 0 })
    await converged([dirA, dirB, dirC], 'after revert')
  })

  it('partition and heal: C, stopped during a delete, comes back and does not resurrect the file', async () => {
    await stop(repoC)
    await unlink(join(dirA, 'f.txt'))
    await writeFile(join(dirA, 'new-while-c-away.txt'), 'hello C\n')
    await converged([dirA, dirB], 'delete while C is down')
    assert.equal(await text(join(dirC, 'f.txt')), 'f.txt from A\n', 'C still holds it while away')
    await start(repoC)
    await rejoin(repoC)
    const synced = await converged([dirA, dirB, dirC], 'heal')
    assert.equal(synced['f.txt'], undefined)
    assert.equal(synced['new-while-c-away.txt'], sha('hello C\n'))
    // C is a backup box: done with it, it would only slow the next test down
    await stop(repoC)
  })

  it('kill -9 of the receiver at random moments of 20 MiB transfers: never a partial file under the real name; the tree converges', async (t) => {
    // every version big.bin ever had on A: after a kill, B holds one of them or none, never a mix
    const versions = new Map<string, string>([[sha('old big\n'), 'v0']])
    let newest = ''
    const writeVersion = async (): Promise<void> => {
      const bytes = randomBytes(20 * 1024 * 1024)
      newest = sha(bytes)
      versions.set(newest, `v${versions.size}`)
      // written beside, then renamed in: A itself never shows a partial file to its scanner
      await writeFile(join(base, 'big.tmp'), bytes)
      await rename(join(base, 'big.tmp'), join(dirA, 'big.bin'))
    }
    await writeVersion()
    const seen: string[] = []
    for (let i = 0; i < 6; i++) {
      await stop(repoB, 'SIGKILL')
      // the killed daemon could not remove it; the helper waits for a fresh one
      await rm(repoPaths(repoB).api, { force: true })
      const bytes = await readFile(join(dirB, 'big.bin')).catch(() => undefined)
      const state = bytes === undefined ? 'absent' : versions.get(sha(bytes)) ?? `partial (${bytes.length} bytes)`
      seen.push(state + (bytes !== undefined && sha(bytes) === newest ? ' (newest)' : ''))
      assert.ok(state === 'absent' || /^v\d+$/.test(state), `after kill ${i + 1}: big.bin is ${state}`)
      // B caught up before the kill: give the next round a transfer to interrupt
      if (bytes !== undefined && sha(bytes) === newest && i < 5) await writeVersion()
      await start(repoB)
      await rejoin(repoB)
      // a random moment of the transfer that follows: once its temp file is being written (or a random deadline passed)
      const writing = async (): Promise<boolean> => (await readdir(dirB).catch(() => [])).some((n) => n.startsWith('.homecloud-tmp-'))
      await waitFor(writing, 200 + Math.floor(Math.random() * 1300), 'no write').catch(() => {})
      await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 200)))
    }
    t.diagnostic(`big.bin on B after each kill: ${seen.join(', ')}`)
    await converged([dirA, dirB], 'after the kills', 60_000)
    assert.equal(sha(await readFile(join(dirB, 'big.bin'))), newest)
    // leftover temp files of the killed writes are removed on start
    await waitFor(async () => !(await readdir(dirB)).some((n) => n.startsWith('.homecloud-tmp-')), 5_000, 'temp files left in B\'s folder')
    assert.ok(seen.some((s) => !s.endsWith('(newest)')), `no kill interrupted a transfer: ${seen.join(', ')}`)
  })

  it('share remove stops sharing and leaves the folder; bad input is refused with exit 1 or 2', async () => {
    const before = await tree(dirB)
    assert.match(await ok(repoB, ['share', 'remove', 'docs']), /^stopped sharing docs; \S+folder-b is left as it is\n/)
    assert.deepEqual((await cliJson<{ shares: ShareInfo[] }>(repoB, ['share', 'list'])).shares, [])
    assert.deepEqual(await tree(dirB), before)
    const missing = await cli(repoB, ['share', 'status', 'docs'])
    assert.equal(missing.code, 1)
    assert.equal(missing.stderr, 'homecloud: no share "docs" on this device\n')
    assert.equal((await cli(repoA, ['share', 'add', dirA])).code, 2, '--swarm is required')
    const overlap = await cli(repoA, ['share', 'add', join(dirA, 'sub'), '--swarm', 'family'])
    assert.equal(overlap.code, 1)
    assert.match(overlap.stderr, /overlaps share docs/)
    const revert = await cli(repoA, ['share', 'revert', 'docs'])
    assert.equal(revert.code, 1)
    assert.match(revert.stderr, /only receive-only shares revert/)
  })
})
