import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { lstat, mkdir, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { removeDir, tempDir } from '@homecloud/test-support'
import type { DeviceIdentity } from '@homecloud/interface'
import type { AddContentResult, BlocksGcResult, BlocksVerifyResult, GetContentResult, StoreStat } from '@homecloud/node'
import { folderTree } from '@homecloud/sync'
import { runCli, spawnDaemon, waitFor } from '../src/child.js'
import type { DaemonChild } from '../src/child.js'
import { repoPaths } from '../src/repo.js'
import { cliJson, loopbackAddress, loopbackArgs, ok } from './daemon-cli.js'

/** DHT servers, so two devices on loopback form a DHT. */
const DAEMON_ARGS = loopbackArgs('--dht', 'server')

/** A command's JSON; adds and gets of big files take their time. */
async function json <T> (repo: string, args: string[], cwd?: string): Promise<T> {
  return cliJson<T>(repo, args, { cwd, timeoutMs: 120_000 })
}

async function sha256File (path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const piece of createReadStream(path)) hash.update(piece as Buffer)
  return hash.digest('hex')
}

async function exists (path: string): Promise<boolean> {
  return lstat(path).then(() => true, () => false)
}

/** The partial output a get into `output` keeps next to it (`.<name>.<tag>.homecloud-partial`). */
async function partialOf (output: string): Promise<string | undefined> {
  const name = (await readdir(dirname(output))).find(entry => entry.startsWith(`.${basename(output)}.`) && entry.endsWith('.homecloud-partial'))
  return name === undefined ? undefined : join(dirname(output), name)
}

