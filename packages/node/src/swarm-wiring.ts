/**
 * The private swarms of a device (issue 4): the swarm service wired to the device's libp2p
 * node, with its state in LevelDB inside the repo (or in memory), started after libp2p and
 * stopped before it.
 */
import { InvalidParametersError, RepoError } from '@homecloud/interface'
import { LevelSwarmDatastore, MemorySwarmDatastore, swarmService } from '@homecloud/swarm'
import { logger } from '@libp2p/logger'
import { peerIdFromString } from '@libp2p/peer-id'
import { Level } from 'level'
import { LOG_SCOPE, SWARM_RENDEZVOUS_INTERVAL_MS } from './constants.js'
import type { DeviceServices, HomecloudNodeConfig, SwarmTuning } from './types.js'
import type { SwarmDatastore, SwarmService } from '@homecloud/swarm'
import type { Connection, Libp2p, Libp2pEvents, PeerId, PrivateKey } from '@libp2p/interface'

const log = logger(`${LOG_SCOPE}:member-redial`)

/** Bounds of `config.swarm` (D8): rendezvous no more often than this, exchanges within these. */
const MIN_RENDEZVOUS_INTERVAL_MS = 1_000
const MAX_RENDEZVOUS_INTERVAL_MS = 24 * 60 * 60 * 1000
const MIN_PROTOCOL_TIMEOUT_MS = 100
const MAX_PROTOCOL_TIMEOUT_MS = 120_000
const DEFAULT_PROTOCOL_TIMEOUT_MS = 10_000

/**
 * The swarm part of a config, checked: the database folder (not the device's other database)
 * and the timing; rendezvous is off when the DHT is.
 *
 * @throws {InvalidParametersError}
 */
export function resolveSwarmConfig (config: HomecloudNodeConfig, services: DeviceServices): { swarmDatastorePath?: string, swarm: SwarmTuning } {
  const { swarmDatastorePath, datastorePath } = config
  if (swarmDatastorePath != null && (typeof swarmDatastorePath !== 'string' || swarmDatastorePath === '')) {
    throw new InvalidParametersError('config.swarmDatastorePath must be a non-empty string when set')
  }
  if (swarmDatastorePath != null && swarmDatastorePath === datastorePath) {
    throw new InvalidParametersError('config.swarmDatastorePath must differ from config.datastorePath (each is its own LevelDB)')
  }
  const tuning = config.swarm ?? {}
  if (tuning == null || typeof tuning !== 'object' || Array.isArray(tuning)) {
    throw new InvalidParametersError('config.swarm must be an object')
  }
  const interval = tuning.rendezvousIntervalMs ?? SWARM_RENDEZVOUS_INTERVAL_MS
  if (!Number.isSafeInteger(interval) || (interval !== 0 && (interval < MIN_RENDEZVOUS_INTERVAL_MS || interval > MAX_RENDEZVOUS_INTERVAL_MS))) {
    throw new InvalidParametersError(`config.swarm.rendezvousIntervalMs must be 0 (off) or ${MIN_RENDEZVOUS_INTERVAL_MS}..${MAX_RENDEZVOUS_INTERVAL_MS}`)
  }
  const timeout = tuning.protocolTimeoutMs ?? DEFAULT_PROTOCOL_TIMEOUT_MS
  if (!Number.isSafeInteger(timeout) || timeout < MIN_PROTOCOL_TIMEOUT_MS || timeout > MAX_PROTOCOL_TIMEOUT_MS) {
    throw new InvalidParametersError(`config.swarm.protocolTimeoutMs must be ${MIN_PROTOCOL_TIMEOUT_MS}..${MAX_PROTOCOL_TIMEOUT_MS}`)
  }
  return {
    ...(swarmDatastorePath == null ? {} : { swarmDatastorePath }),
    // without a DHT there is nowhere to meet
    swarm: { rendezvousIntervalMs: services.dht === 'off' ? 0 : interval, protocolTimeoutMs: timeout }
  }
}

