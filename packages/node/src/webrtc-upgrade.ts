/**
 * Automatic upgrade of relayed member connections to direct WebRTC ones
 * (issue 6, scenario 6). libp2p dials WebRTC only when asked
 * (`…/p2p-circuit/webrtc/p2p/<peer>`), so this service asks:
 *
 * - when a connection to a swarm member is relayed and no direct one exists,
 *   the side with the lower PeerId dials WebRTC through the same relay (the
 *   other side would otherwise dial at the same moment: two attempts, two
 *   connections); the other side answers through libp2p's signalling handler;
 * - failures back off (5 s, 10 s, 20 s, …) and stop after `maxAttempts` until
 *   a later relayed connection; the relayed connection stays and carries
 *   traffic meanwhile (behind a symmetric NAT, for good);
 * - libp2p prefers a direct connection for new streams (`findExistingConnection`
 *   sorts direct ones first), so sync moves over by itself; the relayed one is
 *   kept as a fallback (it ends when the relay goes away).
 *
 * It also learns STUN servers: a directly connected peer that lists
 * `STUN_PROTOCOL` is asked for its port once (`IceServers.learn`).
 */
import { logger } from '@libp2p/logger'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { LOG_SCOPE } from './constants.js'
import { isRelayed } from './reachability.js'
import { queryStunPort, STUN_PROTOCOL } from './stun-service.js'
import { stunUrl, type IceServers, type WebRTCTransportHandle } from './webrtc.js'
import type { Connection, IdentifyResult, Libp2pEvents, PeerId, Startable, TypedEventTarget } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'

const log = logger(`${LOG_SCOPE}:webrtc-upgrade`)

export interface WebRTCUpgradeInit {
  ice: IceServers
  /** The WebRTC transport (its `available` says whether it loaded). */
  transport(): WebRTCTransportHandle | undefined
  /** Only members' connections are upgraded. */
  isMember(peer: PeerId): boolean
  /** Bound on one WebRTC dial (signalling + ICE + upgrade); ~0.5 s is usual (FACTS.md). Default 10 s. */
  dialTimeoutMs?: number
  /** First retry delay, doubled after each failure. Default 5 s. */
  backoffMs?: number
  /** Failed dials per peer before giving up until its next relayed connection. Default 4. */
  maxAttempts?: number
  /** How often relayed connections are looked at again (membership changes, retries). Default 5 s. */
  sweepIntervalMs?: number
}

export interface WebRTCUpgradeComponents {
  peerId: PeerId
  connectionManager: Pick<ConnectionManager, 'getConnections' | 'openConnection'>
  events: TypedEventTarget<Libp2pEvents>
}

export interface WebRTCUpgradeStats {
  /** Dials started, succeeded, failed since start. */
  attempts: number
  upgraded: number
  failed: number
  /** WebRTC dial time of the last success, ms. */
  lastDirectMs?: number
}

/** The service on `libp2p.services` (`SERVICE.webrtcUpgrade`). */
export interface WebRTCUpgrade {
  readonly stats: Readonly<WebRTCUpgradeStats>
  /** `stun:` URLs WebRTC uses now (configured, then learned from members). */
  iceServers(): string[]
}

/** Peers dialled at once. */
const MAX_CONCURRENT_DIALS = 4
/** Peers with retry state kept (only connected ones are). */
const MAX_TRACKED_PEERS = 256
const STUN_QUERY_TIMEOUT_MS = 5_000
/** Retry delay when libp2p answered a WebRTC dial with another dial's (relayed) connection. */
const JOINED_DIAL_RETRY_MS = 1_000

interface PeerState {
  failures: number
  nextAt: number
  dialing: boolean
}

