/**
 * The private swarms of one device: create, invite, join, remove, leave; the gate every private
 * protocol goes through; roster sync on connect and on change; rendezvous; revocation.
 * It never constructs libp2p: `packages/node` hands it the narrow parts below (the libp2p node
 * itself satisfies every `Pick<Libp2p, …>`).
 */
import { randomBytes } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import { logger } from '@libp2p/logger'
import { peerIdFromString } from '@libp2p/peer-id'
import { TypedEventEmitter } from 'main-event'
import { CID } from 'multiformats/cid'
import { rankForInvite, withPeer } from './addresses.js'
import {
  DEFAULT_INVITE_EXPIRY_MS, DEFAULT_INVITE_USES, DEFAULT_PROTOCOL_TIMEOUT_MS, DEFAULT_RENDEZVOUS_INTERVAL_MS,
  INVITE_SWARM_PREFIX_BYTES, INVITE_TOKEN_BYTES, MAX_HEADS, MAX_INVITE_USES, MAX_NAME_BYTES, MAX_PEER_RECORDS_PER_MESSAGE,
  MAX_SWARMS, SYNC_CONCURRENCY
} from './constants.js'
import { SwarmRecords } from './datastore.js'
import { decodeEntries, equalBytes } from './entry.js'
import {
  ForgedEntryError, InvalidParametersError, InviteExpiredError, InviteUsedError, JoinFailedError, LimitExceededError,
  NotAMemberError, NotFoundError, SwarmExistsError, UnknownInviteError, WrongSwarmError
} from './errors.js'
import { RosterGate } from './gate.js'
import { decodeInvite, encodeInvite, inviteKey } from './invite.js'
import { JoinProtocol } from './join.js'
import { OwnPeerRecord, PeerRecordGuard, Rendezvous, rendezvousCid } from './rendezvous.js'
import { RendezvousSchedule } from './rendezvous-schedule.js'
import { toHex } from './roster.js'
import { RosterSync } from './roster-sync.js'
import { PrivateSwarm } from './swarm.js'
import type { ForgedEntryReason } from './errors.js'
import type { JoinGrant, JoinRequest } from './join.js'
import type { Member } from './roster.js'
import type { SyncableSwarm } from './roster-sync.js'
import type {
  CreatedInvite, InviteOptions, JoinOptions, RendezvousResult, SwarmComponents, SwarmEvents, SwarmInfo,
  SwarmInviteInfo, SwarmMemberInfo, SwarmServiceInit, SwarmStats
} from './types.js'
import type { AbortOptions, Connection, PeerId, Startable } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

const log = logger('homecloud:swarm')

const MAX_INVITE_EXPIRY_MS = 30 * 24 * 60 * 60 * 1000

export class SwarmService extends TypedEventEmitter<SwarmEvents> implements Startable {
  readonly gate: RosterGate
  private readonly swarms = new Map<string, PrivateSwarm>()
  private readonly records: SwarmRecords
  private readonly joinProtocol: JoinProtocol
  private readonly rosterSync: RosterSync
  private readonly guard: PeerRecordGuard
  private readonly meetingPoint: Rendezvous
  private readonly ownRecord: OwnPeerRecord
  private readonly rejectedEntries: Partial<Record<ForgedEntryReason, number>> = {}
  private readonly lastSeen = new Map<string, number>()
  private readonly pushPending = new Set<string>()
  /** Secret commitment each swarm was last announced under. */
  private readonly announced = new Map<string, string>()
  private readonly background = new Set<Promise<unknown>>()
  private readonly now: () => number
  private readonly protocolTimeoutMs: number
  private readonly rendezvousIntervalMs: number
  private controller = new AbortController()
  private schedule?: RendezvousSchedule
  private started = false