export interface DeviceSwarmsInit extends SwarmTuning {
  privateKey: PrivateKey
  /** The device's name, shown on rosters. */
  deviceName: string
  /** LevelDB folder for rosters and secrets; in memory when absent. */
  datastorePath?: string
}

/** Owns the swarm service, its database and the member redial; `HomecloudNode` drives `start`/`stop`. */
export class DeviceSwarms {
  readonly service: SwarmService
  /** Redials members at start and when their connection drops. */
  readonly redial: MemberRedial
  /** Closes a member's dead connections once it is back on another path. */
  readonly staleCheck: StaleMemberConnections
  private readonly db?: Level<string, Uint8Array>
  private readonly datastorePath?: string

  constructor (libp2p: Libp2p, init: DeviceSwarmsInit) {
    this.datastorePath = init.datastorePath
    let datastore: SwarmDatastore
    if (init.datastorePath == null) {
      datastore = new MemorySwarmDatastore()
    } else {
      // opened in start(): constructing a Level does not touch the disk
      this.db = new Level<string, Uint8Array>(init.datastorePath, { keyEncoding: 'utf8', valueEncoding: 'view' })
      datastore = new LevelSwarmDatastore(this.db)
    }
    this.service = swarmService({
      deviceName: init.deviceName,
      rendezvousIntervalMs: init.rendezvousIntervalMs,
      protocolTimeoutMs: init.protocolTimeoutMs
    })({
      peerId: libp2p.peerId,
      privateKey: init.privateKey,
      registrar: libp2p,
      dialer: libp2p,
      connectionManager: libp2p,
      events: libp2p,
      addresses: libp2p,
      peerStore: libp2p.peerStore,
      // the DHT when it runs: rendezvous announces and looks members up there
      contentRouting: libp2p.contentRouting,
      datastore
    })
    this.redial = new MemberRedial(libp2p, {
      members: () => this.members(),
      isMember: (peer) => this.isMember(peer)
    })
    this.staleCheck = new StaleMemberConnections(libp2p, { isMember: (peer) => this.isMember(peer) })
  }

  /** The other devices on this device's rosters (each once). */
  members (): PeerId[] {
    if (!this.service.isStarted()) return []
    const ids = new Set<string>()
    for (const swarm of this.service.list()) {
      for (const member of this.service.members(swarm.id)) {
        if (!member.self) ids.add(member.peerId)
      }
    }
    return [...ids].map(id => peerIdFromString(id))
  }

  /** Dial every member not connected yet; the device calls it once all its services run. */
  dialMembers (): void {
    this.redial.dialAll()
  }

  /** Is `peer` on the roster of one of this device's swarms? (the family relay's question) */
  isMember (peer: PeerId): boolean {
    return this.service.isStarted() && this.service.swarmsOf(peer).length > 0
  }

  /** Open the database and start the service; call once libp2p runs. */
  async start (): Promise<void> {
    if (this.db != null && this.db.status !== 'open') {
      try {
        await this.db.open()
      } catch (err) {
        const cause = (err as { cause?: { code?: string } }).cause
        const why = cause?.code === 'LEVEL_LOCKED' ? 'it is in use by another process' : (err as Error).message
        throw new RepoError(`cannot open the swarm database ${this.datastorePath ?? ''}: ${why}`, { cause: err })
      }
    }
    await this.service.start()
    this.redial.start()
    this.staleCheck.start()
  }

  /** Stop the service (its protocols leave libp2p) and close the database; call before libp2p stops. */
  async stop (): Promise<void> {
    try {
      // first: libp2p's stop closes every connection, which must not look like members dropping
      await this.redial.stop()
      await this.staleCheck.stop()
      await this.service.stop()
    } finally {
      if (this.db != null && this.db.status === 'open') await this.db.close()
    }
  }
}

/**
 * Bounds of the member redial (D8). The last retry comes 2 to 5 minutes after the drop
 * (delays plus dial timeouts); past that, rendezvous (every 5 minutes, and soon after the
 * member's own addresses change, e.g. a new relay reservation) and mDNS find the member again.
 */
