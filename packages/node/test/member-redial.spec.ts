import assert from 'node:assert/strict'
import { createServer, connect, type Server, type Socket } from 'node:net'
import { describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { createHomecloudNode, MEMBER_REDIAL, MemberRedial, redialDelay, StaleMemberConnections, type HomecloudNode, type HomecloudNodeConfig, type RedialLibp2p } from '../src/index.js'
import { addressOf, startDevice, testConfig, useDevices, waitFor } from './helpers.js'
import type { PeerId } from '@libp2p/interface'

/**
 * A loopback TCP relay to `port` that can go silent: `blackhole()` stops forwarding without
 * closing anything, like a NAT that forgot its mapping (both ends keep an open, dead connection).
 */
async function silentProxy (port: number): Promise<{ port: number, upstreamPorts: Set<number>, blackhole(): void, close(): Promise<void> }> {
  const sockets = new Set<Socket>()
  const upstreamPorts = new Set<number>()
  let silent = false
  const server: Server = createServer((down) => {
    const up = connect(port, '127.0.0.1', () => { upstreamPorts.add(up.localPort ?? 0) })
    for (const [from, to] of [[down, up], [up, down]]) {
      sockets.add(from)
      from.on('data', (chunk) => { if (!silent) to.write(chunk) })
      from.on('error', () => {})
      from.on('close', () => { to.destroy() })
    }
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as { port: number }).port,
    upstreamPorts,
    blackhole: () => { silent = true },
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise(resolve => server.close(resolve))
    }
  }
}

/** How soon a member must be back: far below the 5-minute rendezvous, with room for a loaded machine. */
const BACK_WITHIN_MS = 5_000

