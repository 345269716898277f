/**
 * The sync of one share on this device: scans (on start, on watcher events,
 * periodically) turn local changes into new versions, a snapshot and a
 * signed head; newer heads from other members are pulled (snapshot read and
 * verified, plan against the local index, chunks copied or fetched, atomic
 * apply, index). Scans and pulls of a share run one at a time, so a scan
 * never sees a file apply wrote before the index records it.
 */
import { logger } from '@libp2p/logger'
import { applyPlan, checkFreeSpace, cleanupTempFiles, type ApplyProgressEvents } from './apply.js'
import { compareVersions } from './version-vector.js'
import { DiskFullError, errorCode, LocalChangedError } from './errors.js'
import { nodeFs } from './fs.js'
import { signHead, type Head } from './head.js'
import { loadIgnoreFile } from './ignore.js'
import { entryFromScan, tombstoneFromScan } from './local-change.js'
import { planPull, type PlanStep, type PullPlan } from './plan.js'
import { APPLY_IO_CONCURRENCY, MAX_STATUS_PATH_ERRORS } from './constants.js'
import { eachLimit, withLocal } from './apply-disk.js'
import { decodeEntry, decodeRecord, encodeEntry, encodeRecord, shareKeys, type OwnHead, type PeerHead, type ShareDefinition, type ShareRecords } from './share-state.js'
import { encodeSnapshot, loadSnapshot } from './snapshot.js'
import { LocalIndex } from './local-index.js'
import { RemoteSnapshotBlocks, type FetchBlocks } from './remote-snapshot.js'
import { ShareHistory, type HistoryLimits } from './history.js'
import { ShareWatcher } from './watcher.js'
import { chunkOffsets, type LocalEntry, type ShareEntry } from './entry.js'
import { scanShare, type ChunkFileFn } from './scanner.js'
import type { KvOperation } from './share-kv.js'
import type { SharePathError, SharePeerStatus, ShareState, ShareStatus } from './share-types.js'
import type { AbortOptions } from '@homecloud/interface'
import type { ChunkSink } from '@homecloud/exchange'
import type { ChunkStore } from '@homecloud/store'
import type { PrivateKey } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

const log = logger('homecloud:sync:share')

export interface ShareSyncConfig {
  watch: boolean
  watchDebounceMs: number
  rescanIntervalMs: number
  pollIntervalMs: number
  retryIntervalMs: number
  minFreeFraction: number
  history: HistoryLimits
  now(): number
}

/** What a share's sync takes from the service. */
export interface ShareSyncContext {
  self: string
  privateKey: PrivateKey
  records: ShareRecords
  store: Pick<ChunkStore, 'has' | 'get' | 'put' | 'pin' | 'unpin' | 'indexFile'>
  chunkFile: ChunkFileFn
  /** Fetches chunks from the members that may hold them (`first` is asked first) into `sink` (default: the block store). */
  fetchChunks(share: ShareDefinition, cids: CID[], first: string | undefined, options: AbortOptions & { sink?: ChunkSink }): Promise<unknown>
  /** Snapshot blocks of `share` from `device` over the share protocol. */
  fetchBlocks(share: ShareDefinition, device: string): FetchBlocks
  /** Our head changed (or state did): tell the members. */
  changed(share: string, headChanged: boolean): void
  /** Chunks were fetched into the block store or history was pruned: GC when quiet. */
  gcWanted(): void
  config: ShareSyncConfig
}

export class ShareSync {
  readonly def: ShareDefinition
  readonly #ctx: ShareSyncContext
  readonly index: LocalIndex
  readonly history: ShareHistory
  #head?: OwnHead
  /** CIDs of the blocks of our current and previous snapshot: the only ones served. */
  #served = new Set<string>()
  readonly peers: Map<string, PeerHead>
  #queue: Promise<void> = Promise.resolve()
  #scanQueued = false
  readonly #pullQueued = new Set<string>()
  #controller = new AbortController()
  #watcher?: ShareWatcher
  #watcherError?: string
  #timers: Array<ReturnType<typeof setInterval>> = []
  #state: ShareState = 'idle'
  #lastError?: { code: string, message: string, at: number }
  readonly #pathErrors: SharePathError[] = []
  #need = { files: 0, bytes: 0, totalBytes: 0, doneBytes: 0 }
  #lastScanAt?: number
  #lastSyncAt?: number
  #paused = false
  #pending = 0
  #stopped = false