export const MEMBER_REDIAL = Object.freeze({
  /** Ceiling of the first delay; it doubles with every failed attempt. */
  baseDelayMs: 1_000,
  maxDelayMs: 2 * 60_000,
  /** Attempts per drop (or per start) before the member is left to rendezvous and mDNS. */
  maxAttempts: 8,
  /** Member dials in flight at once. */
  concurrency: 4,
  /** Bound on one dial (every stored address of the member). */
  dialTimeoutMs: 10_000
})

/**
 * Delay before retry number `attempt` (0 = the first dial after a drop): "equal jitter", half
 * of the doubled ceiling fixed and half random, so members that dropped together (a restarted
 * router) do not all redial in the same instant.
 */
export function redialDelay (attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(MEMBER_REDIAL.maxDelayMs, MEMBER_REDIAL.baseDelayMs * 2 ** Math.max(0, Math.min(attempt, 30)))
  return Math.round(ceiling / 2 + random() * ceiling / 2)
}

/** The parts of libp2p the redial uses (the libp2p node satisfies it). */
export type RedialLibp2p = Pick<Libp2p, 'dial' | 'getConnections' | 'peerStore' | 'addEventListener' | 'removeEventListener'>

export interface MemberRedialInit {
  /** The members to dial at start (`dialAll`). */
  members(): PeerId[]
  /** Is `peer` still a member? (asked again before every dial) */
  isMember(peer: PeerId): boolean
}

interface Pending {
  peer: PeerId
  /** Failed dials since the drop (or the start). */
  failures: number
  timer?: ReturnType<typeof setTimeout>
}

/**
 * Redials the members of the device's swarms from the addresses in the peer store (kept in
 * LevelDB across restarts): all of them at start (`dialAll`), and each one whose last
 * connection drops (closes with an error, see `onDisconnect`), with backoff and jitter, at most
 * `MEMBER_REDIAL.concurrency` dials at once. Without it a restarted device waits for a
 * rendezvous (at start, then on address changes and every 5 minutes) or mDNS. Members without stored addresses are left to rendezvous.
 */
export class MemberRedial {
  /** Members waiting for a retry or a dial slot, or being dialled; at most one entry per member. */
  private readonly pending = new Map<string, Pending>()
  /** Keys of `pending` whose delay is over, in order. */
  private readonly due: string[] = []
  private readonly inFlight = new Set<Promise<void>>()
  /** How the last connection of each member closed: with an error (a drop) or cleanly (on purpose). */
  private readonly lastClose = new Map<string, 'drop' | 'clean'>()
  private controller?: AbortController
  /** Disconnects seen: redialled (a drop) or left alone (closed cleanly, by either side). */
  readonly stats = { drops: 0, cleanCloses: 0 }

  constructor (private readonly libp2p: RedialLibp2p, private readonly init: MemberRedialInit) {}

  isStarted (): boolean {
    return this.controller != null
  }

  start (): void {
    if (this.controller != null) return
    this.controller = new AbortController()
    this.libp2p.addEventListener('peer:disconnect', this.onDisconnect)
    this.libp2p.addEventListener('connection:open', this.onConnectionOpen)
    for (const conn of this.libp2p.getConnections()) this.watchClose(conn)
  }

  /**
   * Dials every member not connected (the start of a device). Separate from `start` so the
   * device can call it once everything that reacts to new connections runs (the shares
   * announce themselves on each outbound connection they see open).
   */
  dialAll (): void {
    for (const peer of this.init.members()) this.schedule(peer, 0, 0)
  }

  /** Stops scheduling, aborts the dials in flight and waits for them. */
  async stop (): Promise<void> {
    if (this.controller == null) return
    this.controller.abort()
    this.controller = undefined
    this.libp2p.removeEventListener('peer:disconnect', this.onDisconnect)
    this.libp2p.removeEventListener('connection:open', this.onConnectionOpen)
    for (const entry of this.pending.values()) clearTimeout(entry.timer)
    this.pending.clear()
    this.lastClose.clear()
    this.due.length = 0
    await Promise.allSettled([...this.inFlight])
  }

  /** Members waiting for a redial or being dialled (for tests and status). */
  waiting (): number {
    return this.pending.size
  }

