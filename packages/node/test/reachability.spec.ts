import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { multiaddr } from '@multiformats/multiaddr'
import { isRelayed, reachabilityOf } from '../src/index.js'

// a public-looking IP: js-libp2p counts the TEST-NETs as private. Pure function, no traffic.
const now = Date.now()
const lan = { multiaddr: multiaddr('/ip4/192.168.1.20/tcp/4001'), verified: true, expires: now + 1000, lastVerified: now }
const loopback = { multiaddr: multiaddr('/ip4/127.0.0.1/tcp/4001'), verified: true, expires: now + 1000, lastVerified: now }
const publicUnchecked = { multiaddr: multiaddr('/ip4/81.2.69.160/tcp/4001'), verified: false, expires: 0 }
const publicFailed = { multiaddr: multiaddr('/ip4/81.2.69.160/tcp/4001'), verified: false, expires: now + 60_000 }
const publicVerified = { multiaddr: multiaddr('/ip4/81.2.69.160/tcp/4001'), verified: true, expires: now + 60_000, lastVerified: now }
const relayed = { multiaddr: multiaddr('/ip4/81.2.69.161/tcp/4001/p2p/12D3KooWNhrPzaRWLZkgRrrFE5t7VfJpDpBzgeNrGwYqciQGLsKu/p2p-circuit'), verified: true, expires: now + 1000, lastVerified: now }

describe('reachability', () => {
  it('is unknown without any address (not started)', () => {
    assert.equal(reachabilityOf([]), 'unknown')
  })

  it('is private with LAN, loopback and relay addresses only', () => {
    assert.equal(reachabilityOf([lan, loopback]), 'private')
    assert.equal(reachabilityOf([lan, relayed]), 'private', 'a relay address is not the device being reachable')
  })

  it('is unknown while a public address waits for its first check', () => {
    assert.equal(reachabilityOf([lan, publicUnchecked]), 'unknown')
  })

  it('is private once the public address failed its check', () => {
    assert.equal(reachabilityOf([lan, publicFailed]), 'private')
  })

  it('is public once a public address is verified', () => {
    assert.equal(reachabilityOf([lan, publicFailed, publicVerified]), 'public')
  })

  it('tells relayed addresses apart', () => {
    assert.equal(isRelayed(relayed.multiaddr), true)
    assert.equal(isRelayed(lan.multiaddr), false)
  })
})
