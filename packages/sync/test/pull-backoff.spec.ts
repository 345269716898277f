import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { CID } from 'multiformats/cid'
import { PullBackoff } from '../src/pull-backoff.js'

describe('PullBackoff', () => {
  const head1 = CID.parse('bafyreihck5tqzmmgdtlpu7oancm34qbkxxpe2tc2eddx5trihimprzolrq')
  const head2 = CID.parse('bafyreicjuszrce3kkaxybdo66tc6v27ye5crhquyiswvpx7w65noum27oq')

  it('doubles the gap per failure of the same head up to the cap; a new head, another outcome or clear starts over', () => {
    let now = 1_000
    const b = new PullBackoff({ interval: 5_000, max: 60_000, now: () => now })
    assert.equal(b.waiting('d', head1), false, 'nothing failed yet')
    const gaps = [1, 2, 3, 4, 5, 6].map(() => b.record('d', head1, 1))
    assert.deepEqual(gaps, [5_000, 10_000, 20_000, 40_000, 60_000, 60_000])
    assert.equal(b.waiting('d', head1), true)
    assert.equal(b.waiting('e', head1), false, 'per member')
    assert.equal(b.waiting('d', head2), false, 'a new head of that member is pulled at once')
    now += 59_999
    assert.equal(b.waiting('d', head1), true)
    now += 1
    assert.equal(b.waiting('d', head1), false, 'retried once the gap has passed')
    assert.equal(b.record('d', head2, 1), 5_000, 'a new head starts at the retry interval')
    assert.equal(b.record('d', head2, undefined), 0, 'another outcome (applied, another failure) ends the wait')
    assert.equal(b.waiting('d', head2), false)
    assert.equal(b.record('d', head2, 1), 5_000)
    b.clear()
    assert.equal(b.waiting('d', head2), false, 'a member online: every head is retried')
    assert.equal(b.record('d', head2, 1), 5_000, 'and starts over')
    b.forget('d')
    assert.equal(b.waiting('d', head2), false)
  })

  it('sums up what waits for status: the most files of any waiting head, the soonest retry', () => {
    let now = 1_000
    const b = new PullBackoff({ interval: 5_000, max: 60_000, now: () => now })
    assert.deepEqual(b.summary(), { files: 0 }, 'nothing waits')
    b.record('d', head1, 3)
    now += 1_000
    b.record('e', head2, 7)
    b.record('e', head2, 7)
    assert.deepEqual(b.summary(), { files: 7, nextRetryAt: 6_000 }, 'd first, at 1,000 + 5,000; e at 2,000 + 10,000')
    b.record('d', head1, undefined)
    assert.deepEqual(b.summary(), { files: 7, nextRetryAt: 12_000 })
    b.clear()
    assert.deepEqual(b.summary(), { files: 0 }, 'a member online: nothing waits any more')
  })

  it('a cap below the interval is the interval', () => {
    const b = new PullBackoff({ interval: 5_000, max: 1_000, now: () => 0 })
    assert.equal(b.record('d', head1, 1), 5_000)
    assert.equal(b.record('d', head1, 1), 5_000)
  })
})
