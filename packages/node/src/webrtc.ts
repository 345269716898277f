/**
 * WebRTC private-to-private (issue 6, scenario 6): the transport that turns a
 * relayed connection between two homes into a direct one (ICE hole punching,
 * signalled over the relay), and the ICE servers it may use.
 *
 * - The transport is loaded at start (or, on demand, at its first use), not at
 *   import: its native module (`node-datachannel`) has prebuilds for linux
 *   x64/arm64 (and a few others) only. Where it cannot load, the device logs it
 *   and runs without WebRTC.
 * - ICE servers are never libp2p's public defaults: only the STUN servers of
 *   the config (`stunServers`) and those learned from swarm members that run
 *   one (`STUN_PROTOCOL`, see `webrtc-upgrade.ts`).
 */
import { isIPv4, isIPv6 } from 'node:net'
import { serviceCapabilities, serviceDependencies, transportSymbol } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { WebRTC } from '@multiformats/multiaddr-matcher'
import { DialFailedError, InvalidParametersError } from './errors.js'
import { LOG_SCOPE } from './constants.js'
import { DEFAULT_STUN_PORT } from './stun-server.js'
import type { CreateListenerOptions, DialTransportOptions, Connection, Listener, MultiaddrConnection, PeerId, Startable, Stream, Transport, Upgrader } from '@libp2p/interface'
import type { Registrar } from '@libp2p/interface-internal'
import type { Multiaddr } from '@multiformats/multiaddr'

const log = logger(`${LOG_SCOPE}:webrtc`)

/** Most STUN servers in `config.stunServers`. */
export const MAX_STUN_SERVERS = 8

/**
 * Bytes a data channel buffers before a sender waits: small, so that a ping
 * does not queue behind megabytes on a capped uplink (FACTS.md; libp2p's
 * default is 16 MiB).
 */
export const WEBRTC_MAX_BUFFERED_AMOUNT = 65_536

/**
 * Parses STUN servers given as `HOST:PORT`, `HOST` (port 3478), or with a
 * `stun:` scheme; IPv6 hosts in brackets. Returns `stun:` URLs.
 *
 * @throws {InvalidParametersError} naming `what`
 */
export function parseStunServers (values: unknown, what = 'config.stunServers'): string[] {
  if (!Array.isArray(values)) {
    throw new InvalidParametersError(`${what} must be an array of HOST:PORT strings`)
  }
  if (values.length > MAX_STUN_SERVERS) {
    throw new InvalidParametersError(`${what} has ${values.length} entries, at most ${MAX_STUN_SERVERS} are allowed`)
  }
  return values.map(value => {
    if (typeof value !== 'string') {
      throw new InvalidParametersError(`${what}: expected HOST:PORT, got ${typeof value}`)
    }
    const m = /^(?:stun:)?(?:\[([0-9a-fA-F:.]+)\]|([^:[\]/\s]+))(?::(\d{1,5}))?$/.exec(value)
    const host = m?.[1] ?? m?.[2]
    const port = m?.[3] === undefined ? DEFAULT_STUN_PORT : Number(m[3])
    if (m === null || host === undefined || port < 1 || port > 65535 ||
      (m[1] !== undefined && !isIPv6(host)) || (m[2] !== undefined && !isIPv4(host) && !/^[a-zA-Z0-9.-]{1,253}$/.test(host))) {
      throw new InvalidParametersError(`${what}: "${value}" is not HOST:PORT (a STUN server)`)
    }
    return stunUrl(host, port)
  })
}

/** `stun:HOST:PORT`, with brackets around an IPv6 host. */
export function stunUrl (host: string, port: number): string {
  return isIPv6(host) ? `stun:[${host}]:${port}` : `stun:${host}:${port}`
}

/** Most STUN servers learned from members that are kept. */
export const MAX_LEARNED_STUN_SERVERS = 8

/**
 * The ICE servers of the device: the configured ones, then those learned from
 * swarm members (at most `MAX_LEARNED_STUN_SERVERS`, the oldest forgotten).
 * Membership is checked when the list is read: a device may learn a peer's
 * server before it joins the peer's swarm.
 */
export class IceServers {
  private readonly learned = new Map<string, { peer: PeerId, url: string }>()

  constructor (private readonly configured: readonly string[], private readonly isMember: (peer: PeerId) => boolean) {}

