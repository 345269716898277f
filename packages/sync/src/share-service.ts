/**
 * The share service: the shares of this device, each kept identical on
 * every member of one private swarm. It owns the share database, runs one
 * `ShareSync` per share, speaks the share protocol through the swarm's
 * roster gate (heads, offers, snapshot blocks), fetches chunks with the
 * exchange, and answers the exchange's serve policy for share content.
 * It never constructs libp2p: `packages/node` hands it narrow parts.
 */
import { randomBytes } from 'node:crypto'
import { lstat, mkdir } from 'node:fs/promises'
import { basename, dirname, isAbsolute, join, resolve, sep } from 'node:path'
import { InvalidParametersError } from '@homecloud/interface'
import { logger } from '@libp2p/logger'
import { peerIdFromString } from '@libp2p/peer-id'
import { TypedEventEmitter } from 'main-event'
import { applyStep } from './apply.js'
import {
  DEFAULT_HISTORY_MAX_BYTES, DEFAULT_HISTORY_RETENTION_MS, DEFAULT_MIN_FREE_FRACTION, DEFAULT_POLL_INTERVAL_MS, DEFAULT_RESCAN_INTERVAL_MS,
  DEFAULT_RETRY_INTERVAL_MS, DEFAULT_SHARE_PROTOCOL_TIMEOUT_MS, DEFAULT_WATCH_DEBOUNCE_MS, MAX_OFFERS, MAX_SHARE_NAME_BYTES, MAX_SHARE_STREAMS,
  SHARE_PROTOCOL
} from './constants.js'
import { chunkOffsets, type ShareEntry } from './entry.js'
import { ShareExistsError, ShareNotFoundError } from './errors.js'
import { fetchAvailable } from './fetch-available.js'
import { nodeFs } from './fs.js'
import { verifyHead, type Head } from './head.js'
import { checkSharePath } from './path-policy.js'
import { PARTIAL_HEAD_AFTER_MS } from './partial-heads.js'
import { RemoteSnapshotBlocks, type FetchBlocks } from './remote-snapshot.js'
import { LevelShareKv, MemoryShareKv, type ShareKv } from './share-kv.js'
import { ShareAnnouncer } from './share-announce.js'
import { requestBlocks, serveShareStream, type AnnouncedShare } from './share-protocol.js'
import { SHARE_MODES, ShareRecords, type ShareDefinition, type ShareMode } from './share-state.js'
import { ShareSync, type ShareSyncConfig, type ShareSyncContext } from './share-sync.js'
import { loadSnapshot } from './snapshot.js'
import type { HistoryVersion } from './history.js'
import type { MemberStatus } from './share-status.js'
import { localChunkLocator, type PlannedChunk } from './plan.js'
import type {
  AcceptShareOptions, AddShareOptions, RestoreOptions, ShareInfo, ShareOffer, ShareServiceComponents, ShareServiceEvents,
  ShareServiceInit, ShareRevertResult, ShareStatus
} from './share-types.js'
import type { ChunkSink } from '@homecloud/exchange'
import type { AbortOptions } from '@homecloud/interface'
import type { GateContext } from '@homecloud/swarm'
import type { Connection, PeerId, Startable } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

const log = logger('homecloud:sync')

interface Offer extends ShareOffer {
  /** Verified heads that came with the offer, applied on accept. */
  heads: Map<string, { head: Head, signed: Uint8Array }>
}

export class ShareService extends TypedEventEmitter<ShareServiceEvents> implements Startable {
  readonly [Symbol.toStringTag] = '@homecloud/sync'
  readonly #components: ShareServiceComponents
  readonly #init: ShareServiceInit
  readonly #config: ShareSyncConfig
  readonly #timeoutMs: number
  readonly #self: string
  readonly #shares = new Map<string, ShareSync>()
  readonly #offers = new Map<string, Offer>()
  readonly #announcer: ShareAnnouncer
  readonly #background = new Set<Promise<unknown>>()
  #records?: ShareRecords
  #controller = new AbortController()
  #started = false
  #gcDirty = false
  #gcRunning = false

