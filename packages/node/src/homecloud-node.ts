import { AbortError, InvalidParametersError } from './errors.js'
import { logger } from '@libp2p/logger'
import { peerIdFromString } from '@libp2p/peer-id'
import { PING_PROTOCOL } from '@libp2p/ping'
import { byteStream } from '@libp2p/utils'
import { LevelDatastore } from 'datastore-level'
import { createLibp2p } from 'libp2p'
import { equals as uint8ArrayEquals } from 'uint8arrays/equals'
import { parseMultiaddr, resolveConfig, type ResolvedConfig } from './config.js'
import { BOOTSTRAP_DIAL_TIMEOUT_MS, LATENCY_PING_CONCURRENCY, LATENCY_PING_TIMEOUT_MS, LOG_SCOPE } from './constants.js'
import { DialFailedError, NodeNotStartedError, toListenError } from './errors.js'
import { deviceLibp2pOptions, SERVICE } from './libp2p-options.js'
import { PeerRecordGuard, type PeerRecordVerdict } from './peer-record-guard.js'
import { isRelayed, type NodeAddresses } from './reachability.js'
import { DeviceSwarms } from './swarm-wiring.js'
import { DeviceContent, resolveContentConfig } from './content.js'
import { PublicContent } from './public-content.js'
import { DeviceShares, deviceServePolicy, resolveShareConfig } from './share-wiring.js'
import type { ShareService, ShareServiceInit } from '@homecloud/sync'
import type { AddContentResult, BlocksApi, ContentOptions, GetContentOptions, GetContentResult } from './content-types.js'
import type { ChunkStore } from '@homecloud/store'
import type { DeviceLimits } from './limits.js'
import type { HomecloudNode, HomecloudNodeConfig } from './types.js'
import type { RosterGate, SwarmService } from '@homecloud/swarm'
import type { AbortOptions, DeviceIdentity, DeviceStatus, PeerConnectionInfo, Reachability } from '@homecloud/interface'
import type { KadDHT } from '@libp2p/kad-dht'
import type { Connection, Libp2p, PeerId, PeerInfo, StreamHandler, StreamHandlerOptions } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

const log = logger(LOG_SCOPE)

/**
 * Builds the one libp2p node of a device from `config` and, unless
 * `config.start` is false, starts it.
 *
 * @throws {InvalidParametersError} when the config is malformed (nothing is created then)
 */
export async function createHomecloudNode (config: HomecloudNodeConfig): Promise<HomecloudNode> {
  const resolved = resolveConfig(config)
  const contentInit = resolveContentConfig(config)
  const sharesInit = resolveShareConfig(config)
  let device: Device | undefined
  // public content to anyone, share content to the share's roster (the shares exist once the device does)
  const publicContent = new PublicContent({ store: () => storeIfOpen(device?.content) })
  const content = new DeviceContent({ ...contentInit, servePolicy: deviceServePolicy(contentInit.servePolicy, publicContent, () => device?.shares) })
  const guard = new PeerRecordGuard({
    maxRecordBytes: resolved.limits.maxIdentifyMessageBytes,
    maxAddressesPerPeer: resolved.limits.maxAddressesPerPeer
  })
  const datastore = resolved.datastorePath == null ? undefined : new LevelDatastore(resolved.datastorePath)
  await datastore?.open()

  try {
    const libp2p = await createLibp2p(await deviceLibp2pOptions({
      config: resolved,
      guard,
      datastore,
      onLanPeer: (peer) => { device?.dialLanPeer(peer) },
      isMember: (peer) => device?.swarmWiring.isMember(peer) ?? false,
      chunks: content.exchangeService()
    }))
    device = new Device(libp2p, resolved, guard, datastore, content, { publicContent, shares: sharesInit })
  } catch (err) {
    await datastore?.close()
    throw err
  }

  if (resolved.start) {
    try {
      await device.start()
    } catch (err) {
      await device.stop().catch(() => {})
      throw err
    }
  }

  return device
}