  learn (peer: PeerId, url: string): void {
    const key = peer.toString()
    this.learned.delete(key)
    if (this.learned.size >= MAX_LEARNED_STUN_SERVERS) {
      this.learned.delete(this.learned.keys().next().value as string)
    }
    this.learned.set(key, { peer, url })
  }

  /** `stun:` URLs to use now, without duplicates. */
  urls (): string[] {
    const learned = [...this.learned.values()].filter(l => this.isMember(l.peer)).map(l => l.url)
    return [...new Set([...this.configured, ...learned])]
  }

  /** The `RTCConfiguration` of a new peer connection; an empty list (not undefined) keeps libp2p's public defaults off. */
  rtcConfiguration (): { iceServers: Array<{ urls: string[] }> } {
    return { iceServers: this.urls().map(url => ({ urls: [url] })) }
  }
}

/**
 * How long an answered WebRTC connection may take to report "connected" once signalling is over.
 * The dialler ends signalling only after its first data channel opened, so a live connection is
 * connected by then or within a round trip.
 */
export const WEBRTC_ANSWER_CONNECT_MS = 5_000

/** The part of an `RTCPeerConnection` the answering check reads. */
export interface PeerConnectionState {
  readonly connectionState: string
  addEventListener(type: 'connectionstatechange', listener: () => void): void
  removeEventListener(type: 'connectionstatechange', listener: () => void): void
}

/**
 * Resolves once `pc` is connected; rejects when it fails or closes, after `timeoutMs`, or on abort.
 *
 * Why: `@libp2p/webrtc` (6.0.x) answers a WebRTC dial and hands the connection to the upgrader
 * even when the dialler gave up and reset the signalling stream before ICE connected (its
 * `readCandidatesUntilConnected` ignores a reset). The result is a "direct" libp2p connection whose
 * data channels never open, and libp2p prefers direct connections for new streams: behind a
 * symmetric NAT a fetch then stalled on it while the relayed connection worked.
 */
export async function untilConnected (pc: PeerConnectionState, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  if (pc.connectionState === 'connected') return
  const { promise, resolve, reject } = Promise.withResolvers<void>()
  const check = (): void => {
    const state = pc.connectionState
    if (state === 'connected') resolve()
    else if (state === 'failed' || state === 'closed') reject(new DialFailedError(`the peer connection is ${state}`))
  }
  const timer = setTimeout(() => { reject(new DialFailedError(`the peer connection is still ${pc.connectionState} after ${timeoutMs} ms`)) }, timeoutMs)
  const onAbort = (): void => { reject(new DialFailedError('the upgrade was aborted before the peer connection connected', { cause: signal?.reason })) }
  pc.addEventListener('connectionstatechange', check)
  signal?.addEventListener('abort', onAbort)
  try {
    if (signal?.aborted === true) onAbort()
    check()
    await promise
  } finally {
    clearTimeout(timer)
    pc.removeEventListener('connectionstatechange', check)
    signal?.removeEventListener('abort', onAbort)
  }
}

/**
 * The upgrader `@libp2p/webrtc` answers with: an inbound WebRTC connection is upgraded only once its
 * peer connection is connected (see `untilConnected`); anything else goes through unchanged.
 */
