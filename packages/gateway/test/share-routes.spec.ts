import assert from 'node:assert/strict'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { removeDir, tempDir, waitFor } from '@homecloud/test-support'
import type { HistoryVersion, HomecloudNode, ShareInfo, ShareOffer, ShareStatus } from '@homecloud/node'
import { createControlApi } from '../src/index.js'
import type { ControlApi } from '../src/index.js'
import { TOKEN, get, post, startDevice, stubNode } from './helpers.js'
import type { Reply } from './helpers.js'


function ok<T> (reply: Reply): T {
  assert.equal(reply.status, 200, JSON.stringify(reply.json))
  return reply.json as T
}

function refused (reply: Reply, status: number, code: string, message?: RegExp): void {
  assert.equal(reply.status, status, JSON.stringify(reply.json))
  const error = (reply.json as { error: { code: string, message: string } }).error
  assert.equal(error.code, code)
  if (message !== undefined) assert.match(error.message, message)
}

describe('control API: share routes (real devices)', () => {
  const devices: Array<{ node: HomecloudNode, api: ControlApi }> = []
  let a: ControlApi, b: ControlApi
  let dir: string

  before(async () => {
    dir = await tempDir('homecloud-gw-share-')
    for (const name of ['box-a', 'box-b']) devices.push(await startDevice(name, { shares: { watchDebounceMs: 50, retryIntervalMs: 300 } }))
    ;[a, b] = devices.map(d => d.api)
    await devices[0].node.swarms.create('family')
    const { code } = await devices[0].node.swarms.invite('family')
    await devices[1].node.swarms.join(code)
    await mkdir(join(dir, 'a'))
    await writeFile(join(dir, 'a', 'note.txt'), 'first')
  })

  after(async () => {
    for (const { node, api } of devices) {
      await api.stop()
      await node.stop()
    }
    await removeDir(dir)
  })

  it('add → offers on B → accept → status in sync; list shows shares and offers', async () => {
    const added = ok<ShareInfo>(await post(a, 'share/add', { path: join(dir, 'a'), swarm: 'family', name: 'docs' }))
    assert.deepEqual({ name: added.name, mode: added.mode, path: added.path }, { name: 'docs', mode: 'send-receive', path: join(dir, 'a') })
    await waitFor(async () => ok<{ offers: ShareOffer[] }>(await get(b, 'share/offers')).offers.length === 1, { timeout: 10_000 })
    const listed = ok<{ shares: ShareInfo[], offers: ShareOffer[] }>(await get(b, 'share/list'))
    assert.deepEqual({ shares: listed.shares, offer: listed.offers[0].name }, { shares: [], offer: 'docs' })

    const accepted = ok<ShareInfo>(await post(b, 'share/accept', { share: 'docs', path: join(dir, 'b') }))
    assert.equal(accepted.id, added.id)
    await waitFor(async () => (await readFile(join(dir, 'b', 'note.txt'), 'utf8').catch(() => '')) === 'first', { timeout: 10_000 })
    // the file is renamed into place first, recorded in the index just after
    await waitFor(async () => ok<ShareStatus>(await get(b, 'share/status?share=docs')).files === 1, { timeout: 5_000 })
    const status = ok<ShareStatus>(await get(b, 'share/status?share=docs'))
    assert.equal(status.share.id, added.id)
    assert.equal(status.needFiles, 0)
    const all = ok<{ shares: ShareStatus[] }>(await get(a, 'share/status'))
    assert.deepEqual(all.shares.map(s => s.share.name), ['docs'])
  })

  it('history lists the replaced version and restore --to writes it', async () => {
    await writeFile(join(dir, 'a', 'note.txt'), 'second')
    ok(await post(a, 'share/rescan', { share: 'docs' }))
    await waitFor(async () => (await readFile(join(dir, 'b', 'note.txt'), 'utf8').catch(() => '')) === 'second', { timeout: 10_000 })
    const { versions } = ok<{ versions: HistoryVersion[] }>(await get(b, 'history?share=docs&path=note.txt'))
    assert.equal(versions.length, 1)
    assert.equal(versions[0].reason, 'replaced')
    const to = join(dir, 'restored.txt')
    const { restored } = ok<{ restored: string }>(await post(b, 'restore', { share: 'docs', path: 'note.txt', version: versions[0].version, to }))
    assert.equal(restored, to)
    assert.equal(await readFile(to, 'utf8'), 'first')
  })

  it('errors: unknown share 404, taken folder 409, relative path or bad mode 400, bad share path 400, no version 404', async () => {
    refused(await get(a, 'share/status?share=nope'), 404, 'ERR_SHARE_NOT_FOUND')
    refused(await post(a, 'share/add', { path: join(dir, 'a'), swarm: 'family' }), 409, 'ERR_SHARE_EXISTS')
    refused(await post(a, 'share/add', { path: 'a', swarm: 'family' }), 400, 'ERR_INVALID_PARAMETERS', /absolute/)
    await mkdir(join(dir, 'other'))
    refused(await post(a, 'share/add', { path: join(dir, 'other'), swarm: 'family', mode: 'mirror' }), 400, 'ERR_INVALID_PARAMETERS', /mode/)
    assert.equal(ok<{ shares: ShareInfo[] }>(await get(a, 'share/list')).shares.length, 1, 'nothing was added')
    refused(await post(b, 'share/accept', { share: 'unknown', path: join(dir, 'c') }), 404, 'ERR_SHARE_NOT_FOUND')
    refused(await get(b, 'history?share=docs&path=../etc/passwd'), 400, 'ERR_PATH_REJECTED')
    refused(await post(b, 'restore', { share: 'docs', path: 'note.txt', version: 999 }), 404, 'ERR_VERSION_NOT_FOUND')
    refused(await post(a, 'share/revert', { share: 'docs' }), 400, 'ERR_INVALID_PARAMETERS', /receive-only/)
  })

  it('remove: the share is gone, the folder stays', async () => {
    const { removed } = ok<{ removed: ShareInfo }>(await post(b, 'share/remove', { share: 'docs' }))
    assert.equal(removed.name, 'docs')
    assert.deepEqual(ok<{ shares: ShareInfo[] }>(await get(b, 'share/list')).shares, [])
    assert.equal(await readFile(join(dir, 'b', 'note.txt'), 'utf8'), 'second')
  })

  it('revert (receive-only): the count, and each path that failed with its code and message', async () => {
    await mkdir(join(dir, 'pics'))
    await writeFile(join(dir, 'pics', 'one.txt'), 'one')
    ok(await post(a, 'share/add', { path: join(dir, 'pics'), swarm: 'family', name: 'pics' }))
    await waitFor(async () => ok<{ offers: ShareOffer[] }>(await get(b, 'share/offers')).offers.some(o => o.name === 'pics'), { timeout: 10_000 })
    const copy = join(dir, 'b-pics')
    ok(await post(b, 'share/accept', { share: 'pics', path: copy, mode: 'receive-only' }))
    await waitFor(async () => ok<ShareStatus>(await get(b, 'share/status?share=pics')).files === 1, { timeout: 10_000 })
    await writeFile(join(copy, 'one.txt'), 'changed on B')
    // an added folder holding a file the index never knows (ignored): it cannot go, and says why
    await writeFile(join(copy, '.homecloudignore'), '*.tmp\n')
    await mkdir(join(copy, 'added'))
    await writeFile(join(copy, 'added', 'x.txt'), 'x')
    await writeFile(join(copy, 'added', 'keep.tmp'), 'ignored')
    const result = ok<{ reverted: number, failed: Array<{ path: string, code: string, message: string }>, failedTotal: number }>(await post(b, 'share/revert', { share: 'pics' }))
    assert.equal(result.reverted, 2, JSON.stringify(result))
    assert.equal(result.failedTotal, 1)
    assert.deepEqual(result.failed.map(f => [f.path, f.code]), [['added', 'ERR_LOCAL_CHANGED']])
    assert.match(result.failed[0].message, /keep\.tmp/)
    assert.equal(await readFile(join(copy, 'one.txt'), 'utf8'), 'one')
    assert.equal(await readFile(join(copy, 'added', 'keep.tmp'), 'utf8'), 'ignored', 'never deleted')
  })

  it('a device without shares answers 501', async () => {
    const api = createControlApi({ node: stubNode(), token: TOKEN })
    await api.start()
    try {
      refused(await get(api, 'share/list'), 501, 'ERR_NOT_IMPLEMENTED')
    } finally {
      await api.stop()
    }
  })
})
