import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { publicAddressRule } from '../src/index.js'
import { upnpRanges, type UpnpRangesComponents } from '../src/upnp-ranges.js'
import { waitFor } from './helpers.js'
import type { Gateway, UPnPNAT } from '@achingbrain/nat-port-mapper'

/**
 * The UPnP gateway and the address manager are narrow structural inputs here (the real ones
 * run in the NAT lab, interop-tests/test/nat-upnp.spec.ts, against miniupnpd).
 */
function fakeGateway (externalIp: string): { client: UPnPNAT, gateway: Gateway, maps: string[], stopped: () => boolean } {
  const maps: string[] = []
  let stopped = false
  const gateway = {
    id: 'fake',
    host: '10.77.1.1',
    port: 5000,
    family: 'IPv4',
    externalIp: async () => externalIp,
    map: async (internalPort: number, internalHost: string) => {
      maps.push(`${internalHost}:${internalPort}`)
      return { externalHost: externalIp, externalPort: internalPort + 1000, internalHost, internalPort, protocol: 'TCP' }
    },
    stop: async () => { stopped = true }
  } as unknown as Gateway
  const client = {
    findGateways: async function * () { yield gateway }
  } as unknown as UPnPNAT
  return { client, gateway, maps, stopped: () => stopped }
}

function fakeAddressManager (listening: string[]): { manager: UpnpRangesComponents['addressManager'], added: string[], confirmed: string[] } {
  const added: string[] = []
  const confirmed: string[] = []
  const manager = {
    getAddressesWithMetadata: () => listening.map(a => ({ multiaddr: multiaddr(a), type: 'transport', verified: true, expires: 0 })),
    addPublicAddressMapping: (ip: string, port: number, externalIp: string, externalPort: number) => { added.push(`${ip}:${port}>${externalIp}:${externalPort}`) },
    removePublicAddressMapping: () => {},
    confirmObservedAddr: (ma: Multiaddr) => { confirmed.push(ma.toString()) }
  } as unknown as UpnpRangesComponents['addressManager']
  return { manager, added, confirmed }
}

async function run (externalIp: string, ranges: string[]): Promise<{ maps: string[], added: string[], confirmed: string[], stopped: boolean }> {
  const { client, maps, stopped } = fakeGateway(externalIp)
  const { manager, added, confirmed } = fakeAddressManager(['/ip4/127.0.0.1/tcp/4001', '/ip4/10.77.1.10/tcp/4001', '/ip4/10.77.1.10/udp/4001/quic-v1'])
  const service = upnpRanges({ isPublic: publicAddressRule(ranges), client })({
    peerId: peerIdFromPrivateKey(await generateKeyPair('Ed25519')),
    addressManager: manager,
    events: new EventTarget() as UpnpRangesComponents['events']
  })
  await service.start()
  try {
    await waitFor(() => service.checks() > 0, { what: 'the first check' })
  } finally {
    await service.stop()
  }
  return { maps, added, confirmed, stopped: stopped() }
}

describe('UPnP with public address ranges', () => {
  it('maps the private TCP listener to an external address in a public range, and confirms it', async () => {
    const result = await run('10.77.0.101', ['10.77.0.0/24'])
    // loopback and QUIC are left alone
    assert.deepEqual(result.maps, ['10.77.1.10:4001'])
    assert.deepEqual(result.added, ['10.77.1.10:4001>10.77.0.101:5001'])
    assert.deepEqual(result.confirmed, ['/ip4/10.77.0.101/tcp/5001'])
    assert.equal(result.stopped, true, 'stop() hands the mappings back to the gateway')
  })

  it('maps nothing behind a gateway whose external address is private and in no range (double NAT)', async () => {
    const result = await run('192.168.0.2', ['10.77.0.0/24'])
    assert.deepEqual(result.maps, [])
    assert.deepEqual(result.confirmed, [])
  })

  it('leaves a globally public external address to AutoNAT v2', async () => {
    const result = await run('203.0.114.7', ['10.77.0.0/24'])
    assert.deepEqual(result.added, ['10.77.1.10:4001>203.0.114.7:5001'])
    assert.deepEqual(result.confirmed, [])
  })
})
