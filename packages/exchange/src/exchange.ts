/**
 * The chunk exchange service: serves blocks on `/homecloud/chunks/1.0.0` and
 * runs multi-source fetches over one session (stream) per peer.
 */
import { InvalidParametersError } from '@homecloud/interface'
import { logger } from '@libp2p/logger'
import type { PeerId } from '@libp2p/interface'
import { CID } from 'multiformats/cid'
import {
  END_GAME_COPIES, INITIAL_WINDOW, MAX_PEERS_PER_FETCH, MAX_STALLS, MAX_STREAMS_PER_CONNECTION, MAX_WANTS_PER_PEER, MAX_WINDOW,
  PROTOCOL, SESSION_IDLE_MS, STALL_TIMEOUT_MS
} from './constants.js'
import { newCounters } from './counters.js'
import { NoPeersError, NotStartedError } from './errors.js'
import { Fetch } from './fetch.js'
import type { FetchConfig } from './fetch.js'
import { PeerPenalties } from './penalties.js'
import type { PeerPenalty } from './penalties.js'
import { ChunkServer } from './server.js'
import { PeerSession } from './session.js'
import type { ChunkExchange, ChunkExchangeComponents, ChunkExchangeInit, ChunkSink, ExchangeStats, FetchOptions, FetchResult } from './types.js'
import { isVerifiable } from './verify.js'

const log = logger('homecloud:exchange')

export class ChunkExchangeService implements ChunkExchange {
  readonly [Symbol.toStringTag] = '@homecloud/exchange'
  private readonly components: ChunkExchangeComponents
  private readonly init: ChunkExchangeInit
  private readonly config: FetchConfig
  private readonly penalties: PeerPenalties
  private readonly counters = newCounters()
  private readonly sessions = new Map<string, PeerSession>()
  private readonly fetches = new Set<Fetch>()
  private readonly server?: ChunkServer
  private started = false

  constructor (components: ChunkExchangeComponents, init: ChunkExchangeInit = {}) {
    this.components = components
    this.init = init
    this.config = {
      stallTimeout: positive(init.stallTimeout ?? STALL_TIMEOUT_MS, 'stallTimeout'),
      maxStalls: positive(init.maxStalls ?? MAX_STALLS, 'maxStalls'),
      endGameCopies: positive(init.endGameCopies ?? END_GAME_COPIES, 'endGameCopies'),
      initialWindow: positive(init.initialWindow ?? INITIAL_WINDOW, 'initialWindow'),
      maxWindow: Math.min(MAX_WANTS_PER_PEER, positive(init.maxWindow ?? MAX_WINDOW, 'maxWindow'))
    }
    this.penalties = new PeerPenalties({ banAfterFaults: init.banAfterFaults, banMs: init.banMs })
    if (init.serve !== undefined) {
      this.server = new ChunkServer({ ...init.serve, counters: this.counters, log: log.newScope('serve') })
    }
  }

  async start (): Promise<void> {
    if (this.started) {
      return
    }
    if (this.server !== undefined) {
      await this.components.registrar.handle(PROTOCOL, this.server.handle, {
        maxInboundStreams: MAX_STREAMS_PER_CONNECTION,
        maxOutboundStreams: MAX_STREAMS_PER_CONNECTION
      })
    }
    this.started = true
  }

  async stop (): Promise<void> {
    if (!this.started) {
      return
    }
    this.started = false
    if (this.server !== undefined) {
      await this.components.registrar.unhandle(PROTOCOL)
      this.server.stop()
    }
    for (const fetch of [...this.fetches]) {
      fetch.abort(new NotStartedError('the chunk exchange stopped'))
    }
    for (const session of [...this.sessions.values()]) {
      session.close()
    }
  }

  async fetch (cids: CID | Iterable<CID>, options: FetchOptions): Promise<FetchResult> {
    if (!this.started) {
      throw new NotStartedError()
    }
    const roots = CID.asCID(cids) !== null ? [cids as CID] : [...(cids as Iterable<CID>)]
    for (const cid of roots) {
      if (CID.asCID(cid) === null) {
        throw new InvalidParametersError(`not a CID: ${String(cid)}`)
      }
      if (!isVerifiable(cid)) {
        throw new InvalidParametersError(`${cid} is not a sha2-256 CID, so its blocks cannot be verified`)
      }
    }
    const sink: ChunkSink | undefined = options.sink ?? this.init.sink
    if (sink === undefined) {
      throw new InvalidParametersError('a fetch needs a sink: pass options.sink or init.sink')
    }
    if (options.missing !== undefined && options.missing !== 'fail' && options.missing !== 'report') {
      throw new InvalidParametersError(`options.missing must be 'fail' or 'report', got ${String(options.missing)}`)
    }
    if (options.links !== undefined && sink.get === undefined) {
      throw new InvalidParametersError('walking links needs a sink with get()')
    }
    const unique = new Map<string, PeerId>()
    for (const peer of options.peers ?? []) {
      unique.set(peer.toString(), peer)
    }
    if (unique.size > MAX_PEERS_PER_FETCH) {
      throw new InvalidParametersError(`a fetch takes at most ${MAX_PEERS_PER_FETCH} peers, got ${unique.size}`)
    }
    const peers = [...unique.values()].filter(peer => !this.penalties.isBanned(peer.toString()))
    if (peers.length === 0) {
      throw new NoPeersError(unique.size === 0 ? 'no peers to fetch from' : `all ${unique.size} peers are banned for earlier faults`)
    }
    const fetch = new Fetch({ config: this.config, log: log.newScope('fetch'), session: peer => this.session(peer) }, sink, options)
    this.fetches.add(fetch)
    try {
      return await fetch.run(roots, peers)
    } finally {
      this.fetches.delete(fetch)
    }
  }

  penalty (peer: PeerId): Readonly<PeerPenalty> | undefined {
    return this.penalties.get(peer.toString())
  }

  stats (): ExchangeStats {
    return { ...this.counters, openSessions: this.sessions.size, servedStreams: this.server?.openStreams ?? 0 }
  }

  private session (peer: PeerId): PeerSession {
    const key = peer.toString()
    const existing = this.sessions.get(key)
    if (existing !== undefined && !existing.closed) {
      return existing
    }
    const session = new PeerSession(peer, {
      openStream: async (p, protocol, options) => this.components.connectionManager.openStream(p, protocol, options),
      penalties: this.penalties,
      counters: this.counters,
      log: log.newScope('session'),
      idleTimeout: this.init.sessionIdleTimeout ?? SESSION_IDLE_MS,
      onClosed: closed => {
        if (this.sessions.get(closed.key) === closed) {
          this.sessions.delete(closed.key)
        }
      }
    })
    this.sessions.set(key, session)
    return session
  }
}

function positive (value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new InvalidParametersError(`${name} must be a positive number, got ${value}`)
  }
  return value
}
