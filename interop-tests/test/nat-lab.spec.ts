/**
 * The NAT lab scenarios of issue 6, with real `homecloud` daemons in network namespaces.
 * Root only (CI is root); elsewhere every test is skipped with the reason printed.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import { waitFor } from '@homecloud/test-support'
import { createLab, formatReport, labSkipReason, LabDevice, type Lab, type ReportRow } from '../src/index.js'
import { peersOf, relayAddressOf, sha256, teardown, type GetResult } from './webrtc-lab.js'

const SKIP = labSkipReason()
if (SKIP !== undefined) {
  console.log(`# NAT lab skipped: ${SKIP}`)
}

const ROGUE = fileURLToPath(new URL('../src/netlab/rogue-member.js', import.meta.url))
const rows: ReportRow[] = []

interface Id { peerId: string, addresses: string[], reachability: string }
interface Status { relayReservations: string[], reachability: string, dhtMode: string, rejectedPeerRecords: Record<string, number> }

/** Share payload of scenario 1, in two files: 32× the relay's 128 KiB default for strangers (members are unlimited). */
const SHARE_BYTES = 4 * 1024 * 1024

/** A folder's files by relative path → content hash (scenario 1 compares A's and B's). */
function treeOf (root: string): Record<string, string> {
  const files = readdirSync(root, { recursive: true, withFileTypes: true })
    .filter(e => e.isFile() && !e.name.startsWith('.homecloud'))
    .map(e => relative(root, join(e.parentPath, e.name)))
    .sort()
  return Object.fromEntries(files.map(f => [f, sha256(join(root, f))]))
}

function sameTree (a: string, b: string): boolean {
  return existsSync(b) && JSON.stringify(treeOf(a)) === JSON.stringify(treeOf(b))
}

interface Found { peerId: string, dialHints: string[] }

/** Members `device` found at a rendezvous point in the DHT since it started, with the addresses the DHT gave. */
async function foundAtRendezvous (device: LabDevice): Promise<Found[]> {
  return (await device.api<{ rendezvous: { found: Found[] } }>('GET', 'swarm/stats')).answer.rendezvous.found
}

