import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import { RELAY_V2_HOP_CODEC } from '@libp2p/circuit-relay-v2'
import { lpStream } from '@libp2p/utils'
import { addressOf, startDevice, useDevices, waitFor } from './helpers.js'
import type { HomecloudNode } from '../src/index.js'

/** circuit relay v2 `Status` values (pb/index.proto) */
const STATUS_OK = 100
const STATUS_PERMISSION_DENIED = 202

/**
 * Sends one hop RESERVE from `client` to `relay` and returns the relay's `status`, as a relay
 * client would: the protobuf is written by hand (circuit-relay-v2 does not export its codec).
 */
async function reserve (client: HomecloudNode, relay: HomecloudNode): Promise<number | undefined> {
  await client.connect(addressOf(relay))
  const stream = await client.libp2p.dialProtocol(relay.peerId, RELAY_V2_HOP_CODEC)
  try {
    const lp = lpStream(stream, { maxDataLength: 4096 })
    await lp.write(Uint8Array.of(0x08, 0x00)) // HopMessage { type: RESERVE }
    return hopStatus((await lp.read({ signal: AbortSignal.timeout(5_000) })).subarray())
  } finally {
    stream.abort(new Error('done'))
  }
}

/** Field 5 (`status`) of a HopMessage: walks varint and length-delimited fields, the only wire types it uses. */
function hopStatus (bytes: Uint8Array): number | undefined {
  let i = 0
  const varint = (): number => {
    let value = 0
    for (let shift = 0; ; shift += 7) {
      const byte = bytes[i++]
      value += (byte & 0x7f) * 2 ** shift
      if (byte < 0x80) return value
    }
  }
  let status: number | undefined
  while (i < bytes.length) {
    const tag = varint()
    if ((tag & 7) === 0) {
      const value = varint()
      if (tag >> 3 === 5) status = value
    } else if ((tag & 7) === 2) {
      const length = varint() // not `i += varint()`: that adds to `i` as it was before the varint
      i += length
    } else {
      throw new Error(`unexpected wire type ${tag & 7}`)
    }
  }
  return status
}

describe('circuit relay v2 on loopback', () => {
  const { devices } = useDevices()
  let relay: HomecloudNode, behindNat: HomecloudNode, visitor: HomecloudNode

  before(async () => {
    relay = await startDevice(devices, 'relay', { services: { relayServer: true } })
    // '/p2p-circuit' asks the relay transport to reserve a slot on a relay it is connected to
    behindNat = await startDevice(devices, 'behind-nat', { listen: ['/ip4/127.0.0.1/tcp/0', '/p2p-circuit'] })
    visitor = await startDevice(devices, 'visitor')
  })


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

describe('relayServer: auto, true, false', () => {
  const { devices } = useDevices()

  it("'auto' on a device that is not publicly reachable refuses reservations", async () => {
    const relay = await startDevice(devices, 'auto-private', { services: { relayServer: 'auto' } })
    const client = await startDevice(devices, 'client-1')
    assert.equal(relay.status().reachability, 'private')
    assert.ok(relay.libp2p.services.relay != null, 'the service runs, ready for when the device becomes public')
    assert.equal(await reserve(client, relay), STATUS_PERMISSION_DENIED)
  })

  it("'auto' on a publicly reachable device accepts reservations", async () => {
    // loopback counts as public through the ranges: no traffic leaves 127.0.0.1
    const relay = await startDevice(devices, 'auto-public', { publicAddressRanges: ['127.0.0.0/8'], services: { relayServer: 'auto' } })
    const client = await startDevice(devices, 'client-2')
    await waitFor(() => relay.status().reachability === 'public', { what: 'the relay to be public' })
    assert.equal(await reserve(client, relay), STATUS_OK)
  })

  it('true accepts reservations on a device that is not publicly reachable', async () => {
    const relay = await startDevice(devices, 'always', { services: { relayServer: true } })
    const client = await startDevice(devices, 'client-3')
    assert.equal(relay.status().reachability, 'private')
    assert.equal(await reserve(client, relay), STATUS_OK)
  })

  it('false runs no relay service', async () => {
    const relay = await startDevice(devices, 'never', { publicAddressRanges: ['127.0.0.0/8'], services: { relayServer: false } })
    assert.equal(relay.libp2p.services.relay, undefined)
    assert.equal(relay.libp2p.getProtocols().includes(RELAY_V2_HOP_CODEC), false)
  })
})
