/**
 * NAT lab scenario 2 (issue 6): home A's router runs miniupnpd; A maps its port, calls itself
 * public, and B (another home) reaches A directly. Root and miniupnpd only (CI is root and
 * `.ci/run` installs `miniupnpd-nftables`); elsewhere skipped with the reason printed.
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { waitFor } from '@homecloud/test-support'
import { DEFAULT_STUN_PORT } from '@homecloud/node'
import { createLab, DEVICE_PORT, formatReport, LabDevice, startMiniupnpd, upnpSkipReason, type Lab, type ReportRow } from '../src/index.js'
import { teardown } from './webrtc-lab.js'

const SKIP = upnpSkipReason()
if (SKIP !== undefined) {
  console.log(`# NAT lab UPnP scenario skipped: ${SKIP}`)
}

interface Id { peerId: string, addresses: string[], reachability: string }
interface PeerRow { peerId: string, address: string, path: 'direct' | 'relayed' }

describe('NAT lab: a home router with UPnP (scenario 2)', { skip: SKIP ?? false }, () => {
  let lab: Lab | undefined
  const devices: LabDevice[] = []
  const rows: ReportRow[] = []

  after(async () => {
    await teardown(lab, devices)
    if (rows.length > 0) console.log(`\nNAT lab report (UPnP)\n\n${formatReport(rows)}`)
  })

  it('2: A maps its port through miniupnpd, says public, and B reaches A directly', { timeout: 60_000 }, async () => {
    lab = createLab({ log: console.log })
    // the public member also serves STUN: miniupnpd learns the router's WAN address from it
    const pub = new LabDevice(lab, lab.addPublicHost('pub'), { relayServer: true, dht: 'server', stunServer: true })
    const homeA = lab.addHome('ha', { nat: 'upnp' })
    const homeB = lab.addHome('hb', { nat: 'typical' })
    devices.push(pub)
    await pub.start()
    const router = await startMiniupnpd(lab, homeA, { ip: pub.host.ip, port: DEFAULT_STUN_PORT })
    const pubId = await pub.json<Id>(['id'])
    const bootstrap = [`/ip4/${pub.host.ip}/tcp/${DEVICE_PORT}/p2p/${pubId.peerId}`]
    // UPnP on only for A, and only inside its namespace
    const a = new LabDevice(lab, homeA.addDevice('a1'), { upnp: true, bootstrap })
    const b = new LabDevice(lab, homeB.addDevice('b1'), { bootstrap })
    devices.push(a, b)
    const started = performance.now()
    await Promise.all([a.start(), b.start()])

    // the router holds A's mapping (a DNAT rule of miniupnpd's) ...
    const mapping = await waitFor(async () => (await router.mappings()).find(m => m.to === `${a.host.ip}:${DEVICE_PORT}`),
      { timeout: 20_000, interval: 250, what: `a mapping to ${a.host.ip}:${DEVICE_PORT} in miniupnpd's table:\n${router.log()}` })
    const mappedMs = performance.now() - started
    // ... and A announces the router's WAN address with the mapped port, and calls itself public
    const external = `/ip4/${homeA.wanIp}/tcp/${mapping.externalPort}`
    const aId = await waitFor(async () => {
      const id = await a.json<Id>(['id'])
      return id.reachability === 'public' && id.addresses.some(x => x.startsWith(`${external}/`)) ? id : undefined
    }, { timeout: 20_000, interval: 250, what: `A to announce ${external} and say public` })
    const publicMs = performance.now() - started
    // B, before: never connected to A
    assert.equal((await b.json<{ peers: PeerRow[] }>(['peers'])).peers.filter(p => p.peerId === aId.peerId).length, 0)

    const dialled = performance.now()
    await b.json(['connect', `${external}/p2p/${aId.peerId}`])
    const firstConnectionMs = performance.now() - dialled
    const toA = (await b.json<{ peers: PeerRow[] }>(['peers'])).peers.filter(p => p.peerId === aId.peerId)
    assert.ok(toA.length > 0 && toA.every(p => p.path === 'direct' && p.address.startsWith(`${external}/`)), `B reaches A directly at ${external}: ${JSON.stringify(toA)}`)
    // A sees B coming in from B's router: through A's router's port mapping, not a relay
    const fromB = (await a.json<{ peers: PeerRow[] }>(['peers'])).peers.filter(p => p.peerId !== pubId.peerId)
    assert.ok(fromB.some(p => p.path === 'direct' && p.address.startsWith(`/ip4/${homeB.wanIp}/`)), `A sees B from ${homeB.wanIp}: ${JSON.stringify(fromB)}`)

    rows.push({
      scenario: '2 home A\'s router runs miniupnpd',
      nat: 'upnp / typical',
      path: 'direct (UPnP)',
      firstConnectionMs,
      note: `mapped ${(mappedMs / 1000).toFixed(1)} s and public ${(publicMs / 1000).toFixed(1)} s after the daemons' start; confirmed by the gateway (AutoNAT v2 refuses lab addresses)`
    })
  })
})
