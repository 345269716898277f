import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { removeDir, tempDir } from '@homecloud/test-support'
import { createControlApi } from '@homecloud/gateway'
import type { ControlApi, ControlApiNode } from '@homecloud/gateway'
import { NotFoundError } from '@homecloud/interface'
import type { DeviceIdentity, PeerConnectionInfo } from '@homecloud/interface'
import { connectToDaemon, createApiClient } from '../src/api-client.js'
import { initRepo, openRepo } from '../src/repo.js'
import type { RepoPaths } from '../src/repo.js'

const identity: DeviceIdentity = { peerId: '12D3KooWStub', name: 'stub', addresses: ['/ip4/127.0.0.1/tcp/1'], reachability: 'unknown' }
const peer: PeerConnectionInfo = { peerId: '12D3KooWPeer', address: '/ip4/127.0.0.1/tcp/2', path: 'direct', direction: 'outbound' }

/** The CLI's client against the real control API with a stub device. */
describe('api client', async () => {
  const base = await tempDir('homecloud-client-')
  let paths: RepoPaths
  let api: ControlApi
  const node: ControlApiNode = {
    identity: () => identity,
    status: () => { throw new Error('not used') },
    peers: async () => [peer],
    connect: async (multiaddr) => {
      if (multiaddr.includes('unknown')) {
        throw new NotFoundError(`no route to ${multiaddr}`)
      }
      return peer
    }
  }

  before(async () => {
    ({ paths } = await initRepo(join(base, 'repo')))
    api = createControlApi({ node, token: (await openRepo(paths.root)).token })
    await api.start()
  })

  after(async () => {
    await api.stop()
    await removeDir(base)
  })

  it('says no daemon runs when there is no api file', async () => {
    await assert.rejects(connectToDaemon(paths), {
      code: 'ERR_DAEMON_NOT_RUNNING',
      message: `no daemon is running for repo ${paths.root}: start it with \`homecloud start\``
    })
  })

  it('finds the daemon through the api file and the token', async () => {
    await writeFile(paths.api, api.url + '\n')
    const client = await connectToDaemon(paths)
    assert.deepEqual(await client.get('id'), identity)
    assert.deepEqual(await client.get('peers'), { peers: [peer] })
    assert.deepEqual(await client.post('connect', { multiaddr: '/ip4/127.0.0.1/tcp/2' }), peer)
  })

  it('turns the daemon\'s error answers into errors with its code and status', async () => {
    const client = await connectToDaemon(paths)
    await assert.rejects(client.post('connect', { multiaddr: '/dns4/unknown/tcp/1' }), { code: 'ERR_NOT_FOUND', status: 404, message: 'no route to /dns4/unknown/tcp/1' })
    await assert.rejects(client.get('nope'), { code: 'ERR_NOT_FOUND', status: 404 })
    const wrong = createApiClient(api.url, 'x'.repeat(40), paths.root)
    await assert.rejects(wrong.get('id'), { code: 'ERR_UNAUTHENTICATED', status: 401 })
  })

  it('says no daemon runs when the api file is stale', async () => {
    const other = createControlApi({ node, token: 'y'.repeat(40) })
    await other.start()
    const url = other.url
    await other.stop()
    await writeFile(paths.api, url + '\n')
    const client = await connectToDaemon(paths)
    await assert.rejects(client.get('id'), { code: 'ERR_DAEMON_NOT_RUNNING' })
  })

  it('refuses an api file that holds no URL', async () => {
    await writeFile(paths.api, 'file:///etc/passwd\n')
    await assert.rejects(connectToDaemon(paths), { code: 'ERR_REPO' })
  })
})
