import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it, afterEach } from 'node:test'
import { drain, removeDir, tempDir, waitFor } from '@homecloud/test-support'
import { Level } from 'level'
import {
  decodeInvite, encodeInvite, LevelSwarmDatastore, JOIN_PROTOCOL, ROSTER_SYNC_PROTOCOL
} from '../src/index.js'
import { connect, createDevice, ECHO, handleEcho, stopDevices, trySend } from './utils.js'
import type { Device } from './utils.js'

const codeOf = (err: unknown): string | undefined => (err as { code?: string }).code

describe('swarm service: create, invite, join', () => {
  let devices: Device[] = []
  const device = async (name: string, options: Parameters<typeof createDevice>[1] = {}): Promise<Device> => {
    const d = await createDevice(name, options)
    devices.push(d)
    return d
  }

  afterEach(async () => {
    await stopDevices(...devices)
    devices = []
  })

  it('create → invite → join: both hold the same roster and secret and see each other as members', async () => {
    const a = await device('alpha')
    const b = await device('beta')
    const family = await a.service.create('family')
    assert.equal(family.members, 1)
    const { code } = await a.service.invite('family', { expiresInMs: 60_000 })
    assert.ok(code.length <= 200)
    const joined = await b.service.join(code)
    assert.equal(joined.id, family.id)
    assert.equal(joined.name, 'family')
    const ids = (d: Device): string[] => d.service.members('family').map(m => m.peerId).sort()
    await waitFor(() => a.service.members('family').length === 2)
    assert.deepEqual(ids(a), ids(b))
    assert.deepEqual(ids(a), [a.peerId.toString(), b.peerId.toString()].sort())
    assert.deepEqual(b.service.secret('family'), a.service.secret('family'))
    const beta = a.service.members('family').find(m => m.name === 'beta')
    assert.equal(beta?.online, true)
    assert.equal(beta?.path, 'direct')
    assert.equal(beta?.addedBy, a.peerId.toString())
    assert.equal(a.service.isMember(family.id, b.peerId), true)
    assert.equal(b.service.isMember(family.id, a.peerId), true)
    assert.deepEqual(a.service.invites('family').map(i => [i.used, i.usable]), [[1, false]])

    // a private protocol behind the gate works between members
    await handleEcho(a, family.id)
    const stream = await b.node.dialProtocol(a.peerId, ECHO)
    stream.send(Uint8Array.of(1, 2, 3))
    await stream.close()
    assert.equal((await drain(stream)).bytes, 3)
  })

  it('an outsider gets every private stream reset, learns nothing, and is counted', async () => {
    const a = await device('alpha')
    const outsider = await device('outsider')
    const family = await a.service.create('family')
    const { code } = await a.service.invite('family')
    await handleEcho(a, family.id)
    await connect(outsider, a)

    for (const protocol of [ROSTER_SYNC_PROTOCOL, ECHO]) {
      const stream = await outsider.node.dialProtocol(a.peerId, protocol)
      trySend(stream, Uint8Array.of(0x10, 1, 2, 3))
      const result = await drain(stream)
      assert.deepEqual(result, { bytes: 0, reset: true }, protocol)
    }
    // join with garbage instead of a request: reset, no reply
    const garbage = await outsider.node.dialProtocol(a.peerId, JOIN_PROTOCOL)
    trySend(garbage, Uint8Array.of(3, 1, 2, 3))
    assert.equal((await drain(garbage)).bytes, 0)
    // join with a well-formed code whose token was never recorded (forged)
    const real = decodeInvite(code)
    const forged = encodeInvite({ ...real, token: new Uint8Array(randomBytes(16)) })
    await assert.rejects(outsider.service.join(forged), (err) => codeOf(err) === 'ERR_INVITE_UNKNOWN')

    const stats = a.service.stats()
    assert.equal(stats.gate.refused[ROSTER_SYNC_PROTOCOL], 1)
    assert.equal(stats.gate.refused[ECHO], 1)
    assert.equal(stats.joins.ERR_INVITE_UNKNOWN, 1)
    assert.deepEqual(outsider.service.list(), [])
    assert.equal(a.service.members('family').length, 1)
    // the real invite is still usable afterwards
    assert.equal(a.service.invites('family')[0].usable, true)
  })

  it('refuses expired, reused, tampered and wrong-swarm codes with clear codes', async () => {
    let skew = 0
    const a = await device('alpha', { now: () => Date.now() + skew })
    const b = await device('beta')
    const c = await device('gamma')
    const other = await device('other')
    await a.service.create('family')

    // expired, seen by the joiner's own clock: nothing is sent
    const short = await a.service.invite('family', { expiresInMs: 2000 })
    const late = await device('late', { now: () => Date.now() + 60_000 })
    await assert.rejects(late.service.join(short.code), (err) => codeOf(err) === 'ERR_INVITE_EXPIRED')
    // expired by the member's clock although the joiner's clock says otherwise
    skew = 60_000
    await assert.rejects(b.service.join(short.code), (err) => codeOf(err) === 'ERR_INVITE_EXPIRED')
    skew = 0

    // reused
    const once = await a.service.invite('family', { uses: 1 })
    await b.service.join(once.code)
    await assert.rejects(c.service.join(once.code), (err) => codeOf(err) === 'ERR_INVITE_USED')

    // tampered: a changed character fails the checksum before anything is sent
    const fresh = await a.service.invite('family')
    const i = 30
    const tampered = fresh.code.slice(0, i) + (fresh.code[i] === 'a' ? 'b' : 'a') + fresh.code.slice(i + 1)
    await assert.rejects(c.service.join(tampered), (err) => codeOf(err) === 'ERR_INVITE_INVALID')

    // wrong swarm: a code of another swarm pointed at a member of this one
    await other.service.create('elsewhere')
    const foreign = decodeInvite((await other.service.invite('elsewhere')).code)
    const redirected = encodeInvite({ ...foreign, inviter: a.peerId, addresses: a.node.getMultiaddrs() })
    await assert.rejects(c.service.join(redirected), (err) => codeOf(err) === 'ERR_WRONG_SWARM')

    assert.deepEqual(c.service.list(), [])
    assert.equal(a.service.members('family').length, 2)
    assert.deepEqual(a.service.stats().joins, { ok: 1, ERR_INVITE_EXPIRED: 1, ERR_INVITE_USED: 1, ERR_WRONG_SWARM: 1 })
    // the untouched invite still works
    await c.service.join(fresh.code)
    assert.equal(a.service.members('family').length, 3)
  })

  it('every member accepts an invite, and every member refuses it once used', async () => {
    const a = await device('alpha')
    const b = await device('beta')
    const c = await device('gamma')
    const d = await device('delta')
    await a.service.create('family')
    await b.service.join((await a.service.invite('family')).code)
    const invite = await a.service.invite('family')
    await waitFor(() => b.service.invites('family').some(i => i.usable), { what: 'invite reached beta' })
    // no addresses for the inviter: the joiner has to go through beta
    const viaB = encodeInvite({ ...decodeInvite(invite.code), addresses: [] })
    const bAddr = b.node.getMultiaddrs()[0]
    await c.service.join(viaB, { via: [bAddr] })
    assert.ok(b.service.members('family').some(m => m.peerId === c.peerId.toString()))
    await waitFor(() => a.service.members('family').length === 3, { what: 'alpha learned of gamma' })
    // alpha, who made the invite, refuses the spent code
    await assert.rejects(d.service.join(invite.code), (err) => codeOf(err) === 'ERR_INVITE_USED')
    assert.equal(a.service.stats().joins.ERR_INVITE_USED, 1)
  })

  it('a device belongs to several swarms; each gate admits only that swarm\'s members', async () => {
    const a = await device('alpha')
    const b = await device('beta')
    const c = await device('gamma')
    const family = await a.service.create('family')
    const friends = await a.service.create('friends')
    await b.service.join((await a.service.invite('family')).code)
    await b.service.join((await a.service.invite('friends')).code)
    await c.service.join((await a.service.invite('friends')).code)
    assert.deepEqual(b.service.list().map(s => s.name), ['family', 'friends'])
    assert.deepEqual(c.service.list().map(s => s.name), ['friends'])
    await handleEcho(a, family.id)
    // gamma is a member of friends but not of family: reset
    const refused = await c.node.dialProtocol(a.peerId, ECHO)
    trySend(refused, Uint8Array.of(1))
    assert.deepEqual(await drain(refused), { bytes: 0, reset: true })
    const admitted = await b.node.dialProtocol(a.peerId, ECHO)
    admitted.send(Uint8Array.of(1))
    await admitted.close()
    assert.equal((await drain(admitted)).bytes, 1)
    assert.equal(friends.id === family.id, false)
  })

  it('bad input changes nothing', async () => {
    const a = await device('alpha')
    await a.service.create('family')
    await assert.rejects(a.service.create('family'), (err) => codeOf(err) === 'ERR_SWARM_EXISTS')
    await assert.rejects(a.service.create(''), (err) => codeOf(err) === 'ERR_INVALID_PARAMETERS')
    await assert.rejects(a.service.create('x'.repeat(65)), (err) => codeOf(err) === 'ERR_INVALID_PARAMETERS')
    await assert.rejects(a.service.invite('family', { uses: 0 }), (err) => codeOf(err) === 'ERR_INVALID_PARAMETERS')
    await assert.rejects(a.service.invite('family', { expiresInMs: -1 }), (err) => codeOf(err) === 'ERR_INVALID_PARAMETERS')
    await assert.rejects(a.service.invite('nope'), (err) => codeOf(err) === 'ERR_NOT_FOUND')
    await assert.rejects(a.service.remove('family', 'nobody'), (err) => codeOf(err) === 'ERR_NOT_FOUND')
    assert.throws(() => a.service.members('nope'), (err) => codeOf(err) === 'ERR_NOT_FOUND')
    assert.deepEqual(a.service.list().map(s => [s.name, s.members, s.epoch]), [['family', 1, 0]])
    assert.deepEqual(a.service.invites('family'), [])
  })

  it('persistence: a service recreated on the same LevelDB keeps its swarms, roster and secret', async () => {
    const dir = await tempDir('hc-swarm-')
    const db = new Level<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' })
    try {
      const a = await device('alpha', { datastore: new LevelSwarmDatastore(db) })
      const b = await device('beta')
      const family = await a.service.create('family')
      await a.service.create('friends')
      await b.service.join((await a.service.invite('family')).code)
      const pending = await a.service.invite('family', { uses: 2 })
      const before = { list: a.service.list(), members: a.service.members('family').map(m => [m.peerId, m.name]), secret: a.service.secret('family') }
      await a.service.stop()

      const again = await device('alpha', { datastore: new LevelSwarmDatastore(db), node: a.node, privateKey: a.privateKey })
      assert.deepEqual(again.service.list(), before.list)
      assert.deepEqual(again.service.members('family').map(m => [m.peerId, m.name]), before.members)
      assert.deepEqual(again.service.secret('family'), before.secret)
      assert.equal(again.service.isMember(family.id, b.peerId), true)
      // the pending invite survived too, and the restarted member honours it
      const c = await device('gamma')
      await c.service.join(pending.code)
      assert.equal(again.service.members('family').length, 3)
    } finally {
      await stopDevices(...devices)
      devices = []
      await db.close()
      await removeDir(dir)
    }
  })
})
