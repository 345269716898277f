import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { addressOf, startDevice, stopAll, waitFor } from './helpers.js'
import type { HomecloudNode } from '../src/index.js'

describe('circuit relay v2 on loopback', () => {
  const devices: HomecloudNode[] = []
  let relay: HomecloudNode, behindNat: HomecloudNode, visitor: HomecloudNode

  before(async () => {
    relay = await startDevice(devices, 'relay', { services: { relayServer: true } })
    // '/p2p-circuit' asks the relay transport to reserve a slot on a relay it is connected to
    behindNat = await startDevice(devices, 'behind-nat', { listen: ['/ip4/127.0.0.1/tcp/0', '/p2p-circuit'] })
    visitor = await startDevice(devices, 'visitor')
  })

  after(async () => { await stopAll(devices) })

  it('a device reserves a slot on a relay server and status() lists it', async () => {
    await behindNat.connect(addressOf(relay))
    const reservations = await waitFor(() => {
      const r = behindNat.status().relayReservations
      return r.length > 0 ? r : undefined
    }, { what: 'a relay reservation' })
    assert.match(reservations[0], new RegExp(`/p2p/${relay.peerId.toString()}/p2p-circuit/p2p/${behindNat.peerId.toString()}$`))
    assert.ok(behindNat.identity().addresses.includes(reservations[0]), 'the circuit address is one of its addresses')
  })

  it('peers() marks a connection through the relay as relayed, on both ends', async () => {
    const circuit = behindNat.status().relayReservations[0]
    const row = await visitor.connect(circuit)
    assert.equal(row.peerId, behindNat.peerId.toString())
    assert.equal(row.path, 'relayed')
    assert.equal(row.address, circuit)

    const rows = await waitFor(async () => {
      const r = (await behindNat.peers()).filter(p => p.peerId === visitor.peerId.toString())
      return r.length > 0 ? r : undefined
    }, { what: 'the relayed connection on the other end' })
    assert.equal(rows[0].path, 'relayed')
    assert.equal(rows[0].direction, 'inbound')
  })
})
