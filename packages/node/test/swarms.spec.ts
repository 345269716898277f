import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import { drain } from '@homecloud/test-support'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import {
  createHomecloudNode, FamilyRelayPolicy, InvalidParametersError, RELAY_DEFAULT_DATA_LIMIT, ROSTER_SYNC_PROTOCOL, resolveConfig,
  type HomecloudNode
} from '../src/index.js'
import { addressOf, startDevice, testConfig, useDevices, waitFor } from './helpers.js'
import type { ConnectionLimits, PeerId } from '@libp2p/interface'
import type { SingleKadDHT } from '@libp2p/kad-dht'

describe('private swarms on the device', () => {
  const { devices, tempPath } = useDevices()

  it('create → invite → join between two devices; the gate is the swarm service\'s; an outsider is refused', async () => {
    const a = await startDevice(devices, 'box-a', { swarmDatastorePath: tempPath('a-swarms') })
    const b = await startDevice(devices, 'box-b')
    const outsider = await startDevice(devices, 'outsider')
    assert.equal(a.gate, a.swarms.gate)

    const family = await a.swarms.create('family')
    const { code } = await a.swarms.invite('family', { expiresInMs: 60_000 })
    // B reaches A only through the addresses in the code
    assert.equal(b.libp2p.getConnections(a.peerId).length, 0)
    const joined = await b.swarms.join(code, { name: 'pi-parents' })
    assert.equal(joined.id, family.id)
    await waitFor(() => a.swarms.members('family').length === 2, { what: 'A to list B' })
    assert.deepEqual(a.swarms.members('family').map(m => m.name), ['box-a', 'pi-parents'])
    assert.deepEqual(b.swarms.members('family').map(m => m.peerId).sort(), [a.peerId.toString(), b.peerId.toString()].sort())

    await outsider.connect(addressOf(a))
    const stream = await outsider.libp2p.dialProtocol(a.peerId, ROSTER_SYNC_PROTOCOL)
    assert.deepEqual(await drain(stream), { bytes: 0, reset: true })
    await waitFor(() => (a.swarms.stats().gate.refused[ROSTER_SYNC_PROTOCOL] ?? 0) >= 1, { what: 'the refusal to be counted' })
  })

  it('keeps swarms and roster in LevelDB across a stop/start and a new device on the same folder', async () => {
    const path = tempPath('persist')
    const privateKey = await generateKeyPair('Ed25519')
    const first = await createHomecloudNode(await testConfig('keeper', { privateKey, swarmDatastorePath: path }))
    devices.push(first)
    const created = await first.swarms.create('family')
    await first.swarms.invite('family', { uses: 3 })
    await first.stop()
    assert.throws(() => first.swarms.get('family'), { code: 'ERR_NOT_FOUND' })
    await first.start()
    assert.deepEqual(first.swarms.get('family'), created)
    await first.stop()

    const again = await createHomecloudNode(await testConfig('keeper', { privateKey, swarmDatastorePath: path }))
    devices.push(again)
    assert.deepEqual(again.swarms.list(), [created])
    assert.deepEqual(again.swarms.invites('family').map(i => i.uses), [3])
  })

  it('refuses a swarm database that is the peer store\'s, and bad timings; rendezvous is off without a DHT', async () => {
    const privateKey = await generateKeyPair('Ed25519')
    const invalid = (patch: Record<string, unknown>, message: RegExp): void => {
      assert.throws(() => resolveConfig({ privateKey, name: 'pi', ...patch }), (err: Error & { code?: string }) => {
        assert.equal(err.code, InvalidParametersError.code)
        assert.match(err.message, message)
        return true
      })
    }
    invalid({ datastorePath: '/x/db', swarmDatastorePath: '/x/db' }, /must differ/)
    invalid({ swarmDatastorePath: '' }, /swarmDatastorePath/)
    invalid({ swarm: { rendezvousIntervalMs: 10 } }, /rendezvousIntervalMs/)
    invalid({ swarm: { protocolTimeoutMs: 10 ** 9 } }, /protocolTimeoutMs/)
    assert.equal(resolveConfig({ privateKey, name: 'pi', services: { dht: 'off' } }).swarm.rendezvousIntervalMs, 0)
    assert.equal(resolveConfig({ privateKey, name: 'pi' }).swarm.rendezvousIntervalMs, 5 * 60 * 1000)
  })

  it('rendezvous through the real DHT: a member finds another at the point derived from the secret', async () => {
    const dht = { services: { dht: 'server' as const } }
    const a = await startDevice(devices, 'dht-a', dht)
    const b = await startDevice(devices, 'dht-b', dht)
    const meeting = await startDevice(devices, 'dht-c', dht)
    await a.swarms.create('family')
    await b.swarms.join((await a.swarms.invite('family')).code)
    await a.connect(addressOf(meeting))
    await b.connect(addressOf(meeting))
    for (const device of [a, b, meeting]) {
      await waitFor(() => (device.libp2p.services.dht as SingleKadDHT).routingTable.size >= 2, { what: `${device.name}'s routing table` })
    }
    // not connected any more: B must find A at the meeting point to sync with it
    await b.libp2p.hangUp(a.peerId)
    await waitFor(() => b.libp2p.getConnections(a.peerId).length === 0, { what: 'B to hang up A' })

    const announced = await a.swarms.rendezvous('family', { signal: AbortSignal.timeout(15_000) })
    assert.equal(announced.announced, true)
    const found = await b.swarms.rendezvous('family', { signal: AbortSignal.timeout(15_000) })
    assert.deepEqual(found.synced, [a.peerId.toString()])
  })
})