class Device implements HomecloudNode {
  readonly libp2p: Libp2p
  readonly name: string
  readonly limits: Readonly<DeviceLimits>
  readonly peerRecordGuard: PeerRecordGuard
  private readonly config: ResolvedConfig
  private readonly datastore?: LevelDatastore
  private datastoreOpen: boolean
  private startedAt?: number
  /** Aborts the background dials of the current run (bootstrap, LAN peers) on stop. */
  private run?: AbortController
  /** Serialises start/stop so a stop never closes the datastore under a start. */
  private lifecycle: Promise<void> = Promise.resolve()
  /** Latency measured by `peers()` itself, for connections libp2p has not pinged yet. */
  private readonly measuredRtt = new WeakMap<Connection, number>()
  /** Private swarms: started after libp2p, stopped before it. */
  readonly swarmWiring: DeviceSwarms

  /** The chunk store and exchange, and add/get/blocks (issue 3). */
  readonly content: DeviceContent
  /** Shares: started after the swarms and the exchange, stopped before them (issue 5). */
  readonly shareWiring: DeviceShares
  private readonly publicContent: PublicContent

  constructor (libp2p: Libp2p, config: ResolvedConfig, guard: PeerRecordGuard, datastore: LevelDatastore | undefined, content: DeviceContent,
    sharing: { publicContent: PublicContent, shares: ShareServiceInit }) {
    this.content = content
    content.bind(libp2p)
    this.libp2p = libp2p
    this.config = config
    this.name = config.name
    this.limits = Object.freeze({ ...config.limits })
    this.peerRecordGuard = guard
    this.datastore = datastore
    this.datastoreOpen = datastore != null
    this.swarmWiring = new DeviceSwarms(libp2p, {
      privateKey: config.privateKey,
      deviceName: config.name,
      datastorePath: config.swarmDatastorePath,
      ...config.swarm
    })
    this.publicContent = sharing.publicContent
    this.shareWiring = new DeviceShares(libp2p, this.swarmWiring.service, content, { privateKey: config.privateKey, ...sharing.shares })
  }

  get shares (): ShareService {
    return this.shareWiring.service
  }

  get swarms (): SwarmService {
    return this.swarmWiring.service
  }

  get gate (): RosterGate {
    return this.swarmWiring.service.gate
  }

  get peerId (): PeerId {
    return this.libp2p.peerId
  }

  get store (): ChunkStore {
    return this.content.store
  }

  get blocks (): BlocksApi {
    return this.content.blocks
  }

  async add (path: string, options?: ContentOptions): Promise<AddContentResult> {
    try {
      return await this.content.add(path, options)
    } finally {
      // a new pin: its chunks are public now
      this.publicContent.invalidate()
    }
  }

  async get (cid: string, output: string, options?: GetContentOptions): Promise<GetContentResult> {
    try {
      return await this.content.get(cid, output, options)
    } finally {
      this.publicContent.invalidate()
    }
  }

  async start (): Promise<void> {
    await this.serialise(async () => {
      if (this.datastore != null && !this.datastoreOpen) {
        await this.datastore.open()
        this.datastoreOpen = true
      }

      await this.content.open()
      // before libp2p starts: mDNS answers to its first query arrive during start, and dialLanPeer needs a run
      this.run ??= new AbortController()

      try {
        await this.libp2p.start()
      } catch (err) {
        const name = (err as Error).name
        throw name === 'UnsupportedListenAddressesError' || name === 'NoValidAddressesError' ? toListenError(err as Error, this.config.listen) : err
      }

      await this.swarmWiring.start()
      await this.shareWiring.start()
      // last: the shares must see these connections open to announce themselves on them
      this.swarmWiring.dialMembers()

      if (this.startedAt == null) {
        this.startedAt = Date.now()
        this.dialBootstrap(this.run.signal)
        log('device %s (%p) started, listening on %s', this.name, this.peerId, this.libp2p.getMultiaddrs().map(String).join(' '))
      }
    })
  }

  async stop (): Promise<void> {
    await this.serialise(async () => {
      this.run?.abort()
      this.run = undefined
      await this.shareWiring.stop()
      await this.swarmWiring.stop()
      await this.libp2p.stop()
      await this.content.close()

      if (this.datastore != null && this.datastoreOpen) {
        await this.datastore.close()
        this.datastoreOpen = false
      }

      this.startedAt = undefined
      log('device %s stopped', this.name)
    })
  }

