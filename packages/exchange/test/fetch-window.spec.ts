import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { waitFor } from '@homecloud/test-support'
import { logger } from '@libp2p/logger'
import { Fetch } from '../src/fetch.js'
import { INITIAL_WINDOW, MAX_WINDOW } from '../src/constants.js'
import { makeChunks, MemoryBlocks } from './helpers.js'
import type { FetchConfig } from '../src/fetch.js'
import type { PeerSession, SessionListener } from '../src/session.js'
import type { PeerId } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

const config: FetchConfig = { stallTimeout: 5000, maxStalls: 3, endGameCopies: 2, initialWindow: INITIAL_WINDOW, maxWindow: MAX_WINDOW }

/** The part of a session a fetch uses: it records the wants and lets the test answer them. */
class FakeSession {
  readonly key = 'peer-a'
  readonly closed = false
  readonly capacity = 1024
  learned?: PeerSession['learned']
  readonly wants: CID[] = []
  listener?: SessionListener
  attach (listener: SessionListener): void { this.listener = listener }
  detach (): void { this.listener = undefined }
  want (cid: CID): void { this.wants.push(cid) }
  cancel (): void {}
}

/** Starts a fetch of `count` chunks at one fake peer; the wants sent before any block arrives (a window, less the last refill quarter). */
async function firstWants (session: FakeSession, count: number): Promise<{ wants: number, answer: () => Promise<void> }> {
  const chunks = makeChunks(count, 1024)
  const peer = { toString: () => session.key } as unknown as PeerId
  const fetch = new Fetch({ config, log: logger('test'), session: () => session as unknown as PeerSession }, new MemoryBlocks(), { peers: [peer] })
  const done = fetch.run(chunks.map(c => c.cid), [peer])
  await waitFor(() => session.wants.length > 0, { timeout: 2000, interval: 5 })
  // the checks are all answered before the first block: nothing more goes out until one arrives
  await new Promise(resolve => setTimeout(resolve, 50))
  const wants = session.wants.length
  return {
    wants,
    answer: async () => {
      const byKey = new Map(chunks.map(c => [c.cid.toString(), c.bytes]))
      for (let i = 0; i < session.wants.length; i++) {
        const cid = session.wants[i]
        session.listener?.onBlock(session as unknown as PeerSession, cid, byKey.get(cid.toString()) as Uint8Array)
        await new Promise(resolve => setImmediate(resolve))
      }
      await done
    }
  }
}

describe('fetch window across fetches', () => {
  it('a fetch starts with the window the last fetch at that peer learned; a stale one starts cold', async () => {
    const cold = new FakeSession()
    const first = await firstWants(cold, 100)
    assert.ok(first.wants > 0 && first.wants <= INITIAL_WINDOW, `cold: ${first.wants} wants`)
    await first.answer()

    const warm = new FakeSession()
    warm.learned = { window: 40, rate: 40 * 1024 * 1024, at: Date.now() }
    const second = await firstWants(warm, 100)
    assert.ok(second.wants > INITIAL_WINDOW && second.wants <= 40, `warm: ${second.wants} wants`)
    await second.answer()

    const stale = new FakeSession()
    stale.learned = { window: 40, rate: 40 * 1024 * 1024, at: Date.now() - 60_000 }
    const third = await firstWants(stale, 100)
    assert.ok(third.wants <= INITIAL_WINDOW, `stale: ${third.wants} wants`)
    await third.answer()

    const huge = new FakeSession()
    huge.learned = { window: 10 * MAX_WINDOW, rate: 1e9, at: Date.now() }
    const fourth = await firstWants(huge, 10 * MAX_WINDOW)
    assert.ok(fourth.wants > 40 && fourth.wants <= MAX_WINDOW, `a learned window never exceeds the bound: ${fourth.wants} wants`)
    await fourth.answer()
  })

  it('a finished fetch leaves what it learned of the peer on its session', async () => {
    const session = new FakeSession()
    session.learned = { window: 20, rate: 10 * 1024 * 1024, at: Date.now() }
    const run = await firstWants(session, 30)
    await run.answer()
    assert.ok(session.learned != null)
    assert.ok(session.learned.rate > 0)
    assert.ok(session.learned.window >= 2 && session.learned.window <= MAX_WINDOW)
    assert.ok(Date.now() - session.learned.at < 5000)
  })
})
