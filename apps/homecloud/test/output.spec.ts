import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { formatDuration, formatPeers, formatStatus, table } from '../src/output.js'

describe('human output', () => {
  it('aligns table columns', () => {
    assert.equal(table([['a', 'bb', 'c'], ['ccc', 'd', 'e']]), 'a    bb  c\nccc  d   e')
  })

  it('replaces control characters', () => {
    assert.equal(table([['a\u001b[2J', 'b\nc']]), 'a?[2J  b?c')
  })

  it('formats durations', () => {
    assert.equal(formatDuration(999), '0s')
    assert.equal(formatDuration(61_000), '1m 1s')
    assert.equal(formatDuration(90_061_000), '1d 1h 1m 1s')
  })

  it('lists peers or says there are none', () => {
    assert.equal(formatPeers([]), 'no connected peers')
    const text = formatPeers([{ peerId: 'P1', address: '/ip4/127.0.0.1/tcp/1', path: 'relayed', direction: 'inbound', latencyMs: 2.4 }])
    assert.match(text, /^PEER ID\s+PATH\s+DIRECTION\s+LATENCY\s+ADDRESS\nP1\s+relayed\s+inbound\s+2 ms\s+\/ip4\/127\.0\.0\.1\/tcp\/1$/)
  })

  it('shows status fields', () => {
    const text = formatStatus({
      peerId: 'P',
      name: 'box',
      uptimeMs: 3_600_000,
      connections: 2,
      peers: 1,
      reachability: 'private',
      dhtMode: 'client',
      relayReservations: ['/ip4/1.2.3.4/tcp/1/p2p/R'],
      rejectedPeerRecords: { 'wrong-signer': 3 }
    })
    assert.match(text, /uptime\s+1h$/m)
    assert.match(text, /connections\s+2 \(1 peers\)/)
    assert.match(text, /relay reservations\s+\/ip4\/1\.2\.3\.4/)
    assert.match(text, /rejected records\s+wrong-signer: 3/)
  })
})