  constructor (private readonly components: SwarmComponents, private readonly init: SwarmServiceInit) {
    super()
    checkName(init.deviceName, 'device name')
    this.now = init.now ?? Date.now
    this.protocolTimeoutMs = init.protocolTimeoutMs ?? DEFAULT_PROTOCOL_TIMEOUT_MS
    this.rendezvousIntervalMs = init.rendezvousIntervalMs ?? DEFAULT_RENDEZVOUS_INTERVAL_MS
    this.records = new SwarmRecords(components.datastore)
    this.gate = new RosterGate({
      isMember: (swarmId, peer) => this.swarms.get(swarmId)?.isMember(peer) ?? false,
      swarmsOf: (peer) => this.swarmsOf(peer)
    }, components)
    this.joinProtocol = new JoinProtocol({ admit: async (request, options) => this.admit(request, options) }, components, { timeoutMs: this.protocolTimeoutMs })
    this.rosterSync = new RosterSync({ swarm: (id) => this.syncable(id) }, this.gate, { timeoutMs: this.protocolTimeoutMs })
    this.guard = new PeerRecordGuard(components.peerStore)
    this.meetingPoint = new Rendezvous(components)
    this.ownRecord = new OwnPeerRecord(components)
  }

  readonly [Symbol.toStringTag] = '@homecloud/swarm'

  isStarted (): boolean {
    return this.started
  }

  /** Load the stored swarms, register the protocols, start rendezvous. */
  async start (): Promise<void> {
    if (this.started) return
    this.controller = new AbortController()
    for await (const { meta, entries } of this.records.loadAll()) {
      try {
        const { swarm, rejected } = await PrivateSwarm.load(meta, entries, this.records)
        for (const err of rejected) this.countRejected(err)
        this.swarms.set(swarm.id, swarm)
      } catch (err) {
        log.error('could not load swarm %s: %e', meta.id, err)
      }
    }
    await this.joinProtocol.start()
    await this.rosterSync.start()
    this.components.events.addEventListener('connection:open', this.onConnectionOpen)
    this.components.events.addEventListener('peer:disconnect', this.onPeerDisconnect)
    this.started = true
    if (this.rendezvousIntervalMs > 0) {
      this.schedule = new RendezvousSchedule(() => {
        for (const swarm of this.swarms.values()) {
          this.announced.set(swarm.id, toHex(swarm.state.secretCommit))
          // not announced (no DHT peer yet, say): again after the backoff, not a whole period later
          this.inBackground(async () => { if (!(await this.rendezvous(swarm.id)).announced && swarm.secret !== undefined) this.schedule?.changed() })
        }
      }, { intervalMs: this.rendezvousIntervalMs })
      // new addresses (a relay reservation, say) are worth announcing before the next period
      this.components.events.addEventListener('self:peer:update', this.onSelfUpdate)
      this.schedule.start()
    }
  }

  private readonly onSelfUpdate = (): void => { this.schedule?.changed() }