  constructor (components: ShareServiceComponents, init: ShareServiceInit = {}) {
    super()
    this.#components = components
    this.#init = init
    this.#self = components.peerId.toString()
    this.#timeoutMs = positive(init.protocolTimeoutMs ?? DEFAULT_SHARE_PROTOCOL_TIMEOUT_MS, 'protocolTimeoutMs')
    const debounce = positive(init.watchDebounceMs ?? DEFAULT_WATCH_DEBOUNCE_MS, 'watchDebounceMs')
    if (debounce > 1000) throw new InvalidParametersError('watchDebounceMs is at most 1000')
    const minFreeFraction = init.minFreeFraction ?? DEFAULT_MIN_FREE_FRACTION
    if (!(minFreeFraction >= 0 && minFreeFraction < 1)) throw new InvalidParametersError('minFreeFraction must be in [0, 1)')
    this.#config = {
      watch: init.watch ?? true,
      watchDebounceMs: debounce,
      rescanIntervalMs: positive(init.rescanIntervalMs ?? DEFAULT_RESCAN_INTERVAL_MS, 'rescanIntervalMs'),
      pollIntervalMs: positive(init.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS, 'pollIntervalMs'),
      retryIntervalMs: positive(init.retryIntervalMs ?? DEFAULT_RETRY_INTERVAL_MS, 'retryIntervalMs'),
      partialHeadAfterMs: positive(init.partialHeadAfterMs ?? PARTIAL_HEAD_AFTER_MS, 'partialHeadAfterMs'),
      minFreeFraction,
      history: {
        retentionMs: positive(init.history?.retentionMs ?? DEFAULT_HISTORY_RETENTION_MS, 'history.retentionMs'),
        maxBytes: positive(init.history?.maxBytes ?? DEFAULT_HISTORY_MAX_BYTES, 'history.maxBytes')
      },
      now: init.now ?? Date.now
    }
    if (init.autoAcceptMode != null) checkMode(init.autoAcceptMode)
    this.#announcer = new ShareAnnouncer({
      gate: components.gate,
      swarms: components.swarms,
      now: () => this.#config.now(),
      running: () => this.#started,
      signal: () => this.#signal(),
      announced: (peer) => this.#announced(peer),
      received: async (peer, theirs) => { await this.#received(peer, theirs) },
      inBackground: (fn) => { this.#inBackground(fn) }
    })
  }

  isStarted (): boolean {
    return this.#started
  }

  /** Opens the share database, starts every share, registers the protocol. */
  async start (): Promise<void> {
    if (this.#started) return
    this.#controller = new AbortController()
    const kv: ShareKv = this.#init.kv ?? (this.#init.datastorePath != null ? await LevelShareKv.open(this.#init.datastorePath) : new MemoryShareKv())
    this.#records = new ShareRecords(kv)
    for (const def of await this.#records.definitions()) {
      try {
        const sync = await ShareSync.open(def, this.#context())
        this.#shares.set(def.id, sync)
      } catch (err) {
        log.error('could not load share %s: %e', def.name, err)
      }
    }
    await this.#components.gate.handle(SHARE_PROTOCOL, async (stream, _connection, context) => { await this.#serve(stream, context) }, {
      maxInboundStreams: MAX_SHARE_STREAMS, maxOutboundStreams: MAX_SHARE_STREAMS
    })
    this.#components.events.addEventListener('connection:open', this.#onConnection)
    this.#components.swarms.addEventListener('swarm:change', this.#onSwarmChange)
    this.#components.swarms.addEventListener('swarm:member-removed', this.#onMemberRemoved)
    this.#started = true
    for (const sync of this.#shares.values()) sync.start()
    // members connected before the protocol was registered (a redial at start) never asked: ask them
    for (const swarm of new Set([...this.#shares.values()].map(s => s.def.swarm))) this.#announcer.toSwarm(swarm)
  }

  /** Stops every share, unregisters, waits for background work, closes the database it opened. */
  async stop (): Promise<void> {
    if (!this.#started) return
    this.#started = false
    this.#controller.abort()
    this.#announcer.stop()
    this.#components.events.removeEventListener('connection:open', this.#onConnection)
    this.#components.swarms.removeEventListener('swarm:change', this.#onSwarmChange)
    this.#components.swarms.removeEventListener('swarm:member-removed', this.#onMemberRemoved)
    await this.#components.gate.unhandle(SHARE_PROTOCOL).catch(() => {})
    await Promise.all([...this.#shares.values()].map(async s => s.stop()))
    await Promise.allSettled([...this.#background])
    this.#shares.clear()
    this.#offers.clear()
    if (this.#init.kv == null) await this.#records?.kv.close()
  }

  /** Shares `path` (an existing folder) with the members of a swarm. */
  async addShare (path: string, options: AddShareOptions): Promise<ShareInfo> {
    const records = this.#running()
    const root = await this.#checkFolder(path, false)
    if (options == null || typeof options.swarm !== 'string') throw new InvalidParametersError('addShare needs options.swarm')
    const swarm = this.#components.swarms.get(options.swarm).id
    const name = checkName(options.name ?? basename(root))
    const def: ShareDefinition = { id: randomBytes(16).toString('hex'), name, swarm, path: root, mode: checkMode(options.mode ?? 'send-receive'), createdAt: this.#config.now() }
    await records.putDefinition(def)
    await this.#startShare(def)
    return info(def)
  }

  /** Starts replicating a share another member offered into `path` (created when missing). */
  async acceptShare (shareId: string, path: string, options: AcceptShareOptions = {}): Promise<ShareInfo> {
    const records = this.#running()
    if (this.#shares.has(shareId)) throw new ShareExistsError(`share ${shareId} is already on this device`)
    const offer = this.#offers.get(shareId) ?? [...this.#offers.values()].find(o => o.name === shareId)
    if (offer == null) throw new ShareNotFoundError(`no member has offered a share "${shareId}"`)
    const root = await this.#checkFolder(path, true)
    const def: ShareDefinition = { id: offer.id, name: offer.name, swarm: offer.swarm, path: root, mode: checkMode(options.mode ?? 'send-receive'), createdAt: this.#config.now() }
    await records.putDefinition(def)
    this.#offers.delete(offer.id)
    const sync = await this.#startShare(def)
    for (const { head, signed } of offer.heads.values()) {
      if (this.#components.swarms.isMember(def.swarm, peerIdFromString(head.device))) await sync.acceptHead(head, signed)
    }
    this.#announcer.toSwarm(def.swarm)
    return info(def)
  }

  /** Stops sharing: forgets the share's index, heads and history. The folder stays as it is. */
  async removeShare (share: string, options: AbortOptions = {}): Promise<void> {
    const records = this.#running()
    const sync = this.#resolve(share)
    await sync.stop()
    this.#shares.delete(sync.def.id)
    await sync.history.clear(options)
    await records.deleteShare(sync.def.id)
    this.#gcDirty = true
    this.#maybeGc()
    this.#changed(sync.def.id)
  }

  /** Gives back memory kept for speed: the indexes' spellings, recent writes to the share database (an idle device); nothing is lost. */
  async releaseCaches (): Promise<void> {
    for (const sync of this.#shares.values()) sync.index.releaseCaches()
    await this.#records?.kv.release?.()
  }

  list (): ShareInfo[] {
    return [...this.#shares.values()].map(s => info(s.def))
  }

  /** Shares offered by other members that this device does not hold. */
  offers (): ShareOffer[] {
    return [...this.#offers.values()].map(({ heads: _h, ...o }) => ({ ...o, from: [...o.from] }))
  }

  status (share: string): ShareStatus {
    const sync = this.#resolve(share)
    let members: MemberStatus[] = []
    try {
      members = this.#components.swarms.members(sync.def.swarm).filter(m => !m.self).map(m => ({
        device: m.peerId,
        name: m.name,
        online: m.online,
        ...this.#announcer.memberState(m.peerId)
      }))
    } catch (err) {
      log('share %s: swarm %s unavailable: %e', sync.def.name, sync.def.swarm, err)
    }
    return { share: info(sync.def), ...sync.status(members) }
  }

  /** Scans the share now and resolves once the scan (and work queued before it) is done. */
  async rescan (share: string): Promise<void> {
    const sync = this.#resolve(share)
    sync.requestScan()
    await sync.settled()
  }

  /** Receive-only: puts back the remote version of every local change. Returns how many paths were reverted, and the paths that failed. */
  async revert (share: string, options: AbortOptions = {}): Promise<ShareRevertResult> {
    const sync = this.#resolve(share)
    if (sync.def.mode !== 'receive-only') throw new InvalidParametersError(`share ${sync.def.name} is ${sync.def.mode}: only receive-only shares revert`)
    const snapshots: Array<{ device: string, entries: ShareEntry[] }> = []
    for (const [device, head] of sync.peers) {
      const signal = this.#signal(options)
      try {
        const blocks = new RemoteSnapshotBlocks({ local: async (cid) => this.#records?.block(sync.def.id, cid), remote: this.#fetchBlocks(sync.def, device) })
        await blocks.prefetch(head.snapshot, { signal })
        snapshots.push({ device, entries: await loadSnapshot(head.snapshot, blocks, { signal }) })
      } catch (err) {
        log('revert: snapshot of %s unavailable: %e', device, err)
      }
    }
    if (snapshots.length === 0) throw new ShareNotFoundError(`no member of share ${sync.def.name} is reachable to revert to`)
    return sync.exclusive(async (signal) => sync.revert(snapshots, AbortSignal.any([signal, ...(options.signal != null ? [options.signal] : [])])))
  }

  /** Kept versions of a path of the share, newest first (every path when absent). */
  history (share: string, path?: string): HistoryVersion[] {
    const sync = this.#resolve(share)
    if (path !== undefined) checkSharePath(path)
    return sync.history.list(path)
  }

  /**
   * Writes a kept version back: to its place in the share (the current file
   * goes to history; the change then syncs like any local edit), or to
   * `options.to`, an absolute path that must not exist. Returns where it went.
   */
  async restore (share: string, path: string, options: RestoreOptions = {}): Promise<string> {
    const sync = this.#resolve(share)
    checkSharePath(path)
    const { entry } = await sync.history.entry(path, options.version, options)
    const offsets = chunkOffsets(entry.chunks ?? [])
    const chunks: PlannedChunk[] = (entry.chunks ?? []).map((c, i) => ({ cid: c.cid, offset: offsets[i], length: c.length }))
    const action = entry.type === 'symlink' ? 'symlink' as const : 'write-file' as const
    const reader = { get: async (cid: CID, o?: AbortOptions) => this.#components.store.get(cid, o).catch(() => undefined) }
    if (options.to != null) {
      if (!isAbsolute(options.to)) throw new InvalidParametersError('restore: `to` must be an absolute path')
      const to = resolve(options.to)
      const name = basename(to)
      await applyStep({ action, path: name, entry: { ...entry, path: name }, chunks }, { fs: nodeFs, root: dirname(to), reader, minFreeFraction: this.#config.minFreeFraction }, options)
      return to
    }
    await sync.exclusive(async (signal) => {
      const current = sync.index.get(path)
      const expect = current != null && current.deleted !== true ? current : undefined
      // chunks a kept version shares with live files are read there first (hash-checked; the store is the fallback)
      const live = localChunkLocator(sync.index.values())
      const fromLive = await Promise.all(chunks.map(async c => { const source = await live.locate(c.cid); return source != null ? { ...c, source } : c }))
      await applyStep({ action, path, entry, chunks: fromLive, ...(expect != null ? { expect } : {}) }, {
        fs: nodeFs,
        root: sync.def.path,
        reader,
        minFreeFraction: this.#config.minFreeFraction,
        beforeReplace: async (old, next, o) => sync.history.keep(old, 'replaced', next, o)
      }, { signal })
      await sync.indexWritten(entry, { signal })
    })
    // the restored file is a local change: the scan gives it a new version
    sync.requestScan()
    return join(sync.def.path, path)
  }

  /**
   * The exchange's serve policy for share content: may `peer` be served
   * `cid`? Only when a live file of a share holds it and `peer` is on the
   * roster of that share's swarm. The node combines it with other policies.
   */
  policyFor (peer: PeerId, cid: CID): boolean {
    for (const sync of this.#shares.values()) {
      if (sync.index.hasChunk(cid) && this.#components.swarms.isMember(sync.def.swarm, peer)) return true
    }
    return false
  }

  // ---- internals ----

  #running (): ShareRecords {
    if (!this.#started || this.#records == null) throw new InvalidParametersError('the share service is not started')
    return this.#records
  }

  #resolve (share: string): ShareSync {
    const byId = this.#shares.get(share)
    if (byId != null) return byId
    const byName = [...this.#shares.values()].filter(s => s.def.name === share)
    if (byName.length === 1) return byName[0]
    if (byName.length > 1) throw new InvalidParametersError(`several shares are named "${share}"; use the id`)
    throw new ShareNotFoundError(`no share "${share}" on this device`)
  }

  /** An absolute folder that is no share and holds none (created when `create`). */
  async #checkFolder (path: string, create: boolean): Promise<string> {
    if (typeof path !== 'string' || !isAbsolute(path)) throw new InvalidParametersError('a share folder must be an absolute path')
    const root = resolve(path)
    if (create) await mkdir(root, { recursive: true })
    let stat
    try {
      stat = await lstat(root)
    } catch (err) {
      throw new InvalidParametersError(`${root} does not exist`, { cause: err })
    }
    if (!stat.isDirectory()) throw new InvalidParametersError(`${root} is not a directory (symlinks are not followed)`)
    for (const s of this.#shares.values()) {
      const other = s.def.path
      if (other === root || root.startsWith(other + sep) || other.startsWith(root + sep)) {
        throw new ShareExistsError(`${root} overlaps share ${s.def.name} at ${other}`)
      }
    }
    return root
  }

  async #startShare (def: ShareDefinition): Promise<ShareSync> {
    const sync = await ShareSync.open(def, this.#context())
    this.#shares.set(def.id, sync)
    sync.start()
    this.#changed(def.id)
    return sync
  }

  #context (): ShareSyncContext {
    return {
      self: this.#self,
      privateKey: this.#components.privateKey,
      records: this.#records as ShareRecords,
      store: this.#components.store,
      chunkFile: async (path, options) => this.#components.store.chunkFile(path, options),
      fetchChunks: async (def, cids, first, options) => this.#fetchChunks(def, cids, first, options),
      fetchBlocks: (def, device) => this.#fetchBlocks(def, device),
      changed: (share, headChanged) => {
        this.#changed(share)
        const sync = this.#shares.get(share)
        if (headChanged && sync != null) this.#announcer.toSwarm(sync.def.swarm)
      },
      gcWanted: () => { this.#gcDirty = true },
      anyMemberOnline: (def) => this.#components.swarms.members(def.swarm).some(m => m.online && !m.self),
      config: this.#config
    }
  }

  async #fetchChunks (def: ShareDefinition, cids: CID[], first: string | undefined, options: AbortOptions & { sink?: ChunkSink }): Promise<unknown> {
    const online = this.#components.swarms.members(def.swarm).filter(m => m.online && !m.self).map(m => m.peerId)
    online.sort((a, b) => (a === first ? -1 : b === first ? 1 : 0))
    const peers = online.map(p => peerIdFromString(p))
    // a chunk no member has fails alone: the others are fetched all the same
    return fetchAvailable(this.#components.chunks, cids, { peers, sink: options.sink ?? this.#components.store, signal: options.signal })
  }

  #fetchBlocks (def: ShareDefinition, device: string): FetchBlocks {
    return async (cids, options) => {
      const signal = this.#signal(options)
      const peer = peerIdFromString(device)
      const { stream, release } = await this.#components.gate.dial(def.swarm, peer, SHARE_PROTOCOL, { signal })
      try {
        const replies = await requestBlocks(stream, def.id, cids, { signal })
        // a device serves only its last two snapshots: a block it no longer serves means its head moved on
        if (replies.some(r => r.bytes == null)) this.#announcer.to(peer, def.swarm)
        return replies
      } catch (err) {
        stream.abort(err as Error)
        throw err
      } finally {
        release()
      }
    }
  }

  #signal (options: AbortOptions = {}): AbortSignal {
    return AbortSignal.any([this.#controller.signal, AbortSignal.timeout(this.#timeoutMs), ...(options.signal != null ? [options.signal] : [])])
  }

  /** Answers one inbound share stream (already admitted by the gate: the peer shares a swarm with us). */
  async #serve (stream: Parameters<typeof serveShareStream>[0], context: GateContext): Promise<void> {
    const peer = context.peer
    const signal = this.#signal()
    await serveShareStream(stream, {
      announce: async (theirs) => {
        await this.#received(peer, theirs)
        this.#announcer.answered(peer.toString())
        return this.#announced(peer)
      },
      bindShare: (share) => {
        const sync = this.#shares.get(share)
        if (sync == null) throw new ShareNotFoundError(`no share ${share}`)
        context.bind(sync.def.swarm)
      },
      block: async (share, cid) => {
        const sync = this.#shares.get(share)
        if (sync == null || !sync.servesBlock(cid)) return undefined
        return this.#records?.block(share, cid)
      }
    }, { signal })
  }

  /** Our shares whose swarm has `peer` on its roster, with our heads (receive-only shares send none). */
  #announced (peer: PeerId): AnnouncedShare[] {
    const out: AnnouncedShare[] = []
    for (const s of this.#shares.values()) {
      if (!this.#components.swarms.isMember(s.def.swarm, peer)) continue
      const head = s.def.mode !== 'receive-only' ? s.head?.signed : undefined
      out.push({ id: s.def.id, name: s.def.name, swarm: s.def.swarm, ...(head != null ? { head } : {}) })
    }
    return out
  }

  /** Heads and offers from `peer`; only for swarms it is on, heads only when it signed them. */
  async #received (peer: PeerId, shares: AnnouncedShare[]): Promise<void> {
    const device = peer.toString()
    /** Swarms in which `peer` has a new head (of a share of ours or one it offers). */
    const fresh = new Set<string>()
    for (const s of shares) {
      if (!this.#components.swarms.isMember(s.swarm, peer)) continue
      let verified: { head: Head, signed: Uint8Array } | undefined
      if (s.head != null) {
        try {
          verified = { head: await verifyHead(s.head, { share: s.id, device }), signed: s.head }
        } catch (err) {
          log('bad head for share %s from %p: %e', s.id, peer, err)
        }
      }
      const sync = this.#shares.get(s.id)
      if (sync != null) {
        // the swarm is ours to know: a peer cannot move a share to another swarm
        if (sync.def.swarm !== s.swarm || verified == null) continue
        if (await sync.acceptHead(verified.head, verified.signed)) fresh.add(s.swarm)
        continue
      }
      if (this.#offer(s, device, verified)) fresh.add(s.swarm)
    }
    // what it now holds (in any share: the exchange serves a chunk from every share of the swarm) may be what other pulls wait for
    for (const sync of this.#shares.values()) if (fresh.has(sync.def.swarm)) sync.sourcesChanged()
  }

  /** Remembers an offer; returns whether it came with a new head of `device`'s. */
  #offer (s: AnnouncedShare, device: string, verified?: { head: Head, signed: Uint8Array }): boolean {
    let offer = this.#offers.get(s.id)
    if (offer == null) {
      if (this.#offers.size >= MAX_OFFERS) return false
      offer = { id: s.id, name: s.name, swarm: s.swarm, from: [], offeredAt: this.#config.now(), heads: new Map() }
      this.#offers.set(s.id, offer)
    }
    if (offer.swarm !== s.swarm) return false
    offer.offeredAt = this.#config.now()
    if (!offer.from.includes(device)) offer.from.push(device)
    const fresh = verified != null && (offer.heads.get(device)?.head.seq ?? 0) < verified.head.seq
    if (fresh) offer.heads.set(device, verified)
    this.safeDispatchEvent('share:offer', { detail: { ...offer, from: [...offer.from] } })
    if (this.#init.autoAcceptDir != null) this.#autoAccept(offer)
    return fresh
  }

  #autoAccept (offer: Offer): void {
    let name = offer.name
    try {
      checkSharePath(name)
      if (name.includes('/')) throw new InvalidParametersError('nested name')
    } catch {
      name = offer.id
    }
    const path = join(this.#init.autoAcceptDir as string, name)
    this.#inBackground(async () => this.acceptShare(offer.id, path, { mode: this.#init.autoAcceptMode ?? 'receive-only' }))
  }

  readonly #onConnection = (event: CustomEvent<Connection>): void => {
    // a member online may serve the chunks a pull waits for: those pulls stop backing off
    const swarms = new Set(this.#components.swarms.swarmsOf(event.detail.remotePeer))
    for (const sync of this.#shares.values()) if (swarms.has(sync.def.swarm)) sync.sourcesChanged()
    // the dialling side asks; the answer carries the other side's shares, so one exchange serves both
    if (event.detail.direction !== 'outbound') return
    const peer = event.detail.remotePeer
    const [swarm] = this.#components.swarms.swarmsOf(peer)
    if (swarm != null) this.#announcer.to(peer, swarm)
  }

  readonly #onSwarmChange = (event: CustomEvent<{ swarmId: string }>): void => {
    this.#announcer.toSwarm(event.detail.swarmId)
  }

  readonly #onMemberRemoved = (event: CustomEvent<{ swarmId: string, peerId: string }>): void => {
    this.#announcer.forget(event.detail.peerId)
    for (const sync of this.#shares.values()) {
      if (sync.def.swarm === event.detail.swarmId) this.#inBackground(async () => sync.forgetPeer(event.detail.peerId))
    }
  }

  #changed (shareId: string): void {
    this.safeDispatchEvent('share:change', { detail: { shareId } })
    if (this.#gcDirty) setTimeout(() => { this.#maybeGc() }, 0).unref?.()
  }

  /** GC when no share is pulling: fetched blocks now live in files, unpinned history can go. */
  #maybeGc (): void {
    if (!this.#gcDirty || this.#gcRunning || !this.#started || this.#init.gcAfterSync === false) return
    if ([...this.#shares.values()].some(s => s.busy)) return
    this.#gcDirty = false
    this.#gcRunning = true
    this.#inBackground(async () => {
      try {
        await this.#components.store.gc({ signal: this.#controller.signal })
      } finally {
        this.#gcRunning = false
      }
    })
  }

  #inBackground (fn: () => Promise<unknown>): void {
    const p = fn().catch(err => { if (this.#started) log('background task failed: %e', err) })
    this.#background.add(p)
    void p.finally(() => this.#background.delete(p))
  }
}

/** The service as a factory over its components, like every libp2p service. */
export function shareService (init: ShareServiceInit = {}): (components: ShareServiceComponents) => ShareService {
  return (components) => new ShareService(components, init)
}

/** A copy, so callers cannot change the definition a running share uses. */
function info (def: ShareDefinition): ShareInfo {
  return { ...def }
}

function checkMode (mode: unknown): ShareMode {
  if (!SHARE_MODES.includes(mode as ShareMode)) throw new InvalidParametersError(`share mode must be one of ${SHARE_MODES.join(', ')}`)
  return mode as ShareMode
}

function checkName (name: unknown): string {
  // eslint-disable-next-line no-control-regex
  if (typeof name !== 'string' || name.trim() === '' || /[\u0000-\u001f\u007f]/.test(name) || new TextEncoder().encode(name).byteLength > MAX_SHARE_NAME_BYTES) {
    throw new InvalidParametersError(`a share name has 1 to ${MAX_SHARE_NAME_BYTES} bytes and no control characters`)
  }
  return name
}

function positive (n: number, what: string): number {
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidParametersError(`${what} must be a positive integer`)
  return n
}