/** `<relay>/p2p-circuit/webrtc/p2p/<peer>` for a relayed connection, when its address names the relay. */
export function webrtcAddressFor (connection: Pick<Connection, 'remoteAddr' | 'remotePeer'>): Multiaddr | undefined {
  const components = connection.remoteAddr.getComponents()
  const circuit = components.findIndex(c => c.name === 'p2p-circuit')
  if (circuit < 1 || components[circuit - 1].name !== 'p2p') {
    return undefined
  }
  return multiaddr(components.slice(0, circuit + 1)).encapsulate(`/webrtc/p2p/${connection.remotePeer.toString()}`)
}

/** Is this the side that dials? (the lower PeerId, so only one side does) */
export function dialsFirst (local: PeerId, remote: PeerId): boolean {
  return local.toString() < remote.toString()
}

function isRelayedConnection (connection: Connection): boolean {
  return connection.status === 'open' && isRelayed(connection.remoteAddr)
}

class DeviceWebRTCUpgrade implements WebRTCUpgrade, Startable {
  readonly stats: WebRTCUpgradeStats = { attempts: 0, upgraded: 0, failed: 0 }
  private readonly peers = new Map<string, PeerState>()
  private readonly stunAsked = new Set<string>()
  private controller?: AbortController
  private timer?: ReturnType<typeof setInterval>
  private dialing = 0
  private readonly dialTimeoutMs: number
  private readonly backoffMs: number
  private readonly maxAttempts: number
  private readonly sweepIntervalMs: number

  constructor (private readonly components: WebRTCUpgradeComponents, private readonly init: WebRTCUpgradeInit) {
    this.dialTimeoutMs = init.dialTimeoutMs ?? 10_000
    this.backoffMs = init.backoffMs ?? 5_000
    this.maxAttempts = init.maxAttempts ?? 4
    this.sweepIntervalMs = init.sweepIntervalMs ?? 5_000
    this.onOpen = this.onOpen.bind(this)
    this.onIdentify = this.onIdentify.bind(this)
    this.onDisconnect = this.onDisconnect.bind(this)
  }

  isStarted (): boolean {
    return this.controller !== undefined
  }

  iceServers (): string[] {
    return this.init.ice.urls()
  }

  start (): void {
    this.controller = new AbortController()
    this.components.events.addEventListener('connection:open', this.onOpen)
    this.components.events.addEventListener('peer:identify', this.onIdentify)
    this.components.events.addEventListener('peer:disconnect', this.onDisconnect)
    this.timer = setInterval(() => { this.sweep() }, this.sweepIntervalMs)
    this.timer.unref()
  }

  stop (): void {
    this.controller?.abort()
    this.controller = undefined
    clearInterval(this.timer)
    this.components.events.removeEventListener('connection:open', this.onOpen)
    this.components.events.removeEventListener('peer:identify', this.onIdentify)
    this.components.events.removeEventListener('peer:disconnect', this.onDisconnect)
    this.peers.clear()
    this.stunAsked.clear()
  }

  private onOpen (evt: CustomEvent<Connection>): void {
    if (isRelayedConnection(evt.detail)) {
      // a new relayed connection: a fresh episode, earlier failures are forgiven (a dial in flight goes on)
      const state = this.peers.get(evt.detail.remotePeer.toString())
      if (state !== undefined && !state.dialing) {
        state.failures = 0
        state.nextAt = 0
      }
      this.consider(evt.detail.remotePeer)
    }
  }

  private onDisconnect (evt: CustomEvent<PeerId>): void {
    this.peers.delete(evt.detail.toString())
    this.stunAsked.delete(evt.detail.toString())
  }

  private onIdentify (evt: CustomEvent<IdentifyResult>): void {
    const { peerId, protocols, connection } = evt.detail
    const key = peerId.toString()
    if (!protocols.includes(STUN_PROTOCOL) || isRelayedConnection(connection) || this.stunAsked.has(key) || this.stunAsked.size >= MAX_TRACKED_PEERS) {
      return
    }
    const [first] = connection.remoteAddr.getComponents()
    const host = first?.value
    if ((first?.name !== 'ip4' && first?.name !== 'ip6') || host === undefined) return
    this.stunAsked.add(key)
    const signal = AbortSignal.any([AbortSignal.timeout(STUN_QUERY_TIMEOUT_MS), this.controller?.signal ?? AbortSignal.abort()])
    queryStunPort(connection, { signal }).then(port => {
      if (port === undefined) return
      this.init.ice.learn(peerId, stunUrl(host, port))
      log('learned STUN server %s from %p', stunUrl(host, port), peerId)
      // relayed members waiting for a STUN server can go now
      this.sweep()
    }, (err: unknown) => {
      log('could not ask %p for its STUN port - %e', peerId, err)
    })
  }

