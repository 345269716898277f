/**
 * Invite codes: one line of base32 a person can type or scan.
 *
 * Layout (bytes, before base32): version (1) · swarm id prefix (6) · token (16) · expiry in
 * seconds since the epoch (4, big-endian) · inviter's raw ed25519 public key (32) · per address:
 * 1 length byte + multiaddr bytes · checksum (4: the first bytes of sha2-256 of everything before
 * it). That leaves room for one relay address and one IPv4 address within 200 characters.
 * Addresses that do not fit are dropped, last first, so callers list them by preference.
 *
 * The token never leaves the joiner: an ed25519 key derived from it (HKDF) signs the join
 * proof, and members only record its public half, so a device that sees the roster (even one
 * removed later) cannot use an invite it did not receive.
 */
import { createHash, hkdfSync } from 'node:crypto'
import { generateKeyPairFromSeed, publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { base32, base32upper } from 'multiformats/bases/base32'
import {
  INVITE_KEY_INFO, INVITE_SWARM_PREFIX_BYTES, INVITE_TOKEN_BYTES, JOIN_PROOF_DOMAIN,
  MAX_INVITE_ADDRESSES, MAX_INVITE_CODE_LENGTH
} from './constants.js'
import { InvalidInviteError } from './errors.js'
import type { Ed25519PrivateKey, PeerId, PublicKey } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

export const INVITE_VERSION = 1
const CHECKSUM_BYTES = 4

/** What an invite code carries. */
export interface Invite {
  /** The first bytes of the swarm id (the genesis CID's bytes). */
  swarmPrefix: Uint8Array
  /** The one-time secret that grants entry. */
  token: Uint8Array
  /** Milliseconds since the epoch, rounded down to a second. */
  expires: number
  inviter: PeerId
  /** Where the inviter can be dialled, without `/p2p/<inviter>`. */
  addresses: Multiaddr[]
}

/** Encode an invite as a code of at most 200 characters, dropping addresses that do not fit. */
export function encodeInvite (invite: Invite): string {
  if (invite.swarmPrefix.byteLength !== INVITE_SWARM_PREFIX_BYTES || invite.token.byteLength !== INVITE_TOKEN_BYTES) {
    throw new InvalidInviteError('invite needs an 8-byte swarm prefix and a 16-byte token')
  }
  if (invite.inviter.type !== 'Ed25519' || invite.inviter.publicKey == null) {
    throw new InvalidInviteError('the inviter must be an ed25519 device')
  }
  const addresses = invite.addresses.slice(0, MAX_INVITE_ADDRESSES).map(a => a.bytes).filter(b => b.byteLength < 256)
  for (let n = addresses.length; n >= 0; n--) {
    const code = base32.encode(withChecksum(layout(invite, addresses.slice(0, n))))
    if (code.length <= MAX_INVITE_CODE_LENGTH) return code
  }
  throw new InvalidInviteError('invite does not fit in 200 characters even without addresses')
}

function layout (invite: Invite, addresses: Uint8Array[]): Uint8Array {
  const parts: Uint8Array[] = [
    Uint8Array.of(INVITE_VERSION),
    invite.swarmPrefix,
    invite.token,
    uint32(Math.floor(invite.expires / 1000)),
    (invite.inviter.publicKey as PublicKey).raw
  ]
  for (const a of addresses) parts.push(Uint8Array.of(a.byteLength), a)
  return concat(parts)
}

/** Decode and check a code; throws `InvalidInviteError` (code `ERR_INVITE_INVALID`) when it is not one. */
export function decodeInvite (code: string): Invite {
  const text = code.trim()
  if (text.length === 0 || text.length > MAX_INVITE_CODE_LENGTH) {
    throw new InvalidInviteError(`an invite code has 1 to ${MAX_INVITE_CODE_LENGTH} characters`)
  }
  let bytes: Uint8Array
  try {
    // QR codes carry it upper-case (smaller alphanumeric mode); typed codes may be either case
    bytes = text.startsWith('B') ? base32upper.decode(text) : base32.decode(text)
  } catch (err) {
    throw new InvalidInviteError('the invite code is not base32 (mistyped?)', { cause: err })
  }
  if (bytes.byteLength < 1 + CHECKSUM_BYTES) throw new InvalidInviteError('the invite code is truncated')
  const body = bytes.subarray(0, bytes.byteLength - CHECKSUM_BYTES)
  if (!equal(checksum(body), bytes.subarray(body.byteLength))) {
    throw new InvalidInviteError('the invite code checksum does not match (mistyped or altered)')
  }
  if (body[0] !== INVITE_VERSION) {
    throw new InvalidInviteError(`invite code version ${body[0]} is not supported (this device reads version ${INVITE_VERSION})`)
  }
  const reader = new Reader(body, 1)
  try {
    const swarmPrefix = reader.take(INVITE_SWARM_PREFIX_BYTES)
    const token = reader.take(INVITE_TOKEN_BYTES)
    const expires = reader.uint32() * 1000
    const inviter = peerIdFromPublicKey(publicKeyFromRaw(reader.take(32)))
    const addresses: Multiaddr[] = []
    while (!reader.done) {
      if (addresses.length === MAX_INVITE_ADDRESSES) throw new InvalidInviteError('too many addresses in the invite code')
      addresses.push(multiaddr(reader.take(reader.byte())))
    }
    return { swarmPrefix, token, expires, inviter, addresses }
  } catch (err) {
    if (err instanceof InvalidInviteError) throw err
    throw new InvalidInviteError('the invite code is malformed', { cause: err })
  }
}

/** The ed25519 key an invite token stands for; members record its public half. */
export async function inviteKey (token: Uint8Array): Promise<Ed25519PrivateKey> {
  const seed = new Uint8Array(hkdfSync('sha256', token, new Uint8Array(0), INVITE_KEY_INFO, 32))
  return generateKeyPairFromSeed('Ed25519', seed)
}

/**
 * What the joiner signs with the invite key: bound to the swarm, both devices and the member's
 * fresh nonce, so a proof shown to one member cannot be replayed to another or later.
 */
export function joinProofPayload (swarmPrefix: Uint8Array, joiner: PeerId, member: PeerId, nonce: Uint8Array): Uint8Array {
  const text = new TextEncoder()
  const parts = [text.encode(JOIN_PROOF_DOMAIN), swarmPrefix, joiner.toMultihash().bytes, member.toMultihash().bytes, nonce]
  // length-prefix every part so no two different tuples produce the same bytes
  return concat(parts.flatMap(p => [uint32(p.byteLength), p]))
}

/** The code as a QR code for a terminal (`homecloud swarm invite --qr`). */
export async function renderInviteQr (code: string): Promise<string> {
  const upper = code.startsWith('b') ? base32upper.encode(base32.decode(code)) : code
  // loaded here, not at import: qrcode + pngjs cost every daemon ~0.4 MiB for a CLI-only feature
  const { default: QRCode } = await import('qrcode')
  return QRCode.toString(upper, { type: 'terminal', small: true, errorCorrectionLevel: 'M' })
}

function withChecksum (body: Uint8Array): Uint8Array {
  return concat([body, checksum(body)])
}

function checksum (body: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(body).digest().subarray(0, CHECKSUM_BYTES))
}

function uint32 (n: number): Uint8Array {
  const out = new Uint8Array(4)
  new DataView(out.buffer).setUint32(0, Math.max(0, Math.min(n, 0xffffffff)))
  return out
}

function concat (parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
  let offset = 0
  for (const p of parts) {
    out.set(p, offset)
    offset += p.byteLength
  }
  return out
}

function equal (a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && a.every((v, i) => v === b[i])
}

class Reader {
  constructor (private readonly bytes: Uint8Array, private offset: number) {}

  get done (): boolean {
    return this.offset === this.bytes.byteLength
  }

  take (n: number): Uint8Array {
    if (this.offset + n > this.bytes.byteLength) throw new InvalidInviteError('the invite code is truncated')
    const out = this.bytes.slice(this.offset, this.offset + n)
    this.offset += n
    return out
  }

  byte (): number {
    return this.take(1)[0]
  }

  uint32 (): number {
    return new DataView(this.take(4).buffer).getUint32(0)
  }
}
