import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import { LevelDatastore } from 'datastore-level'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { toString } from 'uint8arrays/to-string'
import { addressOf, startDevice, useDevices, waitFor } from './helpers.js'
import type { HomecloudNode } from '../src/index.js'
import type { SingleKadDHT } from '@libp2p/kad-dht'

const RAW = 0x55

function dhtOf (device: HomecloudNode): SingleKadDHT {
  return device.libp2p.services.dht as SingleKadDHT
}

describe('Kademlia DHT on loopback', () => {
  const { devices, tempPath } = useDevices()
  let a: HomecloudNode, b: HomecloudNode, c: HomecloudNode
  let bPath: string

  before(async () => {
    bPath = tempPath('b')
    a = await startDevice(devices, 'a', { services: { dht: 'server' } })
    b = await startDevice(devices, 'b', { services: { dht: 'server' }, datastorePath: bPath })
    c = await startDevice(devices, 'c', { services: { dht: 'server' } })
    await a.connect(addressOf(b))
    await b.connect(addressOf(c))
    await c.connect(addressOf(a))
    for (const device of [a, b, c]) {
      await waitFor(() => dhtOf(device).routingTable.size >= 2, { what: `${device.name}'s routing table` })
    }
  })

  it('maps the dht setting to the DHT mode', async () => {
    assert.deepEqual([a, b, c].map(d => d.status().dhtMode), ['server', 'server', 'server'])
    const client = await startDevice(devices, 'client', { services: { dht: 'client' } })
    // auto: a client until the device has a public address (D3); loopback never is one
    const auto = await startDevice(devices, 'auto', { services: { dht: 'auto' } })
    assert.equal(client.status().dhtMode, 'client')
    assert.equal(auto.status().dhtMode, 'client')
  })

  it('provide on one device, findProviders from another; the record persists in LevelDB', async () => {
    const cid = CID.createV1(RAW, await sha256.digest(new TextEncoder().encode('a chunk of a home cloud')))
    const signal = AbortSignal.timeout(15_000)

    for await (const _ of dhtOf(a).provide(cid, { signal })) { /* drain the query */ }

    let found: string | undefined

    for await (const event of dhtOf(c).findProviders(cid, { signal })) {
      if (event.name === 'PROVIDER') {
        found = event.providers.map(p => p.id.toString()).find(id => id === a.peerId.toString())

        if (found != null) {
          break
        }
      }
    }

    assert.equal(found, a.peerId.toString())

    // b stored a's provider record in its repo: it must survive the device
    await b.stop()
    const datastore = new LevelDatastore(bPath)
    await datastore.open()

    try {
      const keys: string[] = []

      for await (const key of datastore.queryKeys({ prefix: '/dht/provider' })) {
        keys.push(key.toString())
      }

      // kad-dht's layout: /dht/provider/<base32 multihash>/<provider>
      assert.ok(keys.includes(`/dht/provider/${toString(cid.multihash.bytes, 'base32')}/${a.peerId.toString()}`), `provider record on disk, got ${keys.join(' ')}`)
    } finally {
      await datastore.close()
    }
  })
})