  /** Looks at every relayed connection again (retries due, members that just joined, STUN just learned). */
  private sweep (): void {
    const seen = new Set<string>()
    for (const connection of this.components.connectionManager.getConnections()) {
      const key = connection.remotePeer.toString()
      if (!seen.has(key) && isRelayedConnection(connection)) {
        seen.add(key)
        this.consider(connection.remotePeer)
      }
    }
  }

  private consider (peer: PeerId): void {
    const signal = this.controller?.signal
    if (signal === undefined || this.init.transport()?.available !== true || !dialsFirst(this.components.peerId, peer)) {
      return
    }
    const connections = this.components.connectionManager.getConnections(peer)
    const relayed = connections.find(isRelayedConnection)
    if (relayed === undefined || connections.some(c => c.status === 'open' && c.direct)) {
      return
    }
    // with no STUN server only host candidates exist, which reach a peer on the same network, where
    // it is reached directly anyway; wait until one is configured or learned
    if (!this.init.isMember(peer) || this.init.ice.urls().length === 0) {
      return
    }
    const key = peer.toString()
    let state = this.peers.get(key)
    const now = Date.now()
    if (state?.dialing === true || (state !== undefined && now < state.nextAt) || this.dialing >= MAX_CONCURRENT_DIALS) {
      return
    }
    if (state === undefined) {
      if (this.peers.size >= MAX_TRACKED_PEERS) return
      state = { failures: 0, nextAt: 0, dialing: false }
      this.peers.set(key, state)
    }
    const target = webrtcAddressFor(relayed)
    if (target === undefined) {
      return
    }
    void this.dial(peer, target, state, signal)
  }

  private async dial (peer: PeerId, target: Multiaddr, state: PeerState, signal: AbortSignal): Promise<void> {
    state.dialing = true
    this.dialing++
    this.stats.attempts++
    const started = performance.now()
    try {
      const connection = await this.components.connectionManager.openConnection(target, {
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.dialTimeoutMs)])
      })
      if (!connection.direct) {
        // libp2p joined a dial to the peer already under way (a relayed one) and returned its
        // result: not a failure of WebRTC, try again shortly
        state.nextAt = Date.now() + JOINED_DIAL_RETRY_MS / 2
        setTimeout(() => { this.consider(peer) }, JOINED_DIAL_RETRY_MS).unref()
        log('a dial to %p was under way, WebRTC again in %d ms', peer, JOINED_DIAL_RETRY_MS)
        return
      }
      this.stats.upgraded++
      this.stats.lastDirectMs = performance.now() - started
      state.failures = 0
      log('direct WebRTC connection to %p in %d ms', peer, Math.round(this.stats.lastDirectMs))
    } catch (err) {
      this.stats.failed++
      state.failures++
      // after the last attempt, wait for the next relayed connection (or the long pause) before trying again
      const delay = state.failures >= this.maxAttempts ? this.backoffMs * 2 ** 7 : this.backoffMs * 2 ** (state.failures - 1)
      state.nextAt = Date.now() + delay
      log('WebRTC dial to %p failed (%d of %d), next in %d s - %e', peer, state.failures, this.maxAttempts, Math.round(delay / 1000), err)
    } finally {
      state.dialing = false
      this.dialing--
    }
  }
}

export function webrtcUpgrade (init: WebRTCUpgradeInit): (components: WebRTCUpgradeComponents) => WebRTCUpgrade {
  return (components) => new DeviceWebRTCUpgrade(components, init)
}