describe('NAT lab', { skip: SKIP ?? false }, () => {
  after(() => {
    if (rows.length > 0) console.log(`\nNAT lab report\n\n${formatReport(rows)}`)
  })

  describe('two homes behind typical NATs and a public member relay (scenarios 1 and 3)', () => {
    let lab: Lab | undefined
    const devices: LabDevice[] = []
    let pub: LabDevice, a: LabDevice, b: LabDevice
    let pubId: Id
    let invite = ''

    before(async () => {
      lab = createLab({ log: console.log })
      pub = new LabDevice(lab, lab.addPublicHost('pub'), { relayServer: true, dht: 'server' })
      devices.push(pub)
      await pub.start()
      pubId = await pub.json<Id>(['id'])
      const bootstrap = [`/ip4/${pub.host.ip}/tcp/4001/p2p/${pubId.peerId}`]
      a = new LabDevice(lab, lab.addHome('ha', { nat: 'typical' }).addDevice('a1'), { relayClient: true, bootstrap })
      b = new LabDevice(lab, lab.addHome('hb', { nat: 'typical' }).addDevice('b1'), { relayClient: true, bootstrap })
      devices.push(a, b)
      await Promise.all([a.start(), b.start()])
    })

    after(async () => { await teardown(lab, devices) })

    it('1: the homes join one private swarm by invite, find each other by the DHT rendezvous and sync a share through the relay', { timeout: 90_000 }, async () => {
      // the lab's internet counts as public: the relay says so, the homes do not
      assert.equal(pubId.reachability, 'public')
      assert.equal((await pub.json<Status>(['status'])).dhtMode, 'server')
      assert.equal((await a.json<Id>(['id'])).reachability, 'private')
      const aId = (await a.json<Id>(['id'])).peerId

      await pub.json(['swarm', 'create', 'family'])
      invite = (await pub.json<{ code: string }>(['swarm', 'invite', 'family', '--uses', '3'])).code
      await Promise.all([relayAddressOf(a, pub.host.ip), relayAddressOf(b, pub.host.ip)])
      // no `connect` between the homes: each announces itself at the swarm's rendezvous point on
      // joining, and B finds A there (the public device is the DHT server); A's record carries
      // its relay address, the only way into home A
      const started = performance.now()
      await a.json(['swarm', 'join', invite])
      await b.json(['swarm', 'join', invite])
      const toA = await waitFor(async () => {
        const rows = (await peersOf(b)).filter(p => p.peerId === aId)
        return rows.length > 0 ? rows : undefined
      }, { timeout: 30_000, interval: 100, what: 'B to find A at the rendezvous point and connect' })
      const firstConnectionMs = performance.now() - started
      // the rendezvous found them: whichever home looked up after the other had announced
      const bId = (await b.json<Id>(['id'])).peerId
      const found = await waitFor(async () => (await foundAtRendezvous(b)).find(f => f.peerId === aId) ?? (await foundAtRendezvous(a)).find(f => f.peerId === bId),
        { timeout: 10_000, interval: 100, what: 'a home to count the other as found at the rendezvous point' })
      // the home's record at the rendezvous point carries its relay address, its only way in
      assert.ok(found.dialHints.some(h => h.startsWith(`/ip4/${pub.host.ip}/`) && h.includes('/p2p-circuit')), JSON.stringify(found))
      const members = await b.json<{ members: unknown[] }>(['swarm', 'members', 'family'])
      assert.equal(members.members.length, 3)
      assert.ok(toA.every(p => p.path === 'relayed'), `B reaches A only through the relay: ${JSON.stringify(toA)}`)

      // a share beyond the relay's 128 KiB limit for strangers (members are unlimited)
      const source = join(lab!.dir, 'a-photos')
      mkdirSync(join(source, '2026'), { recursive: true })
      writeFileSync(join(source, 'beach.jpg'), randomBytes(SHARE_BYTES - 64 * 1024))
      writeFileSync(join(source, '2026', 'snow.jpg'), randomBytes(64 * 1024))
      await a.json(['share', 'add', source, '--swarm', 'family', '--name', 'photos'])
      await waitFor(async () => (await b.json<{ offers: Array<{ name: string }> }>(['share', 'list'])).offers.some(o => o.name === 'photos'),
        { timeout: 20_000, interval: 100, what: 'B to see the share offer' })
      const target = join(lab!.dir, 'b-photos')
      const accepted = performance.now()
      await b.json(['share', 'accept', 'photos', target])
      await waitFor(() => sameTree(source, target), { timeout: 30_000, interval: 100, what: 'B\'s copy of the share to be identical' })
      const syncMs = performance.now() - accepted
      assert.deepEqual(treeOf(target), treeOf(source))
      const after = (await peersOf(b)).filter(p => p.peerId === aId)
      assert.ok(after.length > 0 && after.every(p => p.path === 'relayed'), `the share moved through the relay: ${JSON.stringify(after)}`)
      rows.push({
        scenario: '1 two homes, public member relay',
        nat: 'typical / typical',
        path: 'relayed',
        firstConnectionMs,
        throughputMbps: (SHARE_BYTES * 8) / (syncMs * 1000),
        note: `no connect: found by DHT rendezvous (time from the joins); share of ${SHARE_BYTES / 1024 / 1024} MiB synced, accept to identical tree ${(syncMs / 1000).toFixed(2)} s`
      })
    })

    it('3: A\'s public IP changes; B and the relay reach A again within 30 s; a record for A signed by another key is refused and counted', { timeout: 90_000 }, async () => {
      assert.notEqual(invite, '', 'scenario 1 ran first')
      const home = lab!.homes.get('ha')!
      const aId = await a.json<Id>(['id'])
      const oldWan = home.wanIp
      const started = performance.now()
      home.changeWanAddress('10.77.0.201')

      // the relay sees A again from its new address: A noticed, redialled and reserved again
      await waitFor(async () => (await peersOf(pub)).some(p => p.peerId === aId.peerId && p.address.startsWith('/ip4/10.77.0.201/')),
        { timeout: 30_000, interval: 250, what: 'A to come back to the relay from its new address' })
      const aRelay = await relayAddressOf(a, pub.host.ip)
      // B reaches A again, through the relay, with what A's new signed record says
      await waitFor(async () => (await b.run(['connect', aRelay], 10_000)).code === 0, { timeout: 30_000, interval: 500, what: 'B to reach A again' })
      const recoveredMs = performance.now() - started
      assert.ok(recoveredMs < 30_000, `recovered in ${Math.round(recoveredMs)} ms`)
      // the relay's connection from the old address is dead but not closed (pings may fail without
      // closing a connection, libp2p-options.ts): reported, not asserted
      const stale = (await peersOf(pub)).filter(p => p.peerId === aId.peerId && p.address.startsWith(`/ip4/${oldWan}/`)).length

      // a third device (a member) passes on a record for A signed with its own key
      const before = (await b.api<{ rejectedPeerRecords: Record<string, number> }>('GET', 'swarm/stats')).answer.rejectedPeerRecords['wrong-signer'] ?? 0
      const rogueHost = lab!.addPublicHost('rogue')
      const bRelay = await relayAddressOf(b, pub.host.ip)
      const rogue = await lab!.exec(rogueHost, process.execPath, [ROGUE, invite, aId.peerId, bRelay], 60_000)
      assert.equal(rogue.code, 0, rogue.stderr)
      const counted = await waitFor(async () => {
        const stats = (await b.api<{ rejectedPeerRecords: Record<string, number> }>('GET', 'swarm/stats')).answer
        return (stats.rejectedPeerRecords['wrong-signer'] ?? 0) > before ? stats : undefined
      }, { timeout: 10_000, interval: 50, what: 'B to count the forged record' })
      assert.ok((counted.rejectedPeerRecords['wrong-signer'] ?? 0) > before)
      // and B still reaches A where A says it is
      assert.equal((await b.run(['connect', aRelay], 10_000)).code, 0)
      rows.push({
        scenario: '3 home A\'s public IP changes',
        nat: 'typical / typical',
        path: 'relayed',
        firstConnectionMs: recoveredMs,
        note: `back within ${(recoveredMs / 1000).toFixed(1)} s; forged record refused and counted; stale connections left on the relay: ${stale}`
      })
    })
  })

  describe('two devices in one home find each other by mDNS (scenario 4)', () => {
    let lab: Lab | undefined
    const devices: LabDevice[] = []

    after(async () => { await teardown(lab, devices) })

    it('4: no bootstrap, mDNS only inside the home, connected in under 2 s', { timeout: 60_000 }, async () => {
      lab = createLab({ log: console.log })
      const home = lab.addHome('hm', { nat: 'typical' })
      const one = new LabDevice(lab, home.addDevice('m1'), { mdns: true, dht: 'client' })
      const two = new LabDevice(lab, home.addDevice('m2'), { mdns: true, dht: 'client' })
      devices.push(one, two)
      await one.start()
      await two.start()
      // from the second daemon's "ready" line; `status` is polled because it answers at once
      // (`peers` measures latency first, which can take its 2 s ping bound)
      const started = performance.now()
      await waitFor(async () => (await one.json<Status & { peers: number }>(['status'])).peers > 0, { timeout: 10_000, interval: 50, what: 'mDNS discovery' })
      const elapsed = performance.now() - started
      const twoId = await two.json<Id>(['id'])
      const found = (await peersOf(one)).find(p => p.peerId === twoId.peerId)
      assert.ok(found !== undefined, 'the first device is connected to the second')
      assert.equal(found.path, 'direct')
      assert.ok(found.address.startsWith(`/ip4/${two.host.ip}/`), found.address)
      assert.ok(elapsed < 2_000, `found in ${Math.round(elapsed)} ms`)
      rows.push({ scenario: '4 mDNS in one home', nat: 'typical (LAN)', path: 'direct (LAN)', firstConnectionMs: elapsed })
    })
  })

  describe('a capped home uplink (scenario 5)', () => {
    let lab: Lab | undefined
    const devices: LabDevice[] = []

    after(async () => { await teardown(lab, devices) })

    it('5: a transfer out of a home capped at 8 Mbit/s runs near the cap and no connection drops', { timeout: 90_000 }, async () => {
      lab = createLab({ log: console.log })
      const home = lab.addHome('hc', { nat: 'forward', uplink: { rate: '8mbit' } })
      const box = new LabDevice(lab, home.addDevice('c1'), { dht: 'client' })
      home.forwardPort(box.host, 4001)
      const fetcher = new LabDevice(lab, lab.addPublicHost('pub'), { dht: 'server' })
      devices.push(box, fetcher)
      await Promise.all([box.start(), fetcher.start()])
      const boxId = await box.json<Id>(['id'])
      const forwarded = `/ip4/${home.wanIp}/tcp/4001/p2p/${boxId.peerId}`

      const started = performance.now()
      await fetcher.json(['connect', forwarded])
      const firstConnectionMs = performance.now() - started
      const before = (await peersOf(fetcher)).filter(p => p.peerId === boxId.peerId)
      assert.equal(before.length, 1)

      const size = 8 * 1024 * 1024
      const file = join(lab.dir, 'big.bin')
      writeFileSync(file, randomBytes(size))
      const { cid } = await box.json<{ cid: string }>(['add', file])
      const output = join(lab.dir, 'fetched.bin')
      const { elapsedMs, answer } = await fetcher.api<GetResult>('POST', 'get', { cid, output, from: [forwarded] })
      assert.equal(sha256(output), sha256(file))
      const mbps = (answer.receivedBytes * 8) / (elapsedMs * 1000)
      const after = (await peersOf(fetcher)).filter(p => p.peerId === boxId.peerId)
      // the very connection of before the transfer is still there: no ping failure closed it
      assert.deepEqual(after.map(p => p.address), before.map(p => p.address))
      console.log(`# capped uplink: ${mbps.toFixed(2)} Mbit/s of 8 (${Math.round(mbps / 8 * 100)}%)\n${home.uplinkStats()}`)
      rows.push({
        scenario: '5 uplink capped at 8 Mbit/s',
        nat: 'forward',
        path: 'direct (port forward)',
        firstConnectionMs,
        throughputMbps: mbps,
        note: `${Math.round(mbps / 8 * 100)}% of the cap, 8 MiB`
      })
      assert.ok(mbps >= 0.85 * 8, `throughput ${mbps.toFixed(2)} Mbit/s is below 85% of the 8 Mbit/s cap`)
    })
  })
})