export function answeringUpgrader (upgrader: Upgrader, timeoutMs = WEBRTC_ANSWER_CONNECT_MS): Upgrader {
  const upgradeInbound: Upgrader['upgradeInbound'] = async (maConn, options) => {
    const pc = (maConn as MultiaddrConnection & { peerConnection?: PeerConnectionState }).peerConnection
    if (pc !== undefined) {
      try {
        await untilConnected(pc, timeoutMs, options.signal)
      } catch (err) {
        log('refusing an answered WebRTC connection from %a - %e', maConn.remoteAddr, err)
        throw err
      }
    }
    await upgrader.upgradeInbound(maConn, options)
  }
  return new Proxy(upgrader, {
    get: (target, prop) => {
      if (prop === 'upgradeInbound') return upgradeInbound
      const value: unknown = Reflect.get(target, prop, target)
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
}

/** Components with `answeringUpgrader` in place of the upgrader. */
function withAnsweringUpgrader (components: unknown): unknown {
  const upgrader = answeringUpgrader((components as { upgrader: Upgrader }).upgrader)
  return new Proxy(components as object, {
    get: (target, prop) => prop === 'upgrader' ? upgrader : Reflect.get(target, prop, target)
  })
}

/** What the transport needs from `@libp2p/webrtc` and its native module `node-datachannel`. */
export interface WebRTCModule extends Pick<typeof import('@libp2p/webrtc'), 'webRTC'> {
  /** Closes every native peer connection and data channel of the process and releases their callbacks. */
  cleanup?(): void
}

export interface LazyWebRTCInit {
  ice: IceServers
  /** Loads the transport module; `@libp2p/webrtc` and `node-datachannel` by default (tests inject a failing one). */
  load?(): Promise<WebRTCModule>
  /**
   * Load the module at its first use (a dial, or a peer's signalling stream) instead of at
   * start: a device that never hole-punches never holds it (~8 MiB of an idle daemon's RSS,
   * issue 5 f). `available` is then true until a load has failed. Not for a device with a
   * `/webrtc` listen address (listening needs the module at start).
   */
  onDemand?: boolean
}

/** @libp2p/webrtc's signalling protocol (its constants module is internal). */
const SIGNALING_PROTOCOL = '/webrtc-signaling/0.0.1'

async function loadWebRTC (): Promise<WebRTCModule> {
  const [{ webRTC }, { cleanup }] = await Promise.all([import('@libp2p/webrtc'), import('node-datachannel')])
  return { webRTC, cleanup }
}

/**
 * WebRTC transports started in this process. node-datachannel's callbacks into JavaScript are
 * process-wide and each keeps the event loop alive until its object reports closed; a data channel
 * the remote opens while the connection closes never does (seen under load: the process never
 * exits after libp2p stopped). `cleanup()` releases them all, but it closes every native object of
 * the process, so only the last transport to stop calls it: other devices may still use WebRTC.
 */
let startedTransports = 0

/** The WebRTC transport as libp2p sees it, with whether it could be loaded. */
export interface WebRTCTransportHandle extends Transport {
  /** True while the transport is loaded and started; false where `node-datachannel` cannot load, and after stop. */
  readonly available: boolean
}

type InnerTransport = Transport & Partial<Startable>

/**
 * A libp2p transport that loads `@libp2p/webrtc` when libp2p starts and
 * delegates to it; where it cannot load, it dials and listens on nothing.
 */
class LazyWebRTC implements WebRTCTransportHandle, Startable {
  readonly [transportSymbol] = true
  readonly [Symbol.toStringTag] = '@homecloud/webrtc'
  readonly [serviceCapabilities] = ['@libp2p/transport']
  // what @libp2p/webrtc itself needs
  readonly [serviceDependencies] = ['@libp2p/identify', '@libp2p/circuit-relay-v2-transport']
  private module?: WebRTCModule
  private inner?: InnerTransport
  private started = false
  /** The last load (or start of the inner transport) failed: unavailable until the next start. */
  private loadFailed = false
  /** The load under way (on demand, several first uses share it). */
  private loading?: Promise<InnerTransport | undefined>
  /** Counted in `startedTransports` (until `afterStop`). */
  private counted = false

  constructor (private readonly components: unknown, private readonly init: LazyWebRTCInit) {}

  get available (): boolean {
    return this.inner !== undefined || (this.init.onDemand === true && this.started && !this.loadFailed)
  }

  isStarted (): boolean {
    return this.started
  }

  async start (): Promise<void> {
    this.started = true
    this.loadFailed = false
    if (this.init.onDemand === true) {
      // a member's first signalling stream loads the transport, whose own handler then replaces this one
      await this.registrar().handle(SIGNALING_PROTOCOL, (stream, connection) => {
        this.loadThenAnswer(stream, connection).catch((err: unknown) => { log.error('could not answer a WebRTC dial - %e', err) })
      }, { runOnLimitedConnection: true })
      return
    }
    await this.innerTransport()
  }

  private registrar (): Registrar {
    return (this.components as { registrar: Registrar }).registrar
  }

  /** The started inner transport, loading it first if needed; undefined where it cannot load. */
  private async innerTransport (): Promise<InnerTransport | undefined> {
    if (this.inner !== undefined || this.loadFailed || !this.started) {
      return this.inner
    }
    this.loading ??= this.startInner().finally(() => { this.loading = undefined })
    return this.loading
  }

  private async startInner (): Promise<InnerTransport | undefined> {
    let inner: InnerTransport
    try {
      this.module ??= await (this.init.load ?? loadWebRTC)()
      if (!this.started) {
        return undefined
      }
      // a fresh transport on every start: stop ends the old one for good (see stop)
      inner = this.module.webRTC({
        rtcConfiguration: () => this.init.ice.rtcConfiguration(),
        dataChannel: { maxBufferedAmount: WEBRTC_MAX_BUFFERED_AMOUNT }
      })(withAnsweringUpgrader(this.components) as Parameters<ReturnType<WebRTCModule['webRTC']>>[0])
      this.count()
      if (this.init.onDemand === true) {
        await this.registrar().unhandle(SIGNALING_PROTOCOL)
      }
      await inner.start?.()
    } catch (err) {
      log.error('WebRTC is unavailable on this machine (node-datachannel did not load), running without it - %e', err)
      this.loadFailed = true
      this.release()
      return undefined
    }
    if (!this.started) {
      // stopped while the inner transport started (on demand): undo it, stop found nothing to stop
      await inner.stop?.()
      this.release()
      return undefined
    }
    this.inner = inner
    log('WebRTC transport started')
    return inner
  }

  /** On demand: the first signalling stream waits for the transport, then goes to its handler. */
  private async loadThenAnswer (stream: Stream, connection: Connection): Promise<void> {
    const inner = await this.innerTransport()
    if (inner === undefined) {
      stream.abort(new InvalidParametersError('WebRTC is unavailable on this device'))
      return
    }
    await this.registrar().getHandler(SIGNALING_PROTOCOL).handler(stream, connection)
  }

  async stop (): Promise<void> {
    this.started = false
    const inner = this.inner
    this.inner = undefined
    if (inner === undefined) {
      if (this.init.onDemand === true) {
        // the placeholder handler (or nothing, where a load failed after removing it)
        await this.registrar().unhandle(SIGNALING_PROTOCOL).catch(() => {})
      }
      return
    }
    // @libp2p/webrtc aborts the signalling it answers and closes its connections only when a
    // listener closes, and this device has no `/webrtc` listener: close one so stop ends them
    await inner.createListener({ upgrader: (this.components as { upgrader: Upgrader }).upgrader }).close()
    await inner.stop?.()
  }

  /** After libp2p closed its connections: the native side of the last WebRTC user goes. */
  afterStop (): void {
    this.release()
  }

  private count (): void {
    if (!this.counted) {
      this.counted = true
      startedTransports++
    }
  }

  private release (): void {
    if (!this.counted) {
      return
    }
    this.counted = false
    startedTransports--
    if (startedTransports === 0) {
      try {
        this.module?.cleanup?.()
        log('node-datachannel cleaned up')
      } catch (err) {
        log.error('node-datachannel cleanup failed - %e', err)
      }
    }
  }

  async dial (ma: Multiaddr, options: DialTransportOptions): Promise<Connection> {
    const inner = this.inner ?? (this.init.onDemand === true ? await this.innerTransport() : undefined)
    if (inner === undefined) {
      throw new InvalidParametersError('WebRTC is unavailable on this device')
    }
    return inner.dial(ma, options)
  }

  createListener (options: CreateListenerOptions): Listener {
    if (this.inner === undefined) {
      throw new InvalidParametersError('WebRTC is unavailable on this device')
    }
    return this.inner.createListener(options)
  }

  listenFilter (multiaddrs: Multiaddr[]): Multiaddr[] {
    return this.inner?.listenFilter(multiaddrs) ?? []
  }

  dialFilter (multiaddrs: Multiaddr[]): Multiaddr[] {
    if (this.inner !== undefined) {
      return this.inner.dialFilter(multiaddrs)
    }
    // on demand, before the first use: what @libp2p/webrtc dials
    return this.available ? multiaddrs.filter(ma => WebRTC.exactMatch(ma)) : []
  }
}

/** The transport factory for `Libp2pOptions.transports`; `onCreate` receives the handle (for `available`). */
export function lazyWebRTC (init: LazyWebRTCInit, onCreate?: (handle: WebRTCTransportHandle) => void): (components: unknown) => Transport {
  return (components) => {
    const transport = new LazyWebRTC(components, init)
    onCreate?.(transport)
    return transport
  }
}
