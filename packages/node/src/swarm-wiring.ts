/**
 * The private swarms of a device (issue 4): the swarm service wired to the device's libp2p
 * node, with its state in LevelDB inside the repo (or in memory), started after libp2p and
 * stopped before it.
 */
import { InvalidParametersError, RepoError } from '@homecloud/interface'
import { LevelSwarmDatastore, MemorySwarmDatastore, swarmService } from '@homecloud/swarm'
import { Level } from 'level'
import { SWARM_RENDEZVOUS_INTERVAL_MS } from './constants.js'
import type { DeviceServices, HomecloudNodeConfig, SwarmTuning } from './types.js'
import type { SwarmDatastore, SwarmService } from '@homecloud/swarm'
import type { Libp2p, PeerId, PrivateKey } from '@libp2p/interface'

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

/** Owns the swarm service and its database; `HomecloudNode` drives `start`/`stop`. */
export class DeviceSwarms {
  readonly service: SwarmService
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
  }

  /** Stop the service (its protocols leave libp2p) and close the database; call before libp2p stops. */
  async stop (): Promise<void> {
    try {
      await this.service.stop()
    } finally {
      if (this.db != null && this.db.status === 'open') await this.db.close()
    }
  }
}
