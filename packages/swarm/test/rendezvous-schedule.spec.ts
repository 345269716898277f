import assert from 'node:assert/strict'
import { afterEach, describe, it } from 'node:test'
import { waitFor } from '@homecloud/test-support'
import { multiaddr } from '@multiformats/multiaddr'
import { CID } from 'multiformats/cid'
import { rendezvousCid } from '../src/index.js'
import { RendezvousSchedule } from '../src/rendezvous-schedule.js'
import { createDevice, ProviderTable, stopDevices } from './utils.js'
import type { Device } from './utils.js'

describe('RendezvousSchedule', () => {
  let schedule: RendezvousSchedule | undefined
  afterEach(() => { schedule?.stop() })

  it('runs at start, and once more after a burst of address changes settles', async () => {
    const runs: number[] = []
    schedule = new RendezvousSchedule(() => runs.push(Date.now()), { intervalMs: 60_000, settleMs: 20, minGapMs: 20 })
    schedule.start()
    assert.equal(runs.length, 1)
    for (let i = 0; i < 10; i++) schedule.changed()
    await waitFor(() => runs.length === 2, { timeout: 2_000, what: 'a run after the changes' })
    // the burst made one run, not ten
    await new Promise(resolve => setTimeout(resolve, 100))
    assert.equal(runs.length, 2)
    assert.equal(schedule.triggeredRuns, 1)
  })

  it('spaces runs on changes by a doubling gap', async () => {
    const runs: number[] = []
    schedule = new RendezvousSchedule(() => runs.push(Date.now()), { intervalMs: 60_000, settleMs: 1, minGapMs: 40 })
    schedule.start()
    for (let n = 2; n <= 4; n++) {
      schedule.changed()
      await waitFor(() => runs.length === n, { timeout: 2_000, what: `run ${n}` })
    }
    const gaps = runs.slice(1).map((t, i) => t - runs[i])
    // 40, 80, 160 ms apart at least by the clock (1 ms: the test reads it after the schedule does)
    assert.ok(gaps[0] >= 39 && gaps[1] >= 79 && gaps[2] >= 159, `gaps ${gaps.join(', ')}`)
  })

  it('never runs before the gap by its own clock, even when its timer fires early', async () => {
    let clock = 0
    let reads = 0
    const runs: number[] = []
    const now = (): number => { reads++; return clock }
    schedule = new RendezvousSchedule(() => runs.push(clock), { intervalMs: 60_000, settleMs: 1, minGapMs: 40, now })
    schedule.start()
    clock = 1
    schedule.changed()
    // the timer fires after ~39 ms of real time, but this clock stands still: it must wait on
    const readsBefore = reads
    await waitFor(() => reads >= readsBefore + 2, { timeout: 2_000, what: 'the timer to fire and wait on, twice' })
    assert.deepEqual(runs, [0])
    clock = 40
    await waitFor(() => runs.length === 2, { timeout: 2_000, what: 'the run once the gap is over' })
    assert.deepEqual(runs, [0, 40])
    assert.equal(schedule.triggeredRuns, 1)
  })

  it('does nothing once stopped', async () => {
    let runs = 0
    schedule = new RendezvousSchedule(() => { runs++ }, { intervalMs: 60_000, settleMs: 1, minGapMs: 1 })
    schedule.changed()
    assert.equal(runs, 0, 'not started: changes are ignored')
    schedule.start()
    schedule.changed()
    schedule.stop()
    await new Promise(resolve => setTimeout(resolve, 50))
    assert.equal(runs, 1)
  })
})

describe('swarm service: rendezvous when this device\'s addresses change', () => {
  let device: Device | undefined
  afterEach(async () => { await stopDevices(device) })

  it('announces again soon after, without waiting for the period', async () => {
    const table = new ProviderTable()
    device = await createDevice('alpha', { table, rendezvousIntervalMs: 60 * 60_000 })
    const info = await device.service.create('family')
    const key = (await rendezvousCid(device.service.secret('family') as Uint8Array, CID.parse(info.id))).toString()
    // creating the swarm announces it at once
    await waitFor(() => table.providers.get(key)?.size === 1, { what: 'the first announcement' })
    const runs = device.service.stats().rendezvous.runs
    table.providers.clear()
    // what a relay reservation does: the address manager puts a new address on this device's own
    // peer record, and the peer store says so with `self:peer:update`
    const relayed = multiaddr(`/ip4/127.0.0.1/tcp/1/p2p/${device.peerId.toString()}/p2p-circuit`)
    await device.node.peerStore.merge(device.peerId, { multiaddrs: [relayed] })
    await waitFor(() => table.providers.get(key)?.size === 1, { timeout: 5_000, what: 'the announcement after the change' })
    const stats = device.service.stats().rendezvous
    assert.equal(stats.runs, runs + 1)
    assert.equal(stats.triggeredRuns, 1)
  })
})