describe('member redial', () => {
  const { devices, tempPath } = useDevices()

  /** A device with its peer store and swarms in LevelDB under `tempPath(name)`, as a daemon's repo has them. */
  async function persistentConfig (name: string): Promise<HomecloudNodeConfig> {
    return testConfig(name, {
      privateKey: await generateKeyPair('Ed25519'),
      datastorePath: tempPath(name, 'datastore'),
      swarmDatastorePath: tempPath(name, 'swarms')
    })
  }

  async function pair (a: HomecloudNode, b: HomecloudNode): Promise<void> {
    await a.swarms.create('family')
    const { code } = await a.swarms.invite('family', { expiresInMs: 60_000 })
    await b.swarms.join(code)
    await waitFor(() => a.swarms.members('family').length === 2, { what: 'A to list B' })
  }

  it('a restarted device (same repo, new port) dials its members back at start, without a connect', async () => {
    const a = await startDevice(devices, 'box-a', await persistentConfig('box-a'))
    const bConfig = await persistentConfig('box-b')
    const b = await createHomecloudNode(bConfig)
    devices.push(b)
    await pair(a, b)
    assert.ok(b.libp2p.getConnections(a.peerId).length > 0)
    const oldAddress = addressOf(b)

    await b.stop()
    await waitFor(() => a.libp2p.getConnections(b.peerId).length === 0, { what: 'A to see B gone' })
    const started = performance.now()
    const again = await createHomecloudNode(bConfig)
    devices.push(again)
    // another port: A's own redial of B's old address cannot be what brings them together
    assert.notEqual(addressOf(again), oldAddress)

    const back = await waitFor(() => again.libp2p.getConnections(a.peerId)[0], { timeout: BACK_WITHIN_MS, what: 'the restarted device to reach A' })
    assert.equal(back.direction, 'outbound', 'the restarted device dialled A itself')
    assert.ok(performance.now() - started < BACK_WITHIN_MS)
    assert.equal(again.swarms.members('family').find(m => m.peerId === a.peerId.toString())?.online, true)
  })

  it('redials a member whose connection drops, and not a stranger', async () => {
    const a = await startDevice(devices, 'drop-a')
    const b = await startDevice(devices, 'drop-b')
    const stranger = await startDevice(devices, 'stranger')
    await pair(a, b)
    await stranger.connect(addressOf(a))

    // dropped, not closed: an error ends the connections (a reset, a dead NAT mapping)
    for (const peer of [b.peerId, stranger.peerId]) {
      for (const conn of a.libp2p.getConnections(peer)) conn.abort(new Error('the cable was pulled'))
    }
    await waitFor(() => a.libp2p.getConnections(b.peerId).length > 0, { timeout: BACK_WITHIN_MS, what: 'A and B to reconnect' })
    // by now both sides have redialled whatever they were going to (the first retry comes within 1 s)
    assert.equal(a.libp2p.getConnections(stranger.peerId).length, 0)
    assert.equal(a.swarms.members('family').find(m => m.peerId === b.peerId.toString())?.online, true)
  })

  it('leaves alone a member that hung up cleanly (a stop, a removal from the roster)', async () => {
    const a = await startDevice(devices, 'clean-a')
    const b = await startDevice(devices, 'clean-b')
    await pair(a, b)
    // the device's own redial runs too; this one counts what it decides
    const redial = new MemberRedial(b.libp2p, { members: () => [], isMember: (peer) => b.swarms.swarmsOf(peer).length > 0 })
    redial.start()
    try {
      await a.libp2p.hangUp(b.peerId)
      await waitFor(() => redial.stats.cleanCloses === 1, { what: 'B to see the clean close' })
      assert.equal(redial.stats.drops, 0)
      assert.equal(redial.waiting(), 0)
      assert.equal(b.libp2p.getConnections(a.peerId).length, 0)
    } finally {
      await redial.stop()
    }
  })

  it('closes a member\'s connection that went silent once the member connects again; its live connection stays', async () => {
    const a = await startDevice(devices, 'stale-a')
    const b = await startDevice(devices, 'stale-b')
    await pair(a, b)
    const aPort = Number(addressOf(a).split('/')[4])
    const proxy = await silentProxy(aPort)
    // a short probe bound for the test; the device's own check (15 s) runs too
    const check = new StaleMemberConnections(a.libp2p, { isMember: (peer) => a.swarms.swarmsOf(peer).length > 0, probeTimeoutMs: 1_000 })
    check.start()
    try {
      await b.libp2p.dial(multiaddr(`/ip4/127.0.0.1/tcp/${proxy.port}/p2p/${a.peerId.toString()}`), { force: true })
      const viaProxy = (): number => a.libp2p.getConnections(b.peerId).filter(c => proxy.upstreamPorts.has(Number(c.remoteAddr.getComponents()[1]?.value))).length
      await waitFor(() => viaProxy() === 1, { what: 'A to hold the connection through the proxy' })
      const direct = a.libp2p.getConnections(b.peerId).filter(c => !proxy.upstreamPorts.has(Number(c.remoteAddr.getComponents()[1]?.value)))
      assert.ok(direct.length > 0)

      proxy.blackhole()
      // the member comes back on a new connection: A pings the older ones
      await b.libp2p.dial(multiaddr(addressOf(a)), { force: true })
      await waitFor(() => viaProxy() === 0, { timeout: BACK_WITHIN_MS, what: 'A to close the silent connection' })
      assert.equal(check.closed, 1)
      assert.ok(direct.every(c => c.status === 'open'), 'the connections that answer stay open')
    } finally {
      await check.stop()
      await proxy.close()
    }
  })

  it('delays double up to a ceiling, with jitter in the upper half', () => {
    let previous = 0
    for (let attempt = 0; attempt < 40; attempt++) {
      const low = redialDelay(attempt, () => 0)
      const high = redialDelay(attempt, () => 1)
      assert.ok(low >= previous, `attempt ${attempt}: ${low} < ${previous}`)
      assert.equal(high, Math.min(MEMBER_REDIAL.maxDelayMs, MEMBER_REDIAL.baseDelayMs * 2 ** attempt))
      assert.equal(low, Math.round(high / 2))
      previous = low
    }
    assert.equal(redialDelay(1000, () => 1), MEMBER_REDIAL.maxDelayMs)
    assert.equal(redialDelay(-5, () => 1), MEMBER_REDIAL.baseDelayMs)
  })

  it('dials at most MEMBER_REDIAL.concurrency members at once, and stop() aborts them', async () => {
    const members: PeerId[] = await Promise.all(Array.from({ length: 10 }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))))
    let running = 0
    let most = 0
    let aborted = 0
    // a structural stand-in for libp2p: every member has an address and every dial hangs until aborted
    const events = new EventTarget()
    const libp2p = {
      addEventListener: events.addEventListener.bind(events),
      removeEventListener: events.removeEventListener.bind(events),
      getConnections: () => [],
      peerStore: { get: async () => ({ addresses: [{}] }) },
      dial: async (_peer: PeerId, options: { signal: AbortSignal }) => {
        running++
        most = Math.max(most, running)
        return new Promise((_resolve, reject) => {
          options.signal.addEventListener('abort', () => {
            running--
            aborted++
            reject(new Error('aborted'))
          }, { once: true })
        })
      }
    } as unknown as RedialLibp2p
    const redial = new MemberRedial(libp2p, { members: () => members, isMember: () => true })
    redial.start()
    redial.dialAll()
    await waitFor(() => running === MEMBER_REDIAL.concurrency, { what: 'the first dials' })
    assert.equal(redial.waiting(), members.length)
    await redial.stop()
    assert.equal(most, MEMBER_REDIAL.concurrency)
    assert.equal(aborted, MEMBER_REDIAL.concurrency)
    assert.equal(running, 0)
    assert.equal(redial.waiting(), 0)
  })
})
