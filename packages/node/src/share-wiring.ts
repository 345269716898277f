/**
 * The shares of a device (issue 5): the share service wired to the device's
 * libp2p node, its swarms, its chunk store and its chunk exchange, with its
 * state in LevelDB inside the repo (or in memory); started after the swarms
 * and the exchange, stopped before them. And the device's serve policy:
 * a block is served when it is public content, or when the share service
 * says the asking peer is on the roster of a share that holds it.
 */
import { isAbsolute } from 'node:path'
import { InvalidParametersError, RepoError } from '@homecloud/interface'
import { SHARE_MODES, shareService } from '@homecloud/sync'
import { SERVICE } from './libp2p-options.js'
import { NodeNotStartedError } from './errors.js'
import type { DeviceContent } from './content.js'
import type { PublicContent } from './public-content.js'
import type { HomecloudNodeConfig, ShareTuning } from './types.js'
import type { ChunkExchange, ServePolicy } from '@homecloud/exchange'
import type { ChunkStore } from '@homecloud/store'
import type { SwarmService } from '@homecloud/swarm'
import type { ShareMode, ShareService, ShareServiceComponents, ShareServiceInit } from '@homecloud/sync'
import type { Libp2p, PrivateKey } from '@libp2p/interface'

const TUNING_KEYS: ReadonlyArray<keyof ShareTuning> = [
  'autoAcceptDir', 'autoAcceptMode', 'historyRetentionMs', 'historyMaxBytes', 'minFreeFraction',
  'watch', 'watchDebounceMs', 'rescanIntervalMs', 'retryIntervalMs'
]

/**
 * The share part of a config, checked where the share service does not
 * check it itself (paths, modes, unknown keys); numbers are checked by the
 * service when the device is built.
 *
 * @throws {InvalidParametersError}
 */
export function resolveShareConfig (config: HomecloudNodeConfig): ShareServiceInit {
  const { shareDatastorePath } = config
  if (shareDatastorePath != null && (typeof shareDatastorePath !== 'string' || !isAbsolute(shareDatastorePath))) {
    throw new InvalidParametersError('config.shareDatastorePath must be an absolute path when set')
  }
  if (shareDatastorePath != null && [config.datastorePath, config.swarmDatastorePath, config.storePath].includes(shareDatastorePath)) {
    throw new InvalidParametersError('config.shareDatastorePath must differ from the other databases\' folders')
  }
  const tuning = config.shares ?? {}
  if (tuning == null || typeof tuning !== 'object' || Array.isArray(tuning)) {
    throw new InvalidParametersError('config.shares must be an object')
  }
  for (const key of Object.keys(tuning)) {
    if (!TUNING_KEYS.includes(key as keyof ShareTuning)) throw new InvalidParametersError(`unknown share option "${key}"`)
  }
  const { autoAcceptDir, autoAcceptMode, historyRetentionMs, historyMaxBytes, ...rest } = tuning
  if (autoAcceptDir != null && (typeof autoAcceptDir !== 'string' || !isAbsolute(autoAcceptDir))) {
    throw new InvalidParametersError('config.shares.autoAcceptDir must be an absolute path')
  }
  if (autoAcceptMode != null && !SHARE_MODES.includes(autoAcceptMode)) {
    throw new InvalidParametersError(`config.shares.autoAcceptMode must be one of ${SHARE_MODES.join(', ')}`)
  }
  if (rest.watch != null && typeof rest.watch !== 'boolean') {
    throw new InvalidParametersError('config.shares.watch must be a boolean')
  }
  const history: ShareServiceInit['history'] = {
    ...(historyRetentionMs == null ? {} : { retentionMs: historyRetentionMs }),
    ...(historyMaxBytes == null ? {} : { maxBytes: historyMaxBytes })
  }
  return {
    ...(shareDatastorePath == null ? {} : { datastorePath: shareDatastorePath }),
    ...(autoAcceptDir == null ? {} : { autoAcceptDir }),
    ...(autoAcceptMode == null ? {} : { autoAcceptMode: autoAcceptMode satisfies ShareMode }),
    history,
    ...withoutUndefined(rest)
  }
}

function withoutUndefined<T extends object> (o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}

/**
 * What the exchange may serve: `base` (the config's policy) must allow it,
 * and the block is public content, or a share of the device holds it and the
 * peer is on the roster of that share's swarm. Everything else (share files,
 * kept history, fetched share chunks) is answered like a block not held.
 */
export function deviceServePolicy (base: ServePolicy, publicContent: PublicContent, shares: () => ShareService | undefined): ServePolicy {
  return async (peer, cid) => {
    if (!await base(peer, cid)) return false
    const service = shares()
    if (service?.isStarted() === true && service.policyFor(peer, cid)) return true
    return publicContent.has(cid)
  }
}

export interface DeviceSharesInit extends ShareServiceInit {
  privateKey: PrivateKey
}

/** Owns the share service; `HomecloudNode` drives `start`/`stop`. */
export class DeviceShares {
  readonly service: ShareService
  private readonly datastorePath?: string

  constructor (libp2p: Libp2p, swarms: SwarmService, content: DeviceContent, init: DeviceSharesInit) {
    const { privateKey, ...serviceInit } = init
    this.datastorePath = init.datastorePath
    const exchange = (): ChunkExchange => {
      const service = libp2p.services[SERVICE.chunks] as ChunkExchange | undefined
      if (service == null) throw new NodeNotStartedError('the chunk exchange is not running')
      return service
    }
    // the store opens and closes with the device: every call goes to the one open now
    const store: ShareServiceComponents['store'] = {
      has: async (...args) => content.store.has(...args),
      get: async (...args) => content.store.get(...args),
      put: async (...args) => content.store.put(...args),
      pin: async (...args) => content.store.pin(...args),
      unpin: async (...args) => content.store.unpin(...args),
      indexFile: async (...args) => content.store.indexFile(...args),
      indexFiles: async (...args) => content.store.indexFiles(...args),
      gc: async (...args) => content.store.gc(...args),
      chunkFile: async (...args) => content.store.chunkFile(...args),
      hasMany: async (...args) => content.store.hasMany(...args)
    } satisfies Pick<ChunkStore, 'has' | 'get' | 'put' | 'pin' | 'unpin' | 'indexFile' | 'indexFiles' | 'gc' | 'chunkFile' | 'hasMany'>
    this.service = shareService(serviceInit)({
      peerId: libp2p.peerId,
      privateKey,
      gate: swarms.gate,
      swarms,
      events: libp2p,
      store,
      chunks: { fetch: async (cids, options) => exchange().fetch(cids, options) }
    })
  }

  /** Open the database and start the shares; call once the swarms and the exchange run. */
  async start (): Promise<void> {
    try {
      await this.service.start()
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause
      if (cause?.code === 'LEVEL_LOCKED') {
        throw new RepoError(`cannot open the share database ${this.datastorePath ?? ''}: it is in use by another process`, { cause: err })
      }
      throw err
    }
  }

  /** Stop every share (watchers, pulls, the share protocol) and close the database; call before the swarms stop. */
  async stop (): Promise<void> {
    await this.service.stop()
  }
}
