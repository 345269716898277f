import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { waitFor } from '@homecloud/test-support'
import type { CreatedInvite, HomecloudNode, SwarmInfo, SwarmMemberInfo, SwarmStats } from '@homecloud/node'
import { createControlApi } from '../src/index.js'
import type { ControlApi } from '../src/index.js'
import { TOKEN, get, post, startDevice, stubNode } from './helpers.js'
import type { Reply } from './helpers.js'

/** A loopback device with its control API: nothing that talks to the LAN or the router. */

function refused (reply: Reply, status: number, code: string, message?: RegExp): void {
  assert.equal(reply.status, status, JSON.stringify(reply.json))
  const error = (reply.json as { error: { code: string, message: string } }).error
  assert.equal(error.code, code)
  if (message !== undefined) assert.match(error.message, message)
}

describe('control API: private swarm routes (real devices)', () => {
  const devices: Array<{ node: HomecloudNode, api: ControlApi }> = []
  let a: ControlApi, b: ControlApi, c: ControlApi
  let code: string

  before(async () => {
    for (const name of ['box-a', 'box-b', 'box-c']) devices.push(await startDevice(name))
    ;[a, b, c] = devices.map(d => d.api)
  })

  after(async () => {
    for (const { node, api } of devices) {
      await api.stop()
      await node.stop()
    }
  })

  it('create: a swarm info; the same name twice is 409; a bad name or body is 400', async () => {
    const reply = await post(a, 'swarm/create', { name: 'family' })
    assert.equal(reply.status, 200)
    const info = reply.json as SwarmInfo
    assert.equal(info.name, 'family')
    assert.equal(info.members, 1)
    assert.equal(info.secretKnown, true)
    refused(await post(a, 'swarm/create', { name: 'family' }), 409, 'ERR_SWARM_EXISTS')
    refused(await post(a, 'swarm/create', {}), 400, 'ERR_INVALID_PARAMETERS', /name/)
    refused(await post(a, 'swarm/create', { name: 'x'.repeat(65) }), 400, 'ERR_INVALID_PARAMETERS')
    refused(await post(a, 'swarm/create', ['family']), 400, 'ERR_INVALID_PARAMETERS')
    assert.deepEqual((await get(a, 'swarm/list')).json, { swarms: [info] })
  })

  it('invite: a code (and a QR code when asked); bad uses is 400, an unknown swarm 404', async () => {
    const reply = await post(a, 'swarm/invite', { swarm: 'family', expiresInMs: 60_000, uses: 1, qr: true })
    assert.equal(reply.status, 200, JSON.stringify(reply.json))
    const invite = reply.json as CreatedInvite & { qr: string }
    assert.ok(invite.code.length <= 200)
    assert.equal(invite.uses, 1)
    assert.ok(invite.expires > Date.now())
    assert.match(invite.qr, /[▀▄█]/)
    code = invite.code
    refused(await post(a, 'swarm/invite', { swarm: 'family', uses: 0 }), 400, 'ERR_INVALID_PARAMETERS', /uses/)
    refused(await post(a, 'swarm/invite', { swarm: 'family', uses: '1' }), 400, 'ERR_INVALID_PARAMETERS')
    refused(await post(a, 'swarm/invite', { swarm: 'nope' }), 404, 'ERR_NOT_FOUND')
  })

  it('join: B joins with the code; both list both members', async () => {
    const reply = await post(b, 'swarm/join', { code, name: 'pi-parents' })
    assert.equal(reply.status, 200, JSON.stringify(reply.json))
    assert.equal((reply.json as SwarmInfo).name, 'family')
    const names = async (api: ControlApi): Promise<string[]> => {
      const { members } = (await get(api, 'swarm/members?swarm=family')).json as { members: SwarmMemberInfo[] }
      return members.map(m => m.name).sort()
    }
    await waitFor(async () => (await names(a)).length === 2)
    assert.deepEqual(await names(a), ['box-a', 'pi-parents'])
    assert.deepEqual(await names(b), ['box-a', 'pi-parents'])
    refused(await get(a, 'swarm/members'), 400, 'ERR_INVALID_PARAMETERS', /swarm/)
    refused(await get(a, 'swarm/members?swarm=nope'), 404, 'ERR_NOT_FOUND')
  })

  it('join refusals: used 409, tampered 400, expired 410, already in the swarm 409', async () => {
    refused(await post(c, 'swarm/join', { code }), 409, 'ERR_INVITE_USED', /already been used/)
    const tampered = code.slice(0, 20) + (code[20] === 'a' ? 'b' : 'a') + code.slice(21)
    refused(await post(c, 'swarm/join', { code: tampered }), 400, 'ERR_INVITE_INVALID', /checksum/)
    refused(await post(c, 'swarm/join', { code: 'not a code' }), 400, 'ERR_INVITE_INVALID')
    const short = (await post(a, 'swarm/invite', { swarm: 'family', expiresInMs: 1000 })).json as CreatedInvite
    await waitFor(() => Date.now() > short.expires, { timeout: 3000 })
    refused(await post(c, 'swarm/join', { code: short.code }), 410, 'ERR_INVITE_EXPIRED', /expired/)
    const again = (await post(a, 'swarm/invite', { swarm: 'family' })).json as CreatedInvite
    refused(await post(b, 'swarm/join', { code: again.code }), 409, 'ERR_SWARM_EXISTS')
    assert.deepEqual(((await get(c, 'swarm/list')).json as { swarms: unknown[] }).swarms, [])
  })

  it('remove: by name, reports the device, and the swarm no longer lists it; stats count it', async () => {
    const bPeer = devices[1].node.peerId.toString()
    const reply = await post(a, 'swarm/remove', { swarm: 'family', device: 'pi-parents' })
    assert.equal(reply.status, 200, JSON.stringify(reply.json))
    const { swarm, removed } = reply.json as { swarm: SwarmInfo, removed: { peerId: string, name: string } }
    assert.deepEqual(removed, { peerId: bPeer, name: 'pi-parents' })
    assert.equal(swarm.members, 1)
    assert.equal(swarm.epoch, 1, 'the secret was rotated')
    refused(await post(a, 'swarm/remove', { swarm: 'family', device: 'pi-parents' }), 404, 'ERR_NOT_FOUND')
    const stats = (await get(a, 'swarm/stats')).json as SwarmStats
    assert.equal(stats.joins.ok, 1)
    assert.ok((stats.joins.ERR_INVITE_USED ?? 0) >= 1, JSON.stringify(stats.joins))
  })

  it('leave: B forgets the swarm', async () => {
    const reply = await post(b, 'swarm/leave', { swarm: 'family' })
    assert.equal(reply.status, 200, JSON.stringify(reply.json))
    assert.equal((reply.json as { left: SwarmInfo }).left.name, 'family')
    assert.deepEqual(((await get(b, 'swarm/list')).json as { swarms: unknown[] }).swarms, [])
    refused(await post(b, 'swarm/leave', { swarm: 'family' }), 404, 'ERR_NOT_FOUND')
  })

  it('a device without swarms answers 501', async () => {
    const api = createControlApi({ node: stubNode(), token: TOKEN })
    await api.start()
    try {
      refused(await get(api, 'swarm/list'), 501, 'ERR_NOT_IMPLEMENTED')
    } finally {
      await api.stop()
    }
  })
})