  async releaseCaches (): Promise<void> {
    await this.content.releaseCaches()
    await this.shares.releaseCaches()
  }

  identity (): DeviceIdentity {
    return {
      peerId: this.peerId.toString(),
      name: this.name,
      addresses: this.libp2p.getMultiaddrs().map(String),
      reachability: this.reachability()
    }
  }

  status (): DeviceStatus {
    const dht = this.libp2p.services[SERVICE.dht] as KadDHT | undefined

    return {
      peerId: this.peerId.toString(),
      name: this.name,
      uptimeMs: this.startedAt == null ? 0 : Date.now() - this.startedAt,
      connections: this.libp2p.getConnections().length,
      peers: this.libp2p.getPeers().length,
      reachability: this.reachability(),
      dhtMode: dht == null ? 'off' : dht.getMode(),
      relayReservations: this.libp2p.getMultiaddrs().filter(isRelayed).map(String),
      rejectedPeerRecords: this.peerRecordGuard.rejections()
    }
  }

  async peers (options: AbortOptions = {}): Promise<PeerConnectionInfo[]> {
    const connections = this.libp2p.getConnections()
    const rows: PeerConnectionInfo[] = []

    // bounded parallelism: a device may hold hundreds of connections
    for (let i = 0; i < connections.length; i += LATENCY_PING_CONCURRENCY) {
      const batch = connections.slice(i, i + LATENCY_PING_CONCURRENCY)
      rows.push(...await Promise.all(batch.map(async conn => this.describe(conn, options))))
    }

    return rows
  }

  async connect (address: string, options: AbortOptions = {}): Promise<PeerConnectionInfo> {
    const ma = parseMultiaddr(address, 'connect')
    const target = ma.getComponents().findLast(c => c.name === 'p2p')?.value

    // without a PeerId Noise would accept whoever answers at that address
    if (target == null) {
      throw new InvalidParametersError(`connect: "${address}" must end with /p2p/<peer id>`)
    }

    let peerId: PeerId

    try {
      peerId = peerIdFromString(target)
    } catch (err) {
      throw new InvalidParametersError(`connect: "${target}" is not a peer id`, { cause: err })
    }

    if (peerId.equals(this.peerId)) {
      throw new InvalidParametersError('connect: that is this device\'s own address')
    }

    if (this.startedAt == null) {
      throw new NodeNotStartedError()
    }

    let connection: Connection

    try {
      connection = await this.libp2p.dial(ma, options)
    } catch (err) {
      if (options.signal?.aborted === true) {
        throw new AbortError(undefined, { cause: err })
      }

      throw new DialFailedError(`could not connect to ${address}: ${(err as Error).message}`, { cause: err })
    }

    return this.describe(connection, options)
  }

  async handle (protocol: string, handler: StreamHandler, options: StreamHandlerOptions = {}): Promise<void> {
    const max = this.limits.maxStreamsPerProtocol

    for (const key of ['maxInboundStreams', 'maxOutboundStreams'] as const) {
      const value = options[key]

      if (value != null && (!Number.isSafeInteger(value) || value <= 0 || value > max)) {
        throw new InvalidParametersError(`${key} for ${protocol} must be an integer in 1..${max}, got ${value}`)
      }
    }

    await this.libp2p.handle(protocol, handler, {
      ...options,
      maxInboundStreams: options.maxInboundStreams ?? max,
      maxOutboundStreams: options.maxOutboundStreams ?? max
    })
  }

  async unhandle (protocol: string, options?: AbortOptions): Promise<void> {
    await this.libp2p.unhandle(protocol, options)
  }

  async consumePeerRecord (envelope: Uint8Array, expectedPeer: PeerId, options?: AbortOptions): Promise<PeerRecordVerdict> {
    return this.peerRecordGuard.consume(this.libp2p.peerStore, envelope, expectedPeer, options)
  }

