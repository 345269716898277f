import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { base32, base32upper } from 'multiformats/bases/base32'
import {
  decodeInvite, encodeInvite, inviteKey, joinProofPayload, renderInviteQr, MAX_INVITE_CODE_LENGTH
} from '../src/index.js'
import type { Invite } from '../src/index.js'

async function sample (addresses: string[]): Promise<Invite> {
  const inviter = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  return {
    swarmPrefix: new Uint8Array(randomBytes(6)),
    token: new Uint8Array(randomBytes(16)),
    expires: 1_900_000_000_000,
    inviter,
    addresses: addresses.map(a => multiaddr(a))
  }
}

const RELAY = '/ip4/203.0.113.7/tcp/4001/p2p/12D3KooWGRUVh9P5r9dB6J3Vz2JYtjtU8xjVVK6sqwmQk6xT5sLm/p2p-circuit'

describe('invite codes', () => {
  it('round-trip: swarm prefix, token, expiry, inviter and addresses', async () => {
    const invite = await sample(['/ip4/198.51.100.4/tcp/4001', RELAY])
    const code = encodeInvite(invite)
    assert.ok(code.length <= MAX_INVITE_CODE_LENGTH, `${code.length} characters`)
    assert.match(code, /^b[a-z2-7]+$/)
    const back = decodeInvite(code)
    assert.deepEqual(back.swarmPrefix, invite.swarmPrefix)
    assert.deepEqual(back.token, invite.token)
    assert.equal(back.expires, invite.expires)
    assert.ok(back.inviter.equals(invite.inviter))
    assert.deepEqual(back.addresses.map(String), [invite.addresses[0].toString(), RELAY])
  })

  it('drops addresses, last first, to stay within 200 characters', async () => {
    const invite = await sample([RELAY, '/ip4/198.51.100.4/tcp/4001', RELAY.replace('203.0.113.7', '203.0.113.8'), '/ip6/2001:db8::1/tcp/4001'])
    const code = encodeInvite(invite)
    assert.ok(code.length <= MAX_INVITE_CODE_LENGTH)
    const back = decodeInvite(code)
    assert.ok(back.addresses.length < invite.addresses.length)
    assert.deepEqual(back.addresses.map(String), invite.addresses.slice(0, back.addresses.length).map(String))
    assert.equal(back.addresses[0].toString(), RELAY)
  })

  it('accepts upper case (as scanned from a QR code) and surrounding spaces', async () => {
    const invite = await sample(['/ip4/198.51.100.4/tcp/4001'])
    const code = encodeInvite(invite)
    const upper = base32upper.encode(base32.decode(code))
    assert.deepEqual(decodeInvite(` ${upper}\n`).token, invite.token)
  })

  it('refuses tampered, truncated, foreign-version, non-base32 and over-long codes with ERR_INVITE_INVALID', async () => {
    const code = encodeInvite(await sample(['/ip4/198.51.100.4/tcp/4001']))
    const flip = code.slice(0, 20) + (code[20] === 'a' ? 'b' : 'a') + code.slice(21)
    const bytes = base32.decode(code)
    bytes[0] = 2 // version 2, checksum fixed up so only the version is wrong
    const { createHash } = await import('node:crypto')
    bytes.set(createHash('sha256').update(bytes.subarray(0, bytes.length - 4)).digest().subarray(0, 4), bytes.length - 4)
    const cases = [flip, code.slice(0, 40), base32.encode(bytes), 'hello world', '', 'b' + 'a'.repeat(250)]
    for (const bad of cases) {
      assert.throws(() => decodeInvite(bad), (err: Error & { code?: string }) => err.code === 'ERR_INVITE_INVALID', bad)
    }
    assert.throws(() => decodeInvite(base32.encode(bytes)), /version 2/)
    assert.throws(() => decodeInvite(flip), /checksum/)
  })

  it('derives the same invite key from the same token, a different one otherwise', async () => {
    const token = new Uint8Array(randomBytes(16))
    const a = await inviteKey(token)
    const b = await inviteKey(token.slice())
    const c = await inviteKey(new Uint8Array(randomBytes(16)))
    assert.deepEqual(a.publicKey.raw, b.publicKey.raw)
    assert.notDeepEqual(a.publicKey.raw, c.publicKey.raw)
  })

  it('binds the join proof to the swarm, both devices and the nonce', async () => {
    const [j, m, x] = await Promise.all([1, 2, 3].map(async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))))
    const prefix = new Uint8Array(6)
    const nonce = new Uint8Array(32)
    const key = await inviteKey(new Uint8Array(16))
    const sig = await key.sign(joinProofPayload(prefix, j, m, nonce))
    assert.equal(await key.publicKey.verify(joinProofPayload(prefix, j, m, nonce), sig), true)
    assert.equal(await key.publicKey.verify(joinProofPayload(prefix, j, x, nonce), sig), false)
    assert.equal(await key.publicKey.verify(joinProofPayload(prefix, x, m, nonce), sig), false)
    assert.equal(await key.publicKey.verify(joinProofPayload(prefix, j, m, new Uint8Array(32).fill(1)), sig), false)
    assert.equal(await key.publicKey.verify(joinProofPayload(new Uint8Array(6).fill(1), j, m, nonce), sig), false)
  })

  it('renders a terminal QR code of the code', async () => {
    const code = encodeInvite(await sample(['/ip4/198.51.100.4/tcp/4001']))
    const qr = await renderInviteQr(code)
    const lines = qr.trim().split('\n')
    assert.ok(lines.length > 10, 'a QR code has many rows')
    assert.ok(lines.every(l => l.length === lines[0].length || l.trim().length === 0) || lines.length > 10)
    assert.match(qr, /[█▀▄]/)
  })
})
