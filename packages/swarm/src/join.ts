/**
 * `/homecloud/join/1.0.0`: a device holding an invite code asks an online member to add it.
 *
 *   joiner → member  { v: 1, swarm: <6-byte id prefix>, key: <invite public key>, name }
 *   member → joiner  { nonce: <32 random bytes> }                 or { error, message }
 *   joiner → member  { sig: sign(inviteKey, joinProofPayload(swarm, joiner, member, nonce)) }
 *   member → joiner  { entries: [...], more: true } ... { entries, more: false, swarm, secret }
 *                                                                 or { error, message }
 *
 * The token itself never travels: the joiner proves it holds it with a signature bound to both
 * PeerIds (authenticated by Noise) and the member's nonce. The member checks the invite against
 * the roster (so every member, not only the inviter, accepts it or refuses it once used or
 * expired), adds the joiner with a signed entry, and sends the roster and the secret.
 * The protocol is not gated (the joiner is not a member yet) but sends nothing private before
 * the proof checks out. A malformed message resets the stream.
 */
import { randomBytes } from 'node:crypto'
import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import { logger } from '@libp2p/logger'
import {
  DEFAULT_PROTOCOL_TIMEOUT_MS, INVITE_SWARM_PREFIX_BYTES, JOIN_PROTOCOL, MAX_CONCURRENT_JOINS,
  MAX_ENTRIES_PER_MESSAGE, MAX_INBOUND_STREAMS, MAX_MESSAGE_BYTES, MAX_NAME_BYTES, MAX_ROSTER_ENTRIES
} from './constants.js'
import {
  InviteExpiredError, InviteUsedError, JoinFailedError, LimitExceededError, PermissionDeniedError,
  ProtocolError, UnknownInviteError, WrongSwarmError
} from './errors.js'
import { FramedStream, chunk } from './framed-stream.js'
import { inviteKey, joinProofPayload } from './invite.js'
import type { Invite } from './invite.js'
import type { HomecloudError } from '@homecloud/interface'
import type { AbortOptions, Connection, Libp2p, PeerId, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

const log = logger('homecloud:swarm:join')

/** What a member hands a joiner it admitted. */
export interface JoinGrant {
  /** Bytes of the swarm id (the genesis CID). */
  swarmId: Uint8Array
  secret: Uint8Array
  /** Every roster entry, parents before children. */
  entries: Uint8Array[]
}

export interface JoinRequest {
  swarmPrefix: Uint8Array
  /** Raw ed25519 public key of the invite. */
  inviteKey: Uint8Array
  joiner: PeerId
  name: string
}

/** What the member side needs from the swarm service. */
export interface JoinHost {
  /** Check the invite and add the joiner; throw one of the invite errors to refuse. */
  admit(request: JoinRequest, options: AbortOptions): Promise<JoinGrant>
}

export interface JoinComponents {
  peerId: PeerId
  registrar: Pick<Libp2p, 'handle' | 'unhandle'>
  dialer: Pick<Libp2p, 'dialProtocol'>
}

export interface JoinProtocolOptions {
  timeoutMs?: number
  maxConcurrent?: number
}

/** Refusals a member may send, and the error the joiner throws for each. */
const REFUSALS: Record<string, (message?: string) => HomecloudError> = {
  [InviteExpiredError.code]: m => new InviteExpiredError(m),
  [InviteUsedError.code]: m => new InviteUsedError(m),
  [UnknownInviteError.code]: m => new UnknownInviteError(m),
  [WrongSwarmError.code]: m => new WrongSwarmError(m),
  [PermissionDeniedError.code]: m => new PermissionDeniedError(m ?? 'the member refused the join proof')
}

const MAX_BATCHES = Math.ceil(MAX_ROSTER_ENTRIES / MAX_ENTRIES_PER_MESSAGE) + 1

export class JoinProtocol {
  private readonly timeoutMs: number
  private readonly maxConcurrent: number
  private running = 0
  private readonly outcomes: Record<string, number> = {}

  constructor (private readonly host: JoinHost, private readonly components: JoinComponents, options: JoinProtocolOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_PROTOCOL_TIMEOUT_MS
    this.maxConcurrent = options.maxConcurrent ?? MAX_CONCURRENT_JOINS
  }

  async start (): Promise<void> {
    await this.components.registrar.handle(JOIN_PROTOCOL, async (stream, connection) => { await this.handle(stream, connection) }, {
      maxInboundStreams: MAX_INBOUND_STREAMS
    })
  }

  async stop (): Promise<void> {
    await this.components.registrar.unhandle(JOIN_PROTOCOL)
  }

  /** Join attempts answered so far, by outcome (`ok` or an error code). */
  stats (): Record<string, number> {
    return { ...this.outcomes }
  }

  /** Member side. */
  async handle (stream: Stream, connection: Connection): Promise<void> {
    if (this.running >= this.maxConcurrent) {
      this.count(LimitExceededError.code)
      stream.abort(new LimitExceededError('too many joins at once'))
      return
    }
    this.running++
    const framed = new FramedStream(stream, MAX_MESSAGE_BYTES)
    const signal = AbortSignal.timeout(this.timeoutMs)
    try {
      const request = parseRequest(await framed.read({ signal }), connection.remotePeer)
      const nonce = new Uint8Array(randomBytes(32))
      await framed.write({ nonce }, { signal })
      const proof = await framed.read({ signal })
      if (!(proof.sig instanceof Uint8Array) || proof.sig.byteLength > 128) throw new ProtocolError('join proof is not a signature')
      const payload = joinProofPayload(request.swarmPrefix, request.joiner, this.components.peerId, nonce)
      let grant: JoinGrant
      try {
        if (!await publicKeyFromRaw(request.inviteKey).verify(payload, proof.sig)) {
          throw new PermissionDeniedError('the join proof does not match the invite')
        }
        grant = await this.host.admit(request, { signal })
      } catch (err) {
        const code = (err as { code?: string }).code
        if (code === undefined || REFUSALS[code] === undefined) throw err
        this.count(code)
        log('refused join of %p: %s', request.joiner, code)
        await framed.write({ error: code, message: (err as Error).message }, { signal })
        await framed.close({ signal })
        return
      }
      const batches = chunk(grant.entries, MAX_ENTRIES_PER_MESSAGE)
      for (let i = 0; i < batches.length - 1; i++) await framed.write({ entries: batches[i], more: true }, { signal })
      await framed.write({ entries: batches[batches.length - 1] ?? [], more: false, swarm: grant.swarmId, secret: grant.secret }, { signal })
      await framed.close({ signal })
      this.count('ok')
    } catch (err) {
      this.count((err as { code?: string }).code ?? 'error')
      log('join stream from %p failed: %e', connection.remotePeer, err)
      framed.abort(err instanceof Error ? err : new ProtocolError(String(err)))
    } finally {
      this.running--
    }
  }

  /**
   * Joiner side: ask the member at `target` to admit this device. Throws the member's refusal
   * (`InviteExpiredError`, `InviteUsedError`, `UnknownInviteError`, `WrongSwarmError`,
   * `PermissionDeniedError`) or `JoinFailedError`.
   */
  async request (target: PeerId | Multiaddr[], member: PeerId, invite: Invite, name: string, options: AbortOptions = {}): Promise<JoinGrant> {
    const signal = options.signal ?? AbortSignal.timeout(this.timeoutMs)
    let stream: Stream
    try {
      stream = await this.components.dialer.dialProtocol(target, JOIN_PROTOCOL, { signal })
    } catch (err) {
      throw new JoinFailedError(`could not reach ${member.toString()}: ${(err as Error).message}`, { cause: err })
    }
    const framed = new FramedStream(stream, MAX_MESSAGE_BYTES)
    try {
      const key = await inviteKey(invite.token)
      await framed.write({ v: 1, swarm: invite.swarmPrefix, key: key.publicKey.raw, name }, { signal })
      const challenge = refusalOr(await framed.read({ signal }))
      if (!(challenge.nonce instanceof Uint8Array) || challenge.nonce.byteLength !== 32) throw new ProtocolError('member sent no nonce')
      const sig = await key.sign(joinProofPayload(invite.swarmPrefix, this.components.peerId, member, challenge.nonce))
      await framed.write({ sig }, { signal })
      const entries: Uint8Array[] = []
      for (let i = 0; i < MAX_BATCHES; i++) {
        const message = refusalOr(await framed.read({ signal }))
        if (!Array.isArray(message.entries) || !message.entries.every(e => e instanceof Uint8Array)) throw new ProtocolError('member sent a malformed roster')
        entries.push(...message.entries as Uint8Array[])
        if (entries.length > MAX_ROSTER_ENTRIES) throw new ProtocolError('member sent too many entries')
        if (message.more === true) continue
        if (!(message.swarm instanceof Uint8Array) || !(message.secret instanceof Uint8Array)) throw new ProtocolError('member sent no swarm secret')
        await framed.close({ signal })
        return { swarmId: message.swarm, secret: message.secret, entries }
      }
      throw new ProtocolError('member sent too many messages')
    } catch (err) {
      framed.abort(err instanceof Error ? err : new ProtocolError(String(err)))
      if (err instanceof ProtocolError || (err as Error).name === 'AbortError' || (err as { code?: string }).code === undefined) {
        throw new JoinFailedError(`join through ${member.toString()} failed: ${(err as Error).message}`, { cause: err })
      }
      throw err
    }
  }

  private count (outcome: string): void {
    this.outcomes[outcome] = (this.outcomes[outcome] ?? 0) + 1
  }
}

function parseRequest (message: Record<string, unknown>, joiner: PeerId): JoinRequest {
  const { v, swarm, key, name } = message
  if (v !== 1 || !(swarm instanceof Uint8Array) || swarm.byteLength !== INVITE_SWARM_PREFIX_BYTES ||
    !(key instanceof Uint8Array) || key.byteLength !== 32 || typeof name !== 'string' || name.length === 0 ||
    new TextEncoder().encode(name).byteLength > MAX_NAME_BYTES) {
    throw new ProtocolError('malformed join request')
  }
  return { swarmPrefix: swarm, inviteKey: key, joiner, name }
}

/** Throw the member's refusal if the message is one. */
function refusalOr (message: Record<string, unknown>): Record<string, unknown> {
  if (typeof message.error === 'string') {
    const refusal = REFUSALS[message.error]
    const text = typeof message.message === 'string' ? message.message.slice(0, 200) : undefined
    if (refusal !== undefined) throw refusal(text)
    throw new JoinFailedError(`member refused the join: ${message.error}`)
  }
  return message
}