/** Two real daemons (`homecloud start` processes) on loopback: add on A, get on B. */
describe('homecloud add / get / blocks (real processes)', async () => {
  const base = await tempDir('homecloud-content-')
  const repoA = join(base, 'a')
  const repoB = join(base, 'b')
  const source = join(base, 'source')
  const out = join(base, 'out')
  const daemons: DaemonChild[] = []
  let b: DaemonChild
  let addressA: string
  let folder: AddContentResult

  before(async () => {
    for (const [repo, name] of [[repoA, 'box-a'], [repoB, 'box-b']]) await ok(repo, ['init', '--name', name])
    daemons.push(await spawnDaemon(repoA, DAEMON_ARGS))
    b = await spawnDaemon(repoB, DAEMON_ARGS)
    daemons.push(b)
    const idA = await json<DeviceIdentity>(repoA, ['id'])
    addressA = loopbackAddress(idA)
    const connected = await runCli(['--repo', repoB, 'connect', addressA])
    assert.equal(connected.code, 0, connected.stderr)

    await mkdir(join(source, 'photos', '2024'), { recursive: true })
    await mkdir(out)
    await writeFile(join(source, 'empty.txt'), '')
    await writeFile(join(source, 'one.txt'), '1')
    await writeFile(join(source, 'notes.md'), randomBytes(100 * 1024))
    await writeFile(join(source, 'photos', 'big.raw'), randomBytes(3 * 1024 * 1024 + 11))
    await writeFile(join(source, 'photos', '2024', 'cat.jpg'), randomBytes(700 * 1024))
    await symlink('../notes.md', join(source, 'photos', 'notes-link'))
  })

  after(async () => {
    await Promise.all(daemons.map(async (daemon) => daemon.stop('SIGKILL')))
    await removeDir(base)
  })

  it('add prints the root CID; a relative PATH is resolved by the CLI', async () => {
    folder = await json<AddContentResult>(repoA, ['add', 'source'], base)
    assert.match(folder.cid, /^bafy/)
    assert.equal(folder.files, 5)
    assert.equal(folder.bytes, 100 * 1024 + 3 * 1024 * 1024 + 11 + 700 * 1024 + 1)
    assert.equal(folder.provided, true, 'announced in the DHT')
    const human = await runCli(['--repo', repoA, 'add', source])
    assert.equal(human.code, 0, human.stderr)
    assert.equal(human.stdout, `${folder.cid}\n`, 'the same tree gives the same CID; only the CID on stdout')
    assert.equal(human.stderr, '', 'no progress bar when stderr is not a terminal')
  })

  it('B gets the tree --from A: byte-identical, symlink kept as a link', async () => {
    const output = join(out, 'from-a')
    const got = await json<GetContentResult>(repoB, ['get', folder.cid, output, '--from', addressA])
    assert.deepEqual(await folderTree(output), await folderTree(source))
    assert.equal((await lstat(join(output, 'photos', 'notes-link'))).isSymbolicLink(), true)
    assert.deepEqual([got.files, got.directories, got.symlinks, got.bytes], [5, 3, 1, folder.bytes])
    assert.equal(got.receivedBytes, folder.bytes)
    assert.equal(await partialOf(output), undefined, 'no partial output is left')
  })

  it('B gets from DHT providers without --from; the human output says what came', async () => {
    const small = join(base, 'small')
    await mkdir(small)
    await writeFile(join(small, 'a.txt'), randomBytes(5000))
    const added = await json<AddContentResult>(repoA, ['add', small])
    const output = join(out, 'from-dht')
    let last = { code: -1 as number | null, stdout: '', stderr: '' }
    // B's routing table learns A a moment after they connect: retry while the DHT has no answer yet
    await waitFor(async () => {
      last = await runCli(['--repo', repoB, 'get', added.cid, output])
      return last.code === 0 || !last.stderr.includes('no providers')
    }, 30_000, 'B did not find A as a provider')
    assert.equal(last.code, 0, last.stderr)
    assert.match(last.stdout, new RegExp(`^got ${added.cid} into ${output}: 1 file in 1 folder, 4\\.9 KiB \\(4\\.9 KiB from 1 peer\\)\\n$`))
    assert.deepEqual(await folderTree(output), await folderTree(small))
  })

  it('refuses clearly: unknown CID (exit 1), existing output (exit 1), bad usage (exit 2); --help', async () => {
    const unknown = 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'
    const missing = await runCli(['--repo', repoB, 'get', unknown, join(out, 'unknown'), '--from', addressA])
    assert.equal(missing.code, 1)
    assert.match(missing.stderr, new RegExp(`^homecloud: block ${unknown} was not found at any of the 1 peers asked\\n$`))
    assert.equal(await exists(join(out, 'unknown')), false)
    assert.equal(await partialOf(join(out, 'unknown')), undefined)

    const existing = await runCli(['--repo', repoB, 'get', folder.cid, join(out, 'from-a'), '--from', addressA])
    assert.equal(existing.code, 1)
    assert.match(existing.stderr, /already exists: choose another output \(get never overwrites\)/)

    assert.equal((await runCli(['--repo', repoB, 'get', folder.cid])).code, 2)
    assert.equal((await runCli(['--repo', repoB, 'get', folder.cid, 'x', '--from', 'not-an-address'])).code, 2)
    assert.equal((await runCli(['--repo', repoB, 'blocks', 'defrag'])).code, 2)
    for (const args of [['add', '--help'], ['get', '--help'], ['blocks', '--help'], ['blocks', 'verify', '--help']]) {
      const help = await runCli(args)
      assert.equal(help.code, 0, args.join(' '))
      assert.match(help.stdout, /^usage: homecloud /, args.join(' '))
    }
  })

  it('kill -9 during a large get, rerun: completes, correct, and moves fewer bytes', async () => {
    const large = join(base, 'large.bin')
    await writeFile(large, randomBytes(48 * 1024 * 1024))
    const added = await json<AddContentResult>(repoA, ['add', large])
    const output = join(out, 'large.bin')
    const first = runCli(['--repo', repoB, 'get', added.cid, output, '--from', addressA])
    await waitFor(async () => {
      const partial = await partialOf(output)
      return partial !== undefined && (await stat(partial).then(st => st.size, () => 0)) >= 2 * 1024 * 1024
    }, 60_000, 'the get did not start writing')
    await b.stop('SIGKILL')
    const killed = await first
    assert.equal(killed.code, 1, 'the CLI reports the lost daemon')
    assert.equal(await exists(output), false, 'no half-written file under the real name')
    assert.notEqual(await partialOf(output), undefined)

    // the killed daemon left its api file: gone first, so the wait below is for the new daemon's
    await rm(repoPaths(repoB).api, { force: true })
    b = await spawnDaemon(repoB, DAEMON_ARGS)
    daemons.push(b)
    const got = await json<GetContentResult>(repoB, ['get', added.cid, output, '--from', addressA])
    assert.ok(got.reusedBytes >= 2 * 1024 * 1024, `reused ${got.reusedBytes} bytes`)
    assert.ok(got.receivedBytes < got.bytes, `received ${got.receivedBytes} of ${got.bytes}`)
    assert.equal(got.receivedBytes + got.reusedBytes, got.bytes)
    assert.equal(await sha256File(output), await sha256File(large))
    assert.equal(await partialOf(output), undefined)
  })

  it('a file changed on A after it was indexed is never sent: the get fails clearly', async () => {
    const path = join(base, 'changing.bin')
    await writeFile(path, randomBytes(2 * 1024 * 1024))
    const added = await json<AddContentResult>(repoA, ['add', path])
    await writeFile(path, randomBytes(2 * 1024 * 1024))
    const output = join(out, 'changing.bin')
    const failed = await runCli(['--repo', repoB, 'get', added.cid, output, '--from', addressA])
    assert.equal(failed.code, 1)
    assert.match(failed.stderr, /^homecloud: block \S+ was not found at any of the 1 peers asked\n$/)
    assert.equal(await exists(output), false)
  })

  it('blocks stat, gc (pinned content stays) and verify', async () => {
    const before = await json<StoreStat>(repoB, ['blocks', 'stat'])
    assert.ok(before.files >= 7 && before.pins >= 3, JSON.stringify(before))
    assert.ok(before.fileBytes >= folder.bytes + 48 * 1024 * 1024)
    const gc = await json<BlocksGcResult>(repoB, ['blocks', 'gc'])
    assert.ok(gc.removedBlocks >= 1, 'the file node of the failed get is not pinned')
    const afterGc = await json<StoreStat>(repoB, ['blocks', 'stat'])
    assert.equal(afterGc.pins, before.pins)
    assert.equal(afterGc.files, before.files)
    assert.equal(afterGc.blocks, before.blocks - gc.removedBlocks)
    const verified = await json<BlocksVerifyResult>(repoB, ['blocks', 'verify'])
    assert.deepEqual(verified.bad, [])
    assert.ok(verified.checked >= afterGc.blocks + afterGc.fileChunks)
    const human = await runCli(['--repo', repoB, 'blocks', 'stat'])
    assert.match(human.stdout, /^blocks\s+\d+ \(.+\) in the block store\nfiles\s+\d+ indexed in place/)
  })
})