  /** Dial a device that mDNS found on the LAN, unless already connected or near the connection limit. */
  dialLanPeer (peer: PeerInfo): void {
    const signal = this.run?.signal

    if (signal == null || peer.multiaddrs.length === 0 ||
        this.libp2p.getConnections(peer.id).length > 0 ||
        this.libp2p.getConnections().length >= this.limits.maxConnections / 2) {
      return
    }

    this.libp2p.dial(peer.multiaddrs.map(ma => withPeer(ma, peer.id)), {
      signal: AbortSignal.any([signal, AbortSignal.timeout(BOOTSTRAP_DIAL_TIMEOUT_MS)])
    }).catch(err => { log('could not dial LAN peer %p - %e', peer.id, err) })
  }

  private dialBootstrap (signal: AbortSignal): void {
    for (const ma of this.config.bootstrap) {
      this.libp2p.dial(ma, { signal: AbortSignal.any([signal, AbortSignal.timeout(BOOTSTRAP_DIAL_TIMEOUT_MS)]) })
        .then(() => { log('connected to bootstrap peer %a', ma) })
        .catch(err => { log.error('could not dial bootstrap peer %a - %e', ma, err) })
    }
  }

  private reachability (): Reachability {
    if (this.startedAt == null) {
      return 'unknown'
    }

    return (this.libp2p.services[SERVICE.addresses] as NodeAddresses).reachability()
  }

  private async describe (conn: Connection, options: AbortOptions): Promise<PeerConnectionInfo> {
    const row: PeerConnectionInfo = {
      peerId: conn.remotePeer.toString(),
      address: withPeer(conn.remoteAddr, conn.remotePeer).toString(),
      path: isRelayed(conn.remoteAddr) ? 'relayed' : 'direct',
      direction: conn.direction
    }
    const latency = conn.rtt ?? this.measuredRtt.get(conn) ?? await this.measureRtt(conn, options)

    if (latency != null) {
      row.latencyMs = latency
    }

    return row
  }

  /**
   * One ping on this very connection (a relayed and a direct connection to the
   * same peer differ), bounded by `LATENCY_PING_TIMEOUT_MS`; undefined when it
   * fails, e.g. because libp2p's connection monitor holds the one ping stream.
   */
  private async measureRtt (conn: Connection, options: AbortOptions): Promise<number | undefined> {
    if (conn.status !== 'open') {
      return undefined
    }

    const signal = AbortSignal.any([AbortSignal.timeout(LATENCY_PING_TIMEOUT_MS), ...(options.signal == null ? [] : [options.signal])])
    const data = crypto.getRandomValues(new Uint8Array(32))

    try {
      const stream = await conn.newStream(PING_PROTOCOL, { signal, runOnLimitedConnection: true })

      try {
        const bytes = byteStream(stream)
        const start = performance.now()
        await bytes.write(data, { signal })
        const echo = await bytes.read({ bytes: data.byteLength, signal })
        const rtt = Math.max(1, Math.round(performance.now() - start))

        if (!uint8ArrayEquals(echo.subarray(), data)) {
          return undefined
        }

        this.measuredRtt.set(conn, rtt)
        return rtt
      } finally {
        // close can reject with a non-Error; the result is known already
        await Promise.resolve(stream.close({ signal })).catch(() => { stream.abort(new Error('ping stream close failed')) })
      }
    } catch (err) {
      if (options.signal?.aborted === true) {
        throw new AbortError(undefined, { cause: err })
      }

      log('could not measure latency to %p - %e', conn.remotePeer, err)
      return undefined
    }
  }

  private async serialise (fn: () => Promise<void>): Promise<void> {
    const next = this.lifecycle.catch(() => {}).then(fn)
    this.lifecycle = next
    await next
  }
}

/** The chunk store while it is open (the serve policy answers "not public" while it is closed). */
function storeIfOpen (content: DeviceContent | undefined): ChunkStore | undefined {
  try {
    return content?.store
  } catch {
    return undefined
  }
}

/** `ma` ending with `/p2p/<peer>` (inbound remote addresses lack it). */
function withPeer (ma: Multiaddr, peer: PeerId): Multiaddr {
  return ma.getComponents().at(-1)?.name === 'p2p' ? ma : ma.encapsulate(`/p2p/${peer.toString()}`)
}