  /**
   * A member's last connection is gone. Redialled only if it dropped (closed with an error:
   * reset, timeout, a dead relay): a clean close is on purpose, by either side (a stop, a
   * removal from the roster, the connection manager pruning), and a device that stopped
   * redials its members itself when it starts again.
   */
  private readonly onDisconnect = (evt: Libp2pEvents['peer:disconnect']): void => {
    const peer = evt.detail
    // libp2p announces the disconnect from inside the connection's close event, before
    // watchClose's listener (added later) has seen it
    queueMicrotask(() => {
      const key = peer.toString()
      const how = this.lastClose.get(key)
      this.lastClose.delete(key)
      if (this.controller == null || !this.init.isMember(peer) || this.libp2p.getConnections(peer).length > 0) return
      if (how === 'clean') {
        this.stats.cleanCloses++
        return
      }
      this.stats.drops++
      this.schedule(peer, 0, redialDelay(0))
    })
  }

  private readonly onConnectionOpen = (evt: Libp2pEvents['connection:open']): void => {
    const conn = evt.detail
    this.watchClose(conn)
    const key = conn.remotePeer.toString()
    // a dial in flight clears its own entry when it ends
    if (this.pending.get(key)?.timer != null) this.forget(key)
  }

  private watchClose (conn: Connection): void {
    if (!this.init.isMember(conn.remotePeer)) return
    conn.addEventListener('close', (evt) => {
      this.lastClose.set(conn.remotePeer.toString(), evt.error == null ? 'clean' : 'drop')
    }, { once: true })
  }

  private schedule (peer: PeerId, failures: number, delayMs: number): void {
    const key = peer.toString()
    if (this.controller == null || (failures === 0 && this.pending.has(key))) return
    const entry: Pending = { peer, failures }
    this.pending.set(key, entry)
    if (delayMs === 0) {
      this.due.push(key)
      this.pump()
      return
    }
    entry.timer = setTimeout(() => {
      entry.timer = undefined
      this.due.push(key)
      this.pump()
    }, delayMs)
    entry.timer.unref?.()
  }

  private forget (key: string): void {
    const entry = this.pending.get(key)
    clearTimeout(entry?.timer)
    this.pending.delete(key)
    const index = this.due.indexOf(key)
    if (index >= 0) this.due.splice(index, 1)
  }

  private pump (): void {
    while (this.controller != null && this.inFlight.size < MEMBER_REDIAL.concurrency && this.due.length > 0) {
      const entry = this.pending.get(this.due.shift() ?? '')
      if (entry == null) continue
      const signal = this.controller.signal
      const dial = this.dial(entry, signal).finally(() => {
        this.inFlight.delete(dial)
        this.pump()
      })
      this.inFlight.add(dial)
    }
  }

  private async dial (entry: Pending, signal: AbortSignal): Promise<void> {
    const key = entry.peer.toString()
    if (!this.init.isMember(entry.peer) || this.libp2p.getConnections(entry.peer).length > 0 || !(await this.hasAddresses(entry.peer))) {
      this.forget(key)
      return
    }
    try {
      await this.libp2p.dial(entry.peer, { signal: AbortSignal.any([signal, AbortSignal.timeout(MEMBER_REDIAL.dialTimeoutMs)]) })
      log('redialled member %p', entry.peer)
      this.forget(key)
    } catch (err) {
      if (signal.aborted) return
      this.pending.delete(key)
      const failures = entry.failures + 1
      if (failures >= MEMBER_REDIAL.maxAttempts) {
        log('gave up redialling member %p after %d attempts - %e', entry.peer, failures, err)
        return
      }
      log('could not redial member %p (attempt %d) - %e', entry.peer, failures, err)
      this.schedule(entry.peer, failures, redialDelay(failures))
    }
  }

  private async hasAddresses (peer: PeerId): Promise<boolean> {
    try {
      return (await this.libp2p.peerStore.get(peer)).addresses.length > 0
    } catch {
      return false
    }
  }
}

