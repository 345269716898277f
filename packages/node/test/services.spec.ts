import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { startDevice, useDevices } from './helpers.js'

describe('services', () => {
  const { devices } = useDevices()

  it('runs every service but the LAN/router ones together, and WebSockets carries a connection', async () => {
    // mDNS and UPnP talk to the LAN and the router: never in tests
    const everything = { mdns: false, upnp: false, autonat: true, dcutr: true, websockets: true, relayServer: true, dht: 'server' } as const
    const full = await startDevice(devices, 'full', { services: everything, listen: ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/tcp/0/ws'] })
    const peer = await startDevice(devices, 'peer', { services: { websockets: true, relayServer: false } })

    for (const service of ['identify', 'identifyPush', 'ping', 'dht', 'autonat', 'relay', 'dcutr']) {
      assert.ok(full.libp2p.services[service] != null, `${service} is running`)
    }
    for (const service of ['dht', 'autonat', 'relay', 'dcutr', 'upnp']) {
      assert.equal(peer.libp2p.services[service], undefined, `${service} is off`)
    }

    const ws = full.identity().addresses.find(a => a.includes('/ws/'))
    assert.ok(ws != null, `a WebSockets address in ${full.identity().addresses.join(' ')}`)
    const row = await peer.connect(ws)
    assert.equal(row.peerId, full.peerId.toString())
    assert.match(row.address, /\/ws\/p2p\//)
  })
})