/** A test protocol on the member behind the relay: counts what arrives. */
const SINK = '/homecloud/test-sink/1.0.0'
const CHUNK = 16 * 1024

async function send (from: HomecloudNode, to: PeerId, total: number): Promise<void> {
  const stream = await from.libp2p.dialProtocol(to, SINK, { runOnLimitedConnection: true })
  try {
    const chunk = new Uint8Array(CHUNK)
    for (let sent = 0; sent < total; sent += CHUNK) {
      if (!stream.send(chunk)) await stream.onDrain({ signal: AbortSignal.timeout(10_000) })
    }
    await stream.close()
  } catch {
    // the relay cut the stream: the receiver's count tells how far it got
  }
}

describe('family relay: unlimited for members, libp2p defaults for everyone else', () => {
  const { devices } = useDevices()
  let relay: HomecloudNode, member: HomecloudNode, other: HomecloudNode, stranger: HomecloudNode
  const received = new Map<string, { bytes: number, reset: boolean }>()
  let circuit: string

  before(async () => {
    relay = await startDevice(devices, 'relay', { services: { relayServer: true } })
    // reachable only through the relay: no listener of its own
    member = await startDevice(devices, 'behind-nat', { listen: ['/p2p-circuit'] })
    other = await startDevice(devices, 'other-member')
    stranger = await startDevice(devices, 'stranger')
    await relay.swarms.create('family')
    await member.swarms.join((await relay.swarms.invite('family')).code)
    await other.swarms.join((await relay.swarms.invite('family')).code)
    await waitFor(() => relay.swarms.members('family').length === 3, { what: 'three members' })
    circuit = await waitFor(() => member.status().relayReservations[0], { what: 'a reservation on the relay' })
    await member.libp2p.handle(SINK, async (stream, connection) => {
      received.set(connection.remotePeer.toString(), await drain(stream))
    }, { runOnLimitedConnection: true })
  })

  /** `from` connects to the member through the relay and sends it 512 KiB: its connection's limits, and what the member read. */
  async function sendThroughRelay (from: HomecloudNode, what: string): Promise<{ limits: ConnectionLimits | undefined, got: { bytes: number, reset: boolean } }> {
    const row = await from.connect(circuit)
    assert.equal(row.path, 'relayed')
    const limits = from.libp2p.getConnections(member.peerId)[0].limits
    await send(from, member.peerId, 512 * 1024)
    return { limits, got: await waitFor(() => received.get(from.peerId.toString()), { timeout: 20_000, what }) }
  }

  it('a member relays 512 KiB to another member on an unlimited relayed connection', async () => {
    const { limits, got } = await sendThroughRelay(other, 'the member\'s data')
    assert.equal(limits, undefined)
    assert.deepEqual(got, { bytes: 512 * 1024, reset: false })
  })

  it('a stranger gets a limited relayed connection, cut at the default 128 KiB', async () => {
    const { limits, got } = await sendThroughRelay(stranger, 'the stranger\'s stream to end')
    assert.notEqual(limits, undefined)
    assert.ok(got.bytes < Number(RELAY_DEFAULT_DATA_LIMIT), `${got.bytes} bytes went through`)
    // the relay tore the relayed connection down
    await waitFor(() => stranger.libp2p.getConnections(member.peerId).length === 0, { what: 'the stranger\'s relayed connection to close' })
  })

  it('policy: strangers hold at most maxReservations slots; members are never refused', async () => {
    const keys = await Promise.all([0, 1, 2, 3].map(async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))))
    const [m, s1, s2, s3] = keys
    const policy = new FamilyRelayPolicy({ maxReservations: 2, memberReservations: 4, isMember: p => p.equals(m) })
    assert.equal(policy.denyReservation(s3, [s1, m]), false)
    assert.equal(policy.denyReservation(s3, [s1, s2, m]), true)
    assert.equal(policy.denyReservation(s2, [s1, s2]), false, 'a refresh of its own slot')
    assert.equal(policy.denyReservation(m, [s1, s2]), false)
    assert.equal(policy.limitFor(m, m), undefined)
    assert.deepEqual(policy.limitFor(m, s1), { data: RELAY_DEFAULT_DATA_LIMIT, duration: 120_000 })
    assert.notEqual(policy.limitFor(s1, m), undefined)
  })
})