/** Bound on the one probe that decides whether an older connection of a member still works. */
export const STALE_PROBE_TIMEOUT_MS = 15_000

/**
 * A protocol nobody handles: asking for it costs the peer one "not supported" and, unlike ping,
 * never competes with the connection monitor for ping's one outbound stream per connection.
 */
export const STALE_PROBE_PROTOCOL = '/homecloud/liveness-probe/0'

export interface StaleMemberConnectionsInit {
  isMember(peer: PeerId): boolean
  /** Default `STALE_PROBE_TIMEOUT_MS`. */
  probeTimeoutMs?: number
}

/**
 * Closes the dead connections of a member that came back on another path.
 *
 * When a member's public IP changes (scenario 3 of the NAT lab), its router forgets the NAT
 * mappings: the member opens new connections from the new address, but this device still holds
 * the ones from the old address. Nothing ever arrives on them and nothing tells this side, and
 * since pings may fail without closing a connection (a late ping on a capped uplink is not a
 * dead connection, libp2p-options.ts) they stay until TCP gives up retransmitting (15+ minutes).
 * So when a member opens a new connection, each older connection to it gets one probe (a stream
 * for `STALE_PROBE_PROTOCOL`), bounded by `STALE_PROBE_TIMEOUT_MS`; one that stays silent that
 * long is aborted. A member on two working paths (LAN and relay, or both ends dialling at
 * once) answers on both and keeps both. Connections of non-members are left to TCP.
 */
export class StaleMemberConnections {
  /** Connections being probed (one probe at a time per connection). */
  private readonly probing = new WeakSet<Connection>()
  private readonly inFlight = new Set<Promise<void>>()
  private controller?: AbortController
  private readonly probeTimeoutMs: number
  /** Connections closed as dead so far. */
  closed = 0

  constructor (private readonly libp2p: Pick<Libp2p, 'getConnections' | 'addEventListener' | 'removeEventListener'>, private readonly init: StaleMemberConnectionsInit) {
    this.probeTimeoutMs = init.probeTimeoutMs ?? STALE_PROBE_TIMEOUT_MS
  }

  start (): void {
    if (this.controller != null) return
    this.controller = new AbortController()
    this.libp2p.addEventListener('connection:open', this.onOpen)
  }

  async stop (): Promise<void> {
    if (this.controller == null) return
    this.controller.abort()
    this.controller = undefined
    this.libp2p.removeEventListener('connection:open', this.onOpen)
    await Promise.allSettled([...this.inFlight])
  }

  private readonly onOpen = (evt: Libp2pEvents['connection:open']): void => {
    const fresh = evt.detail
    const signal = this.controller?.signal
    if (signal == null || !this.init.isMember(fresh.remotePeer)) return
    for (const conn of this.libp2p.getConnections(fresh.remotePeer)) {
      if (conn === fresh || conn.status !== 'open' || this.probing.has(conn)) continue
      this.probing.add(conn)
      const probe = this.probe(conn, signal).finally(() => {
        this.probing.delete(conn)
        this.inFlight.delete(probe)
      })
      this.inFlight.add(probe)
    }
  }

  private async probe (conn: Connection, run: AbortSignal): Promise<void> {
    const signal = AbortSignal.any([run, AbortSignal.timeout(this.probeTimeoutMs)])
    try {
      // answered "not supported" (or, should anyone handle it, accepted): the peer is there
      const stream = await conn.newStream(STALE_PROBE_PROTOCOL, { signal, runOnLimitedConnection: true, negotiateFully: true })
      stream.abort(new Error('liveness probe done'))
    } catch (err) {
      if ((err as Error).name === 'UnsupportedProtocolError') return
      // only silence condemns: a reset or refused stream came from a live peer
      if (run.aborted || conn.status !== 'open' || !signal.aborted) {
        log('stale-check probe of member %p failed, not for silence - %e', conn.remotePeer, err)
        return
      }
      log('closing a dead connection to member %p from %a - %e', conn.remotePeer, conn.remoteAddr, err)
      this.closed++
      conn.abort(new Error('the member is back on another path and this connection no longer answers'))
    }
  }
}
