import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it, before, after } from 'node:test'
import { loopbackNode, type LoopbackNode } from '@homecloud/test-support'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { PeerRecord, RecordEnvelope } from '@libp2p/peer-record'
import { multiaddr } from '@multiformats/multiaddr'
import { CID } from 'multiformats/cid'
import { PeerRecordGuard, rendezvousCid } from '../src/index.js'
import type { PrivateKey } from '@libp2p/interface'

async function record (signer: PrivateKey, subject: PrivateKey, seq: bigint, addr: string): Promise<Uint8Array> {
  const envelope = await RecordEnvelope.seal(new PeerRecord({ peerId: peerIdFromPrivateKey(subject), multiaddrs: [multiaddr(addr)], seqNumber: seq }), signer)
  return envelope.marshal()
}

describe('rendezvous key', () => {
  const swarmId = CID.parse('bafyreicrsnfhovvjfrwykhhesehcqecip5ggiibbf4rlhry7w33nlwpco4')

  it('is a function of the secret and the swarm id, and changes with either', async () => {
    const secret = new Uint8Array(randomBytes(32))
    const a = await rendezvousCid(secret, swarmId)
    assert.equal((await rendezvousCid(secret.slice(), swarmId)).toString(), a.toString())
    assert.notEqual((await rendezvousCid(new Uint8Array(randomBytes(32)), swarmId)).toString(), a.toString())
    const other = CID.parse('bafyreibkl757r45g7kxk63tookjlpjtvsqlenmfx2uyvo2c2fp5owmmiyi')
    assert.notEqual((await rendezvousCid(secret, other)).toString(), a.toString())
    assert.equal(a.version, 1)
  })

  it('is not the secret, nor a plain hash of it (domain-separated)', async () => {
    const secret = new Uint8Array(randomBytes(32))
    const cid = await rendezvousCid(secret, swarmId)
    const { createHash } = await import('node:crypto')
    assert.notDeepEqual(cid.multihash.digest, new Uint8Array(createHash('sha256').update(secret).digest()))
    assert.ok(!Buffer.from(cid.bytes).includes(Buffer.from(secret)))
  })
})

describe('signed peer records of members (D2)', () => {
  let node: LoopbackNode
  let B: PrivateKey, C: PrivateKey

  before(async () => {
    node = await loopbackNode()
    B = await generateKeyPair('Ed25519')
    C = await generateKeyPair('Ed25519')
  })

  after(async () => {
    await node.stop()
  })

  it('stores a member record signed by the member; refuses foreign-signed, replayed, non-member and garbage ones, counting each', async () => {
    const guard = new PeerRecordGuard(node.peerStore)
    const b = peerIdFromPrivateKey(B)
    const c = peerIdFromPrivateKey(C)
    const isMember = (p: typeof b): boolean => p.equals(b) || p.equals(c)

    const fresh = await record(B, B, 10n, '/ip4/127.0.0.1/tcp/4010')
    assert.deepEqual(await guard.accept(fresh, { expectedPeer: b, isMember }), { accepted: true, peer: b })
    const stored = await node.peerStore.get(b)
    assert.deepEqual(stored.addresses.map(a => [a.multiaddr.toString(), a.isCertified]), [['/ip4/127.0.0.1/tcp/4010', true]])

    // the same record passed on again by another member is not a rejection
    assert.deepEqual(await guard.accept(fresh, { isMember }), { accepted: false, reason: 'unchanged' })

    const cases: Array<[Uint8Array, string, object]> = [
      // names B, signed by C: an attacker moving B's addresses
      [await record(C, B, 99n, '/ip4/127.0.0.1/tcp/6666'), 'wrong-signer', {}],
      // signed by C, presented as B's
      [await record(C, C, 99n, '/ip4/127.0.0.1/tcp/6666'), 'wrong-signer', { expectedPeer: b }],
      // an older record of B, replayed
      [await record(B, B, 9n, '/ip4/127.0.0.1/tcp/6666'), 'replayed', {}],
      // same sequence number, other addresses
      [await record(B, B, 10n, '/ip4/127.0.0.1/tcp/6666'), 'replayed', {}],
      // a valid record of a device off the roster
      [await record(C, C, 1n, '/ip4/127.0.0.1/tcp/6666'), 'not-a-member', { isMember: (p: typeof b) => p.equals(b) }],
      [new Uint8Array(randomBytes(64)), 'malformed', {}]
    ]
    for (const [bytes, reason, options] of cases) {
      assert.deepEqual(await guard.accept(bytes, { isMember, ...options }), { accepted: false, reason }, reason)
    }
    // nothing moved B's addresses
    const after = await node.peerStore.get(b)
    assert.deepEqual(after.addresses.map(a => a.multiaddr.toString()), ['/ip4/127.0.0.1/tcp/4010'])
    assert.equal(await node.peerStore.has(c), false)
    assert.deepEqual(guard.stats(), { 'wrong-signer': 2, replayed: 2, 'not-a-member': 1, malformed: 1 })

    // a newer record of B is taken
    const newer = await record(B, B, 11n, '/ip4/127.0.0.1/tcp/4011')
    assert.equal((await guard.accept(newer, { isMember })).accepted, true)
    assert.deepEqual((await node.peerStore.get(b)).addresses.map(a => a.multiaddr.toString()), ['/ip4/127.0.0.1/tcp/4011'])
  })
})
