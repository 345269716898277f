import assert from 'node:assert/strict'
import { chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { removeDir, tempDir } from '@homecloud/test-support'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { lockRepo } from '../src/lock.js'
import { initRepo, openRepo, repoPaths, resolveRepoPath } from '../src/repo.js'

describe('repo', async () => {
  const base = await tempDir('homecloud-repo-')
  after(async () => { await removeDir(base) })

  it('creates folder, key, token and config with private modes', async () => {
    const root = join(base, 'a')
    const { paths, config, peerId } = await initRepo(root, { name: 'box-a' })
    assert.equal((await stat(paths.root)).mode & 0o777, 0o700)
    for (const file of [paths.key, paths.token, paths.config]) {
      assert.equal((await stat(file)).mode & 0o777, 0o600, file)
    }
    assert.equal((await readFile(paths.key)).byteLength, 68)
    assert.equal(config.name, 'box-a')
    assert.match(peerId, /^12D3KooW/)
    const saved = JSON.parse(await readFile(paths.config, 'utf8')) as { version: number }
    assert.equal(saved.version, 1)
  })

  it('reloads the same identity (same PeerId after restart)', async () => {
    const root = join(base, 'b')
    const { peerId } = await initRepo(root, { name: 'box-b' })
    const first = await openRepo(root)
    const second = await openRepo(root)
    assert.equal(peerIdFromPrivateKey(first.privateKey).toString(), peerId)
    assert.equal(peerIdFromPrivateKey(second.privateKey).toString(), peerId)
    assert.equal(first.token, second.token)
    assert.ok(first.token.length >= 32)
  })

  it('gives every repo its own key and token', async () => {
    const a = await initRepo(join(base, 'c1'))
    const b = await initRepo(join(base, 'c2'))
    assert.notEqual(a.peerId, b.peerId)
    assert.notEqual((await openRepo(a.paths.root)).token, (await openRepo(b.paths.root)).token)
  })

  it('refuses to overwrite an existing repo, and changes nothing', async () => {
    const root = join(base, 'd')
    const { paths } = await initRepo(root, { name: 'first' })
    const key = await readFile(paths.key)
    await assert.rejects(initRepo(root, { name: 'second' }), { code: 'ERR_REPO', message: /refusing to overwrite/ })
    assert.deepEqual(await readFile(paths.key), key)
    assert.equal((await openRepo(root)).config.name, 'first')
  })

  it('accepts an existing empty folder and refuses a bad name before writing', async () => {
    const root = join(base, 'e')
    await mkdir(root, { mode: 0o755 })
    await assert.rejects(initRepo(root, { name: '' }), { code: 'ERR_CONFIG' })
    await initRepo(root, { name: 'box-e' })
    assert.equal((await stat(root)).mode & 0o777, 0o700)
  })

  it('refuses a key readable by others, and a missing repo, with clear messages', async () => {
    const root = join(base, 'f')
    const { paths } = await initRepo(root)
    await chmod(paths.key, 0o644)
    await assert.rejects(openRepo(root), { code: 'ERR_REPO', message: /readable by other users.*chmod 600/ })
    await assert.rejects(openRepo(join(base, 'nothing-here')), { code: 'ERR_REPO', message: /no repo at .*homecloud init/ })
  })

  it('refuses a config from a newer version naming the file', async () => {
    const root = join(base, 'g')
    const { paths } = await initRepo(root)
    await writeFile(paths.config, JSON.stringify({ version: 99 }))
    await assert.rejects(openRepo(root), { code: 'ERR_CONFIG', message: /config\.json: config version 99 is newer/ })
  })

  it('resolves the repo from --repo, then $HOMECLOUD_REPO, then ~/.homecloud', () => {
    assert.equal(resolveRepoPath('/x/flag', { HOMECLOUD_REPO: '/x/env' }, '/home/u'), '/x/flag')
    assert.equal(resolveRepoPath(undefined, { HOMECLOUD_REPO: '/x/env' }, '/home/u'), '/x/env')
    assert.equal(resolveRepoPath(undefined, {}, '/home/u'), '/home/u/.homecloud')
    assert.equal(resolveRepoPath('', { HOMECLOUD_REPO: '' }, '/home/u'), '/home/u/.homecloud')
  })
})

describe('repo lock', async () => {
  const base = await tempDir('homecloud-lock-')
  after(async () => { await removeDir(base) })

  it('is exclusive while held and free after release', async () => {
    const paths = repoPaths(base)
    const lock = await lockRepo(paths)
    assert.equal((await readFile(paths.lock, 'utf8')).trim(), String(process.pid))
    await assert.rejects(lockRepo(paths), { code: 'ERR_REPO', message: new RegExp(`in use by process ${process.pid}`) })
    await lock.release()
    await assert.rejects(stat(paths.lock), { code: 'ENOENT' })
    const again = await lockRepo(paths)
    await again.release()
  })

  it('takes over a lock whose process is gone', async () => {
    const paths = repoPaths(base)
    // pid far above any pid_max: no such process
    await writeFile(paths.lock, '2147483646\n')
    const lock = await lockRepo(paths)
    assert.equal((await readFile(paths.lock, 'utf8')).trim(), String(process.pid))
    await lock.release()
  })

  it('does not remove a lock another process took over', async () => {
    const paths = repoPaths(base)
    const lock = await lockRepo(paths)
    await writeFile(paths.lock, `${process.ppid}\n`)
    await lock.release()
    assert.equal((await readFile(paths.lock, 'utf8')).trim(), String(process.ppid))
    await rm(paths.lock)
  })
})
