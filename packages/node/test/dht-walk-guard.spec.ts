import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { setTimeout as delay } from 'node:timers/promises'
import { startDevice, useDevices } from './helpers.js'

describe('DHT random walk with an empty routing table', () => {
  const { devices } = useDevices()

  // unguarded, the relay search's random walk spun on microtasks: start never finished and no timer ran again
  it('a lone device searching for relays (listen /p2p-circuit) starts and its event loop keeps turning', { timeout: 15_000 }, async () => {
    const device = await startDevice(devices, 'lone', { listen: ['/ip4/127.0.0.1/tcp/0', '/p2p-circuit'], services: { dht: 'auto' } })
    const before = performance.now()
    await delay(50)
    assert.ok(performance.now() - before < 1_000, 'a 50 ms timer fired within a second')
    assert.equal(device.status().relayReservations.length, 0)
  })
})