  private constructor (def: ShareDefinition, ctx: ShareSyncContext, index: LocalIndex, history: ShareHistory, head: OwnHead | undefined, peers: Map<string, PeerHead>) {
    this.def = def
    this.#ctx = ctx
    this.index = index
    this.history = history
    this.#head = head
    this.peers = peers
    this.#setServed()
  }

  static async open (def: ShareDefinition, ctx: ShareSyncContext): Promise<ShareSync> {
    const index = await LocalIndex.load(def.id, ctx.records)
    const history = await ShareHistory.load({
      ...ctx.config.history, share: def.id, kv: ctx.records.kv, store: ctx.store, fs: nodeFs, root: def.path, now: ctx.config.now
    })
    return new ShareSync(def, ctx, index, history, await ctx.records.head(def.id), await ctx.records.peerHeads(def.id))
  }

  get head (): OwnHead | undefined {
    return this.#head
  }

  /** Removes leftover temp files, scans, then watches and rescans periodically. */
  start (): void {
    this.#stopped = false
    this.#controller = new AbortController()
    this.#enqueue('start', async (signal) => {
      await cleanupTempFiles(nodeFs, this.def.path, { signal })
      await this.#recoverPending(signal)
      await this.history.prune({ signal })
      await this.#scan(signal)
      // heads received while we were stopped may still need a pull
      for (const device of this.peers.keys()) this.requestPull(device)
    })
    const poll = (): void => { this.requestScan() }
    if (this.#ctx.config.watch) {
      this.#watcher = new ShareWatcher({
        root: this.def.path,
        debounceMs: this.#ctx.config.watchDebounceMs,
        onChange: poll,
        onFailure: (err) => {
          this.#watcherError = `watcher failed (${err.message}): rescanning every ${this.#ctx.config.pollIntervalMs} ms`
          this.#timers.push(setInterval(poll, this.#ctx.config.pollIntervalMs))
          this.requestScan()
          this.#ctx.changed(this.def.id, false)
        }
      })
      this.#watcher.start()
    } else {
      this.#watcherError = 'watching is off'
    }
    const interval = this.#watcher != null && !this.#watcher.failed ? this.#ctx.config.rescanIntervalMs : this.#ctx.config.pollIntervalMs
    this.#timers.push(setInterval(poll, interval))
    this.#timers.push(setInterval(() => { this.#retry() }, this.#ctx.config.retryIntervalMs))
    for (const t of this.#timers) t.unref?.()
  }

  async stop (): Promise<void> {
    this.#stopped = true
    this.#controller.abort()
    this.#watcher?.stop()
    for (const t of this.#timers) clearInterval(t)
    this.#timers = []
    await this.#queue
  }

  requestScan (): void {
    if (this.#scanQueued || this.#stopped) return
    this.#scanQueued = true
    this.#enqueue('scan', async (signal) => {
      this.#scanQueued = false
      await this.#scan(signal)
    })
  }

  requestPull (device: string): void {
    if (this.#pullQueued.has(device) || this.#stopped || this.def.mode === 'send-only') return
    this.#pullQueued.add(device)
    this.#enqueue('pull', async (signal) => {
      this.#pullQueued.delete(device)
      await this.#pull(device, signal)
    })
  }

  /** A verified head from `device` (the device that signed it). Returns whether it was new. */
  async acceptHead (head: Head, signed: Uint8Array): Promise<boolean> {
    const known = this.peers.get(head.device)
    if (known != null && head.seq <= known.seq) return false
    const next: PeerHead = { seq: head.seq, snapshot: head.snapshot, signed, ...(known?.applied != null ? { applied: known.applied } : {}) }
    this.peers.set(head.device, next)
    await this.#ctx.records.putPeerHead(this.def.id, head.device, next)
    this.requestPull(head.device)
    this.#ctx.changed(this.def.id, false)
    return true
  }

  /** A device left the share's swarm: forget its head. */
  async forgetPeer (device: string): Promise<void> {
    if (!this.peers.delete(device)) return
    await this.#ctx.records.deletePeerHead(this.def.id, device)
  }

  /** Is `cid` a block of the snapshot we announce (or the one before)? */
  servesBlock (cid: CID): boolean {
    return this.#served.has(cid.toString())
  }

  /** Waits for the work queued so far (tests, restore). */
  async settled (): Promise<void> {
    await this.#queue
  }

  /** Runs `fn` in the share's queue (between scans and pulls), returning its result. */
  async exclusive<T> (fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const result = Promise.withResolvers<T>()
    this.#enqueue('task', async (signal) => {
      try {
        result.resolve(await fn(signal))
      } catch (err) {
        result.reject(err)
      }
    })
    return result.promise
  }

  /** Work is queued or running (scans, pulls): GC waits for a quiet moment. */
  get busy (): boolean {
    return this.#pending > 0
  }

  #enqueue (what: string, fn: (signal: AbortSignal) => Promise<void>): void {
    this.#pending++
    this.#queue = this.#queue.then(async () => {
      try {
        if (this.#stopped) return
        await fn(this.#controller.signal)
      } catch (err) {
        if (this.#stopped) return
        this.#fail(err as Error)
        log.error('%s of share %s failed: %e', what, this.def.name, err)
      } finally {
        this.#pending--
      }
    })
  }

  #fail (err: Error): void {
    if (err instanceof DiskFullError) {
      this.#paused = true
      this.#state = 'idle'
    } else {
      this.#state = 'error'
    }
    this.#lastError = { code: errorCode(err), message: err.message, at: this.#ctx.config.now() }
    this.#ctx.changed(this.def.id, false)
  }

  #pathError (path: string, error: Error): void {
    this.#pathErrors.push({ path, code: errorCode(error), message: error.message })
    if (this.#pathErrors.length > MAX_STATUS_PATH_ERRORS) this.#pathErrors.splice(0, this.#pathErrors.length - MAX_STATUS_PATH_ERRORS)
  }

  /** Paused (disk full) pulls resume once there is room; failed pulls are tried again. */
  #retry (): void {
    if (this.#paused) {
      void checkFreeSpace(nodeFs, this.def.path, 0, this.#ctx.config.minFreeFraction).then(() => {
        this.#paused = false
        for (const device of this.peers.keys()) this.requestPull(device)
      }, () => {})
      return
    }
    for (const [device, peer] of this.peers) {
      if (peer.applied == null || !peer.applied.equals(peer.snapshot)) this.requestPull(device)
    }
  }

  async #scan (signal: AbortSignal): Promise<void> {
    this.#state = 'scanning'
    const ignore = await loadIgnoreFile(nodeFs, this.def.path)
    const changes: LocalEntry[] = []
    const now = this.#ctx.config.now()
    for await (const r of scanShare({
      fs: nodeFs,
      root: this.def.path,
      chunkFile: this.#ctx.chunkFile,
      // a moved file (same inode, size, mtime) takes its chunks from the index, unread
      indexFile: async (path, chunks, options) => this.#ctx.store.indexFile(path, chunks, options),
      previous: this.index,
      ignore
    }, { signal })) {
      if (r.kind === 'entry') {
        const next = entryFromScan(this.index.get(r.entry.path), r.entry, this.#ctx.self)
        if (next != null) changes.push(next)
      } else if (r.kind === 'deleted') {
        const prev = this.index.get(r.path)
        if (prev != null) changes.push(tombstoneFromScan(prev, this.#ctx.self, now))
      } else {
        this.#pathError(r.path, r.error)
      }
    }
    await this.index.set(changes)
    this.#lastScanAt = this.#ctx.config.now()
    await this.#publish()
    this.#settle()
  }

  #settle (): void {
    this.#state = 'idle'
    // a paused share keeps saying why until the pull goes through
    if (!this.#paused) this.#lastError = undefined
    this.#ctx.changed(this.def.id, false)
  }

  /** A new snapshot and signed head when the index changed (or there is none yet). */
  async #publish (): Promise<void> {
    const snapshot = await encodeSnapshot(this.index.shareEntries())
    if (this.#head?.root.equals(snapshot.root) === true) return
    const seq = (this.#head?.seq ?? 0) + 1
    const head: Head = { share: this.def.id, device: this.#ctx.self, seq, snapshot: snapshot.root }
    const signed = await signHead(head, this.#ctx.privateKey)
    const blocks = snapshot.blocks.map(b => b.cid)
    const keep = new Set([...blocks, ...(this.#head?.blocks ?? [])].map(c => c.toString()))
    const ops: KvOperation[] = snapshot.blocks.map(b => ({ type: 'put', key: shareKeys.block(this.def.id, b.cid), value: b.bytes }))
    for (const cid of this.#head?.prev?.blocks ?? []) {
      if (!keep.has(cid.toString())) ops.push({ type: 'del', key: shareKeys.block(this.def.id, cid) })
    }
    const next: OwnHead = { seq, root: snapshot.root, signed, blocks, ...(this.#head != null ? { prev: { root: this.#head.root, blocks: this.#head.blocks } } : {}) }
    ops.push({ type: 'put', key: shareKeys.head(this.def.id), value: encodeRecord(next) })
    await this.#ctx.records.kv.batch(ops)
    this.#head = next
    this.#setServed()
    log('share %s: head %d, snapshot %c', this.def.name, seq, snapshot.root)
    this.#ctx.changed(this.def.id, true)
  }

  #setServed (): void {
    this.#served = new Set([...(this.#head?.blocks ?? []), ...(this.#head?.prev?.blocks ?? [])].map(c => c.toString()))
  }

  async #pull (device: string, signal: AbortSignal): Promise<void> {
    const peer = this.peers.get(device)
    if (peer == null || this.#paused) return
    if (this.#head?.root.equals(peer.snapshot) === true || peer.applied?.equals(peer.snapshot) === true) {
      await this.#markApplied(device, peer)
      return
    }
    this.#state = 'syncing'
    this.#ctx.changed(this.def.id, false)
    const blocks = new RemoteSnapshotBlocks({
      local: async (cid) => this.#ctx.records.block(this.def.id, cid),
      remote: this.#ctx.fetchBlocks(this.def, device)
    })
    const started = Date.now()
    await blocks.prefetch(peer.snapshot, { signal })
    const remote = await loadSnapshot(peer.snapshot, blocks, { signal })
    const loaded = Date.now()
    const plan = await planPull({
      local: this.index,
      remote,
      has: async (cid) => this.#ctx.store.has(cid, { signal }),
      ignore: await loadIgnoreFile(nodeFs, this.def.path)
    }, { signal })
    for (const e of plan.errors) this.#pathError(e.path, e.error)
    const planned = Date.now()
    const ok = await this.#apply(plan, device, signal)
    if (ok) await this.#markApplied(device, peer)
    const applied = Date.now()
    this.#lastSyncAt = this.#ctx.config.now()
    await this.#publish()
    log('share %s: pull from %s: snapshot %d ms, plan %d ms (%d steps, %d chunks to fetch), apply %d ms, publish %d ms',
      this.def.name, device, loaded - started, planned - loaded, plan.steps.length, plan.fetch.length, applied - planned, Date.now() - applied)
    this.#settle()
  }

  /**
   * Files renamed into place by a pull that stopped before the index
   * recorded them (kill -9, power loss): the same inode under the name is
   * that version, not a local edit (which would conflict with its sender).
   */
  async #recoverPending (signal: AbortSignal): Promise<void> {
    const recovered: LocalEntry[] = []
    const done: KvOperation[] = []
    for await (const [key, value] of this.#ctx.records.kv.entries(shareKeys.pendings(this.def.id))) {
      signal.throwIfAborted()
      done.push({ type: 'del', key })
      const { ino, entries } = decodeRecord<{ ino: number, entries: Uint8Array[] }>(value)
      const [entry, ...moved] = entries.map(decodeEntry)
      const stat = await nodeFs.lstat(`${this.def.path}/${entry.path}`).catch(() => undefined)
      if (stat?.ino !== ino || stat.type !== entry.type || stat.size !== entry.size) continue
      // a move's source tombstone comes with it: the rename took the file away from there
      recovered.push(withLocal(entry, stat), ...moved)
    }
    if (done.length === 0) return
    await this.index.set(recovered, done)
    for (const e of recovered) await this.indexWritten(e, { signal })
    log('share %s: %d files renamed into place before a stop are recorded', this.def.name, recovered.filter(e => e.deleted !== true).length)
  }

  async #markApplied (device: string, peer: PeerHead): Promise<void> {
    if (peer.applied?.equals(peer.snapshot) === true) return
    peer.applied = peer.snapshot
    await this.#ctx.records.putPeerHead(this.def.id, device, peer)
  }

  /** Applies a plan; true when every step succeeded. Local edits seen on the way ask for a scan. */
  async #apply (plan: PullPlan, device: string | undefined, signal: AbortSignal, forget = new Set<string>()): Promise<boolean> {
    const writes = plan.steps.filter(s => s.action === 'write-file')
    this.#need = { files: writes.length, bytes: 0, totalBytes: writes.reduce((n, s) => n + s.entry.size, 0), doneBytes: 0 }
    this.#need.bytes = this.#need.totalBytes
    const sizes = new Map(writes.map(s => [s.path, s.entry.size]))
    const onProgress = (evt: ApplyProgressEvents): void => {
      // a write-file step done (or failed): either way it is no longer needed
      // a file that failed is still needed: status keeps counting it until a pull brings it
      if (evt.type === 'sync:apply:done' && evt.detail.action === 'write-file' && evt.detail.ok) this.#doneWrite(sizes.get(evt.detail.path) ?? 0)
    }
    const root = this.def.path
    const result = await applyPlan(plan, {
      fs: nodeFs,
      root,
      minFreeFraction: this.#ctx.config.minFreeFraction,
      reader: { get: async (cid, options) => this.#ctx.store.get(cid, options).catch(() => undefined) },
      fetcher: { fetch: async (cids, options) => this.#ctx.fetchChunks(this.def, cids, device, options ?? {}) },
      beforeReplace: async (old, next, options) => this.history.keep(old, next.deleted === true ? 'deleted' : 'replaced', options.movedTo ?? next, options),
      beforeRenames: async (pending) => {
        await this.#ctx.records.kv.batch(pending.map(p => ({
          type: 'put', key: shareKeys.pending(this.def.id, p.path), value: encodeRecord({ ino: p.ino, entries: p.entries.map(encodeEntry) })
        })))
      },
      onApplied: async (entries, options) => {
        const gone = entries.filter(e => forget.has(e.path))
        const kept = entries.filter(e => !forget.has(e.path))
        await this.index.delete(gone.map(e => e.path))
        await this.index.set(kept, entries.map(e => ({ type: 'del', key: shareKeys.pending(this.def.id, e.path) })))
        await eachLimit(kept.filter(e => e.local != null), APPLY_IO_CONCURRENCY, async e => { await this.indexWritten(e, options) })
      }
    }, { signal, onProgress })
    // replaced and deleted versions went to history, which may have pruned older ones: their blocks can go
    if (plan.steps.some(s => s.action !== 'record' && s.expect != null)) this.#ctx.gcWanted()
    for (const e of result.errors) this.#pathError(e.path, e.error)
    if (result.errors.some(e => e.error instanceof LocalChangedError)) this.requestScan()
    return result.errors.length === 0
  }

  /**
   * A file apply just wrote now serves its chunks from the store (kept
   * history versions rely on it for the chunks they share with it). A
   * failure only means they are read from elsewhere (the scan indexes it).
   */
  async indexWritten (entry: ShareEntry, options: AbortOptions): Promise<void> {
    if (entry.type !== 'file' || entry.deleted === true) return
    const offsets = chunkOffsets(entry.chunks ?? [])
    const chunks = (entry.chunks ?? []).map((c, i) => ({ cid: c.cid, offset: offsets[i], length: c.length }))
    await this.#ctx.store.indexFile(`${this.def.path}/${entry.path}`, chunks, options).catch(err => { log('indexing %s failed: %e', entry.path, err) })
  }

  #doneWrite (size: number): void {
    this.#need.files = Math.max(0, this.#need.files - 1)
    this.#need.bytes = Math.max(0, this.#need.bytes - size)
    this.#need.doneBytes += size
  }

  /**
   * Receive-only: puts back the remote version of every file changed here
   * (read from the snapshots of the members online now) and removes local
   * additions. Kept versions of what is reverted go to history.
   */
  async revert (snapshots: Array<{ device: string, entries: ShareEntry[] }>, signal: AbortSignal): Promise<number> {
    const best = new Map<string, ShareEntry>()
    for (const { entries } of snapshots) {
      for (const e of entries) {
        const have = best.get(e.path)
        if (have == null || compareVersions(e.version, have.version) === 'greater') best.set(e.path, e)
      }
    }
    const changed = [...this.index.values()].filter(e => e.modifiedBy === this.#ctx.self)
    if (changed.length === 0) return 0
    const hidden = new Set(changed.map(e => e.path))
    const view = {
      get: (path: string) => hidden.has(path) ? undefined : this.index.get(path),
      values: () => [...this.index.values()].filter(e => !hidden.has(e.path))
    }
    const remote = changed.map(e => best.get(e.path)).filter((e): e is ShareEntry => e != null)
    const plan = await planPull({ local: view, remote, has: async (cid) => this.#ctx.store.has(cid, { signal }) }, { signal })
    const forget = new Set<string>()
    plan.steps = plan.steps.map((step): PlanStep => {
      const local = this.index.get(step.path)
      const live = local != null && local.deleted !== true ? local : undefined
      if (step.action === 'record' && step.entry.deleted === true && live != null) return { action: 'delete', path: step.path, entry: step.entry, expect: live }
      return { ...step, expect: live } as PlanStep
    })
    for (const local of changed) {
      if (best.has(local.path)) continue
      forget.add(local.path)
      if (local.deleted !== true) plan.steps.push({ action: 'delete', path: local.path, entry: { ...local, deleted: true }, expect: local })
      else plan.steps.push({ action: 'record', path: local.path, entry: local, expect: local })
    }
    // deletes of additions deepest first, after the writes
    await this.#apply(plan, undefined, signal, forget)
    await this.#publish()
    this.#settle()
    return changed.length
  }

  status (peers: Array<{ device: string, name?: string, online: boolean }>): Omit<ShareStatus, 'share'> {
    let files = 0
    let bytes = 0
    let locallyChanged = 0
    for (const e of this.index.values()) {
      if (e.deleted !== true && e.type === 'file') {
        files++
        bytes += e.size
      }
      if (this.def.mode === 'receive-only' && e.modifiedBy === this.#ctx.self) locallyChanged++
    }
    const root = this.#head?.root
    const peerStatus: SharePeerStatus[] = peers.map(p => {
      const head = this.peers.get(p.device)
      return {
        ...p,
        ...(head != null ? { seq: head.seq, snapshot: head.snapshot.toString() } : {}),
        inSync: head != null && root != null && head.snapshot.equals(root),
        applied: head?.applied != null && head.applied.equals(head.snapshot)
      }
    })
    const pulling = this.#state === 'syncing' || this.#state === 'error' || this.#paused
    return {
      state: this.#paused ? 'paused' : this.#state,
      files,
      bytes,
      needFiles: pulling ? this.#need.files : 0,
      needBytes: pulling ? this.#need.bytes : 0,
      progress: pulling && this.#need.totalBytes > 0 ? this.#need.doneBytes / this.#need.totalBytes : 1,
      ...(this.#head != null ? { head: { seq: this.#head.seq, snapshot: this.#head.root.toString() } } : {}),
      peers: peerStatus,
      locallyChanged,
      ...(this.#lastError != null ? { lastError: this.#lastError } : {}),
      pathErrors: [...this.#pathErrors],
      watcher: this.#watcher != null && !this.#watcher.failed ? 'watching' : 'polling',
      ...(this.#watcherError != null ? { watcherError: this.#watcherError } : {}),
      ...(this.#lastScanAt != null ? { lastScanAt: this.#lastScanAt } : {}),
      ...(this.#lastSyncAt != null ? { lastSyncAt: this.#lastSyncAt } : {}),
      historyBytes: this.history.bytes
    }
  }
}