  /** Unregister, abort everything started, and wait for it to settle. */
  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    this.schedule?.stop()
    this.components.events.removeEventListener('self:peer:update', this.onSelfUpdate)
    this.controller.abort()
    this.components.events.removeEventListener('connection:open', this.onConnectionOpen)
    this.components.events.removeEventListener('peer:disconnect', this.onPeerDisconnect)
    await this.joinProtocol.stop()
    await this.rosterSync.stop()
    await Promise.allSettled([...this.background])
    await Promise.allSettled([...this.swarms.values()].map(async s => s.exclusive(async () => {})))
    this.swarms.clear()
  }

  /** Create a swarm with this device as its only member. */
  async create (name: string, options: AbortOptions = {}): Promise<SwarmInfo> {
    options.signal?.throwIfAborted()
    checkName(name, 'swarm name')
    if ([...this.swarms.values()].some(s => s.name === name)) throw new SwarmExistsError(`a swarm named "${name}" already exists on this device`)
    if (this.swarms.size >= MAX_SWARMS) throw new LimitExceededError(`this device is already in ${MAX_SWARMS} swarms`)
    const swarm = await PrivateSwarm.create(name, this.init.deviceName, this.components.privateKey, this.now(), this.records)
    this.swarms.set(swarm.id, swarm)
    log('created swarm %s (%s)', name, swarm.id)
    this.changed(swarm)
    return this.info(swarm)
  }

  list (): SwarmInfo[] {
    return [...this.swarms.values()].map(s => this.info(s)).sort((a, b) => a.name.localeCompare(b.name))
  }

  /** A swarm by name or id; `NotFoundError` if this device is not in it. */
  get (nameOrId: string): SwarmInfo {
    return this.info(this.resolve(nameOrId))
  }

  members (nameOrId: string): SwarmMemberInfo[] {
    const swarm = this.resolve(nameOrId)
    return [...swarm.state.members.values()].map(m => this.memberInfo(m)).sort((a, b) => a.name.localeCompare(b.name) || a.peerId.localeCompare(b.peerId))
  }

  /** Invites recorded in a swarm's roster, with the uses left. */
  invites (nameOrId: string): SwarmInviteInfo[] {
    const now = this.now()
    return [...this.resolve(nameOrId).state.invites.values()].map(i => ({
      id: i.id, createdBy: i.createdBy.toString(), expires: i.expires, uses: i.uses, used: i.used, usable: i.used < i.uses && i.expires > now
    }))
  }

  /** Is `peer` on the current roster of swarm `swarmId`? */
  isMember (swarmId: string, peer: PeerId): boolean {
    return this.swarms.get(swarmId)?.isMember(peer) ?? false
  }

  /** The current secret of a swarm, when known (for protocols that derive keys from it). */
  secret (nameOrId: string): Uint8Array | undefined {
    return this.resolve(nameOrId).secret?.slice()
  }

  /** Record a new invite in the roster and return its code. */
  async invite (nameOrId: string, options: InviteOptions = {}): Promise<CreatedInvite> {
    options.signal?.throwIfAborted()
    const swarm = this.resolve(nameOrId)
    const expiresIn = options.expiresInMs ?? DEFAULT_INVITE_EXPIRY_MS
    const uses = options.uses ?? DEFAULT_INVITE_USES
    if (!Number.isSafeInteger(expiresIn) || expiresIn < 1000 || expiresIn > MAX_INVITE_EXPIRY_MS) {
      throw new InvalidParametersError('an invite expires in 1 second to 30 days')
    }
    if (!Number.isSafeInteger(uses) || uses < 1 || uses > MAX_INVITE_USES) {
      throw new InvalidParametersError(`an invite has 1 to ${MAX_INVITE_USES} uses`)
    }
    const token = new Uint8Array(randomBytes(INVITE_TOKEN_BYTES))
    const key = await inviteKey(token)
    // the code carries seconds; record the same instant
    const expires = Math.floor((this.now() + expiresIn) / 1000) * 1000
    await swarm.exclusive(async () => {
      this.requireMember(swarm)
      await swarm.append({ type: 'invite', key: key.publicKey.raw, expires, uses }, this.components.privateKey, this.now())
    })
    this.changed(swarm)
    const code = encodeInvite({
      swarmPrefix: swarmPrefix(swarm.cid),
      token,
      expires,
      inviter: this.components.peerId,
      addresses: options.addresses ?? rankForInvite(this.components.addresses.getMultiaddrs())
    })
    return { code, swarmId: swarm.id, expires, uses }
  }

  /**
   * Join the swarm of an invite code: contact the inviter (then `via`), prove the token, receive
   * the roster and the secret. Throws `InvalidInviteError`, `InviteExpiredError`,
   * `InviteUsedError`, `UnknownInviteError`, `WrongSwarmError`, `SwarmExistsError` or `JoinFailedError`.
   */
  async join (code: string, options: JoinOptions = {}): Promise<SwarmInfo> {
    const invite = decodeInvite(code)
    if (invite.expires <= this.now()) throw new InviteExpiredError(`the invite expired at ${new Date(invite.expires).toISOString()}`)
    const existing = [...this.swarms.values()].find(s => equalBytes(swarmPrefix(s.cid), invite.swarmPrefix))
    if (existing !== undefined) throw new SwarmExistsError(`this device is already in swarm "${existing.name}"`)
    if (this.swarms.size >= MAX_SWARMS) throw new LimitExceededError(`this device is already in ${MAX_SWARMS} swarms`)
    const name = options.name ?? this.init.deviceName
    checkName(name, 'device name')
    const targets: Array<{ peer: PeerId, target: PeerId | Multiaddr[] }> = [{
      peer: invite.inviter,
      target: invite.addresses.length > 0 ? invite.addresses.map(a => withPeer(a, invite.inviter)) : invite.inviter
    }]
    for (const addr of options.via ?? []) {
      const id = addr.getComponents().findLast(c => c.code === 421)?.value
      if (id === undefined) throw new InvalidParametersError(`${addr.toString()} does not end in /p2p/<id>`)
      targets.push({ peer: peerIdFromString(id), target: [addr] })
    }
    let lastError: Error = new JoinFailedError('no member to contact')
    for (const { peer, target } of targets) {
      if (peer.equals(this.components.peerId)) continue
      let grant: JoinGrant
      try {
        const timeout = AbortSignal.timeout(this.protocolTimeoutMs)
        grant = await this.joinProtocol.request(target, peer, invite, name, { signal: options.signal == null ? timeout : AbortSignal.any([options.signal, timeout]) })
      } catch (err) {
        // a used or expired invite is the same everywhere; other refusals may differ per member
        if (err instanceof InviteUsedError || err instanceof InviteExpiredError) throw err
        lastError = err as Error
        log('join through %p failed: %e', peer, err)
        continue
      }
      return this.install(invite.swarmPrefix, grant, peer)
    }
    throw lastError
  }

  /** Remove a device (by PeerId or roster name) and rotate the secret; removing this device is `leave`. */
  async remove (nameOrId: string, device: string, options: AbortOptions = {}): Promise<void> {
    options.signal?.throwIfAborted()
    const swarm = this.resolve(nameOrId)
    const member = this.resolveMember(swarm, device)
    if (member.peerId.equals(this.components.peerId)) {
      await this.leave(nameOrId, options)
      return
    }
    await swarm.exclusive(async () => {
      this.requireMember(swarm)
      const before = new Map(swarm.state.members)
      await swarm.append({ type: 'remove', device: member.peerId.toMultihash().bytes }, this.components.privateKey, this.now())
      await this.afterChange(swarm, before)
    })
  }

  /** Take this device off a swarm's roster, tell the members online, and forget the swarm. */
  async leave (nameOrId: string, options: AbortOptions = {}): Promise<void> {
    const swarm = this.resolve(nameOrId)
    await swarm.exclusive(async () => {
      if (!swarm.isMember(this.components.peerId)) return
      await swarm.append({ type: 'remove', device: this.components.peerId.toMultihash().bytes }, this.components.privateKey, this.now())
    })
    // members rotate the secret when they see the removal (rule 5 in roster.ts)
    await this.pushNow(swarm, options)
    await this.drop(swarm)
  }

  /** Sync the roster with every connected member now. */
  async sync (nameOrId: string, options: AbortOptions = {}): Promise<void> {
    await this.pushNow(this.resolve(nameOrId), options)
  }

  /** Announce this device at the swarm's rendezvous point, find members there, and sync with them. */
  async rendezvous (nameOrId: string, options: AbortOptions = {}): Promise<RendezvousResult> {
    const swarm = this.resolve(nameOrId)
    const secret = swarm.secret
    const result: RendezvousResult = { announced: false, synced: [] }
    if (secret === undefined) return result
    const signal = AbortSignal.any([this.controller.signal, options.signal ?? AbortSignal.timeout(this.protocolTimeoutMs * 3)])
    const cid = await rendezvousCid(secret, swarm.cid)
    try {
      await this.meetingPoint.announce(cid, { signal })
      result.announced = true
    } catch (err) {
      log('announcing %s failed: %e', swarm.id, err)
    }
    try {
      for await (const found of this.meetingPoint.findMembers(cid, p => swarm.isMember(p), { signal })) {
        try {
          await this.rosterSync.sync(swarm.id, found.peerId, { signal, dialHints: found.dialHints })
          result.synced.push(found.peerId.toString())
          log('rendezvous of %s: synced with %p', swarm.id, found.peerId)
        } catch (err) {
          log('rendezvous sync with %p failed: %e', found.peerId, err)
        }
      }
    } catch (err) {
      log('rendezvous lookup of %s failed: %e', swarm.id, err)
    }
    return result
  }

  stats (): SwarmStats {
    return {
      gate: this.gate.stats(),
      rejectedEntries: { ...this.rejectedEntries },
      rejectedPeerRecords: this.guard.stats(),
      joins: this.joinProtocol.stats(),
      rendezvous: { ...this.meetingPoint.stats(), triggeredRuns: this.schedule?.triggeredRuns ?? 0 }
    }
  }

  /** Member side of a join (called by the join protocol once the proof checks out). */
  private async admit (request: JoinRequest, options: AbortOptions): Promise<JoinGrant> {
    const swarm = [...this.swarms.values()].find(s => equalBytes(swarmPrefix(s.cid), request.swarmPrefix))
    if (swarm === undefined || !swarm.isMember(this.components.peerId)) throw new WrongSwarmError()
    return swarm.exclusive(async () => {
      options.signal?.throwIfAborted()
      const invite = swarm.state.invites.get(toHex(request.inviteKey))
      if (invite === undefined) throw new UnknownInviteError()
      if (invite.expires <= this.now()) throw new InviteExpiredError()
      if (invite.used >= invite.uses) throw new InviteUsedError()
      const secret = swarm.secret
      if (secret === undefined) throw new UnknownInviteError('this member does not hold the current secret yet; try another member')
      const before = new Map(swarm.state.members)
      await swarm.append({ type: 'add', device: request.joiner.toMultihash().bytes, name: request.name, invite: request.inviteKey }, this.components.privateKey, this.now())
      // a concurrent add may have spent the last use first (roster.ts rule 3)
      if (!swarm.isMember(request.joiner)) throw new InviteUsedError()
      log('admitted %p to %s', request.joiner, swarm.id)
      await this.afterChange(swarm, before)
      return { swarmId: swarm.cid.bytes, secret, entries: swarm.log.entries().map(e => e.bytes) }
    })
  }

  /** Joiner side: check what the member sent and keep the swarm. */
  private async install (prefix: Uint8Array, grant: JoinGrant, from: PeerId): Promise<SwarmInfo> {
    let id: CID
    try {
      id = CID.decode(grant.swarmId)
    } catch (err) {
      throw new JoinFailedError('the member sent a malformed swarm id', { cause: err })
    }
    if (!equalBytes(swarmPrefix(id), prefix)) throw new JoinFailedError('the member answered for another swarm')
    const { swarm, rejected } = await PrivateSwarm.fromGrant(id, grant.secret, grant.entries, this.components.peerId, this.records)
    for (const err of rejected) this.countRejected(err)
    this.swarms.set(swarm.id, swarm)
    log('joined swarm %s through %p', swarm.name, from)
    this.changed(swarm)
    this.inBackground(async () => this.rosterSync.sync(swarm.id, from, { signal: this.backgroundSignal() }))
    return this.info(swarm)
  }

  /** Adapter the roster sync protocol drives. */
  private syncable (id: string): SyncableSwarm | undefined {
    const swarm = this.swarms.get(id)
    if (swarm === undefined) return undefined
    const self = this.components.peerId
    return {
      heads: () => swarm.log.heads().slice(0, MAX_HEADS),
      missingFor: (heads) => swarm.log.missingFor(heads).map(e => e.bytes),
      ingest: async (bytes, from) => {
        const { entries, rejected } = await decodeEntries(bytes)
        for (const err of rejected) {
          this.countRejected(err)
          log('forged roster entry from %p: %s', from, err.message)
        }
        await swarm.exclusive(async () => {
          if (this.swarms.get(id) !== swarm) return // dropped meanwhile
          const before = new Map(swarm.state.members)
          const result = await swarm.ingest(entries)
          for (const err of result.rejected) {
            this.countRejected(err)
            log('rejected roster entry from %p: %s', from, err.message)
          }
          if (result.added.length > 0) await this.afterChange(swarm, before)
        })
      },
      secretFor: (peer) => swarm.isMember(peer) ? swarm.secret : undefined,
      acceptSecret: async (secret) => {
        if (await swarm.exclusive(async () => swarm.acceptSecret(secret))) this.changed(swarm)
      },
      peerRecords: async (peer, options) => {
        const out: Uint8Array[] = []
        for (const member of swarm.state.members.values()) {
          if (out.length >= MAX_PEER_RECORDS_PER_MESSAGE) break
          if (member.peerId.equals(peer) || member.peerId.equals(self)) continue
          const envelope = await this.components.peerStore.get(member.peerId, options).then(p => p.peerRecordEnvelope, () => undefined)
          if (envelope != null) out.push(envelope)
        }
        // this device's own record goes first, freshly signed
        out.unshift(await this.ownRecord.seal(options))
        return out.slice(0, MAX_PEER_RECORDS_PER_MESSAGE)
      },
      acceptPeerRecords: async (records, _from, options) => {
        for (const record of records) {
          await this.guard.accept(record, { ...options, isMember: p => !p.equals(self) && swarm.isMember(p) })
        }
      }
    }
  }

  /**
   * After the roster changed (inside `exclusive`): reset and hang up removed devices, forget the
   * swarm if this device was removed, rotate the secret if a removal needs it, tell the members.
   */
  private async afterChange (swarm: PrivateSwarm, before: Map<string, Member>): Promise<void> {
    const self = this.components.peerId
    const after = swarm.state.members
    if (!after.has(self.toString()) && before.has(self.toString())) {
      log('this device was removed from %s', swarm.id)
      this.inBackground(async () => this.drop(swarm))
      return
    }
    for (const [key, member] of before) {
      if (after.has(key)) continue
      const reset = this.gate.revoke(swarm.id, member.peerId)
      log('%p removed from %s; %d streams reset', member.peerId, swarm.id, reset)
      this.safeDispatch('swarm:member-removed', { swarmId: swarm.id, peerId: key })
      if (this.swarmsOf(member.peerId).length === 0) {
        this.inBackground(async () => this.components.connectionManager.hangUp(member.peerId, { signal: this.backgroundSignal() }))
      }
    }
    if (swarm.state.needsRotation && after.has(self.toString())) {
      await swarm.rotate(this.components.privateKey, this.now())
      log('rotated the secret of %s (epoch %d)', swarm.id, swarm.state.epoch)
    }
    this.changed(swarm)
  }

  /** Announce a change and push it to connected members, coalescing bursts. */
  private changed (swarm: PrivateSwarm): void {
    this.safeDispatch('swarm:change', { swarmId: swarm.id })
    // a new secret moves the rendezvous point: announce there now rather than at the next period
    const commit = toHex(swarm.state.secretCommit)
    if (this.started && this.rendezvousIntervalMs > 0 && swarm.secret !== undefined && this.announced.get(swarm.id) !== commit) {
      this.announced.set(swarm.id, commit)
      this.inBackground(async () => this.rendezvous(swarm.id))
    }
    if (!this.started || this.pushPending.has(swarm.id)) return
    this.pushPending.add(swarm.id)
    this.inBackground(async () => {
      try {
        await delay(20, undefined, { signal: this.controller.signal })
      } finally {
        this.pushPending.delete(swarm.id)
      }
      if (this.swarms.get(swarm.id) === swarm) await this.pushNow(swarm, {})
    })
  }

  /** Sync with every connected member of `swarm` (at most `SYNC_CONCURRENCY` at once). */
  private async pushNow (swarm: PrivateSwarm, options: AbortOptions): Promise<void> {
    const self = this.components.peerId
    const peers = new Map<string, PeerId>()
    for (const conn of this.components.connectionManager.getConnections()) {
      const peer = conn.remotePeer
      if (!peer.equals(self) && swarm.isMember(peer)) {
        peers.set(peer.toString(), peer)
      }
    }
    const queue = [...peers.values()]
    const worker = async (): Promise<void> => {
      for (let peer = queue.shift(); peer !== undefined; peer = queue.shift()) {
        const signal = AbortSignal.any([this.controller.signal, options.signal ?? AbortSignal.timeout(this.protocolTimeoutMs)])
        try {
          await this.rosterSync.sync(swarm.id, peer, { signal })
        } catch (err) {
          log('roster sync of %s with %p failed: %e', swarm.id, peer, err)
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(SYNC_CONCURRENCY, queue.length) }, worker))
  }

  /** Forget a swarm this device is no longer in. */
  private async drop (swarm: PrivateSwarm): Promise<void> {
    if (this.swarms.get(swarm.id) !== swarm) return
    this.swarms.delete(swarm.id)
    this.announced.delete(swarm.id)
    for (const member of swarm.state.members.values()) this.gate.revoke(swarm.id, member.peerId)
    await this.records.deleteSwarm(swarm.id)
    this.safeDispatch('swarm:left', { swarmId: swarm.id })
  }

  private readonly onConnectionOpen = (event: CustomEvent<Connection>): void => {
    const connection = event.detail
    const peer = connection.remotePeer
    this.lastSeen.set(peer.toString(), this.now())
    // the dialling side starts the sync, so one connection brings one sync per swarm, not two
    if (connection.direction !== 'outbound') return
    for (const swarmId of this.swarmsOf(peer)) {
      this.inBackground(async () => this.rosterSync.sync(swarmId, peer, { signal: this.backgroundSignal() }))
    }
  }

  private readonly onPeerDisconnect = (event: CustomEvent<PeerId>): void => {
    this.lastSeen.set(event.detail.toString(), this.now())
  }

  /** Ids of this device's swarms that have `peer` on their roster (e.g. for a relay's reservation policy). */
  swarmsOf (peer: PeerId): string[] {
    const out: string[] = []
    for (const swarm of this.swarms.values()) if (swarm.isMember(peer)) out.push(swarm.id)
    return out
  }

  private resolve (nameOrId: string): PrivateSwarm {
    const swarm = this.swarms.get(nameOrId) ?? [...this.swarms.values()].find(s => s.name === nameOrId)
    if (swarm === undefined) throw new NotFoundError(`this device is in no swarm "${nameOrId}"`)
    return swarm
  }

  private resolveMember (swarm: PrivateSwarm, device: string): Member {
    const byId = swarm.state.members.get(device)
    if (byId !== undefined) return byId
    const byName = [...swarm.state.members.values()].filter(m => m.name === device)
    if (byName.length === 1) return byName[0]
    if (byName.length > 1) throw new InvalidParametersError(`several devices are named "${device}"; use the PeerId`)
    throw new NotFoundError(`no device "${device}" on the roster of "${swarm.name}"`)
  }

  private requireMember (swarm: PrivateSwarm): void {
    if (!swarm.isMember(this.components.peerId)) throw new NotAMemberError(`this device is no longer on the roster of "${swarm.name}"`)
  }

  private info (swarm: PrivateSwarm): SwarmInfo {
    const state = swarm.state
    return { id: swarm.id, name: swarm.name, members: state.members.size, epoch: state.epoch, secretKnown: swarm.secret !== undefined }
  }

  private memberInfo (member: Member): SwarmMemberInfo {
    const self = member.peerId.equals(this.components.peerId)
    const connections = self ? [] : this.components.connectionManager.getConnections(member.peerId)
    const online = self || connections.length > 0
    const info: SwarmMemberInfo = { peerId: member.peerId.toString(), name: member.name, addedBy: member.addedBy.toString(), self, online }
    if (connections.length > 0) {
      info.path = connections.some(c => !c.remoteAddr.getComponents().some(p => p.code === 290)) ? 'direct' : 'relayed'
    }
    const seen = online ? this.now() : this.lastSeen.get(info.peerId)
    if (seen !== undefined) info.lastSeen = seen
    return info
  }

  private countRejected (err: ForgedEntryError): void {
    this.rejectedEntries[err.reason] = (this.rejectedEntries[err.reason] ?? 0) + 1
  }

  private backgroundSignal (): AbortSignal {
    return AbortSignal.any([this.controller.signal, AbortSignal.timeout(this.protocolTimeoutMs)])
  }

  /** Run `fn` detached but tracked, so `stop()` waits for it; failures are logged. */
  private inBackground (fn: () => Promise<unknown>): void {
    const p = fn().catch(err => { if (this.started) log('background task failed: %e', err) })
    this.background.add(p)
    void p.finally(() => this.background.delete(p))
  }

  private safeDispatch<K extends keyof SwarmEvents> (type: K, detail: SwarmEvents[K]['detail']): void {
    this.safeDispatchEvent(type, { detail })
  }
}

/** The service as a factory over its components, like every libp2p service. */
export function swarmService (init: SwarmServiceInit): (components: SwarmComponents) => SwarmService {
  return (components) => new SwarmService(components, init)
}

/** The bytes of a swarm id carried in invite codes. */
function swarmPrefix (cid: CID): Uint8Array {
  return cid.multihash.digest.subarray(0, INVITE_SWARM_PREFIX_BYTES)
}

function checkName (name: string, what: string): void {
  if (typeof name !== 'string' || name.trim().length === 0 || new TextEncoder().encode(name).byteLength > MAX_NAME_BYTES) {
    throw new InvalidParametersError(`a ${what} has 1 to ${MAX_NAME_BYTES} bytes`)
  }
}
