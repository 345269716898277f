/**
 * The sync of one share on this device: scans (on start, on watcher events,
 * periodically) turn local changes into new versions, a snapshot and a
 * signed head; newer heads from other members are pulled (snapshot read and
 * verified, plan against the local index, chunks copied or fetched, atomic
 * apply, index: head-pulls.ts). Scans and pulls of a share are queued one
 * at a time; a pull's apply may go on beside the next pulls (on other
 * paths: see pull-runs.ts), and a scan waits for every apply, so it never
 * sees a file apply wrote before the index records it. A long scan
 * publishes partial heads (partial-heads.ts).
 */
import { bytesKey } from '@homecloud/exchange'
import { logger } from '@libp2p/logger'
import { applyPlan, checkFreeSpace, cleanupTempFiles, type ApplyProgressEvents, type ApplyResult, type AppliedOptions } from './apply.js'
import { ChunkUnavailableError, DiskFullError, errorCode, LocalChangedError } from './errors.js'
import { nodeFs } from './fs.js'
import { signHead, type Head } from './head.js'
import { HeadPulls } from './head-pulls.js'
import { loadIgnoreFile } from './ignore.js'
import { entryFromScan, tombstoneFromScan } from './local-change.js'
import type { PlanInit, PullPlan } from './plan.js'
import { planRevert } from './revert.js'
import { MAX_STATUS_PATH_ERRORS } from './constants.js'
import { encodeEntry, encodeRecord, shareKeys, type OwnHead, type PeerHead, type ShareDefinition } from './share-state.js'
import { LocalIndex } from './local-index.js'
import { PartialHeads } from './partial-heads.js'
import { recoverPendingRenames } from './pending-renames.js'
import { PullRuns } from './pull-runs.js'
import type { RefusedRecord } from './refused-entries.js'
import { ShareHistory } from './history.js'
import type { ShareSyncContext } from './share-sync-context.js'
import { ShareWatcher } from './watcher.js'
import { chunkOffsets, type LocalEntry, type ShareEntry } from './entry.js'
import { scanShare } from './scanner.js'
import { shareStatus, type MemberStatus } from './share-status.js'
import type { KvOperation } from './share-kv.js'
import type { SharePathError, ShareRevertResult, ShareState, ShareStatus } from './share-types.js'
import type { AbortOptions } from '@homecloud/interface'
import type { CID } from 'multiformats/cid'

const log = logger('homecloud:sync:share')

export type { ShareSyncConfig, ShareSyncContext } from './share-sync-context.js'

/** What a share's sync starts from: its records as the last run left them. */
interface StoredState {
  head?: OwnHead
  peers: Map<string, PeerHead>
  /** Members' heads with entries refused for good. */
  refused: Map<string, RefusedRecord>
}

export class ShareSync {
  readonly def: ShareDefinition
  readonly #ctx: ShareSyncContext
  readonly index: LocalIndex
  readonly history: ShareHistory
  #head?: OwnHead
  /** The blocks of our current and previous snapshot (`bytesKey`s): the only ones served, and all the store holds. */
  #served = new Set<string>()
  readonly peers: Map<string, PeerHead>
  #queue: Promise<void> = Promise.resolve()
  #scanQueued = false
  /** Folders the next scan covers (what the watcher saw change); undefined: the whole share. */
  #scanScope: Set<string> | undefined = new Set()
  #controller = new AbortController()
  #watcher?: ShareWatcher
  #watcherError?: string
  #timers: Array<ReturnType<typeof setInterval>> = []
  #state: ShareState = 'idle'
  #lastError?: { code: string, message: string, at: number }
  readonly #pathErrors: SharePathError[] = []
  readonly #runs = new PullRuns()
  readonly #pulls: HeadPulls
  #scanAfterRuns = false
  /** Heads are made one at a time (pulls end side by side): each seq once. */
  #publishing: Promise<void> = Promise.resolve()
  #need = { files: 0, bytes: 0, totalBytes: 0, doneBytes: 0 }
  #lastScanAt?: number
  #lastSyncAt?: number
  #paused = false
  #pending = 0
  #stopped = false

  private constructor (def: ShareDefinition, ctx: ShareSyncContext, index: LocalIndex, history: ShareHistory, stored: StoredState) {
    this.def = def
    this.#ctx = ctx
    this.index = index
    this.history = history
    this.#head = stored.head
    this.peers = stored.peers
    this.#pulls = this.#headPulls(stored.refused)
    this.#setServed()
  }

  /** The pulls of members' heads, over this share's queue, index and status. */
  #headPulls (refused: StoredState['refused']): HeadPulls {
    return new HeadPulls({
      def: this.def,
      ctx: this.#ctx,
      index: this.index,
      peers: this.peers,
      runs: this.#runs,
      ownRoot: () => this.#head?.root,
      paused: () => this.#paused,
      stopped: () => this.#stopped,
      enqueue: (fn) => { this.#enqueue('pull', fn) },
      syncing: () => {
        this.#state = 'syncing'
        this.#ctx.changed(this.def.id, false)
      },
      pathError: (path, error) => { this.#pathError(path, error) },
      storeLookups: (signal) => this.#storeLookups(signal),
      apply: async (plan, device, signal) => this.#apply(plan, device, signal),
      pulled: async () => {
        this.#lastSyncAt = this.#ctx.config.now()
        await this.#publish()
      },
      settle: () => { this.#settle() },
      fail: (err) => { this.#fail(err) },
      runStarted: () => {
        this.#pending++
        return () => {
          this.#pending--
          this.#afterRuns()
        }
      }
    }, refused)
  }

  static async open (def: ShareDefinition, ctx: ShareSyncContext): Promise<ShareSync> {
    const index = await LocalIndex.load(def.id, ctx.records)
    const history = await ShareHistory.load({
      ...ctx.config.history, share: def.id, kv: ctx.records.kv, store: ctx.store, fs: nodeFs, root: def.path, now: ctx.config.now
    })
    return new ShareSync(def, ctx, index, history, {
      head: await ctx.records.head(def.id),
      peers: await ctx.records.peerHeads(def.id),
      refused: await ctx.records.refused(def.id)
    })
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
      this.#scanScope = new Set()
      await this.#scan(signal)
      // heads received while we were stopped may still need a pull
      for (const device of this.peers.keys()) this.requestPull(device)
    })
    const poll = (): void => { this.requestScan() }
    if (this.#ctx.config.watch) {
      this.#watcher = new ShareWatcher({
        root: this.def.path,
        debounceMs: this.#ctx.config.watchDebounceMs,
        onChange: (folders) => { this.requestScan(folders) },
        // the scan of everything is asked for by onChange; status says why it came
        onOverflow: (events) => {
          this.#watcherError = `the kernel's watch queue overflowed at ${new Date().toISOString()} (${events} events at once, fs.inotify.max_queued_events): rescanned everything`
        },
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
    await this.settled()
  }

  /** Scans `folders` (share-relative, with all below them) or, without them, the whole share. */
  requestScan (folders?: Iterable<string>): void {
    if (folders === undefined) this.#scanScope = undefined
    else for (const folder of folders) this.#scanScope?.add(folder)
    if (this.#scanQueued || this.#stopped) return
    // a scan waits for the pulls applying: asked for when they end, it does not hold up the pulls behind it
    if (this.#runs.size > 0) {
      this.#scanAfterRuns = true
      return
    }
    this.#scanQueued = true
    this.#enqueue('scan', async (signal) => {
      this.#scanQueued = false
      // pulls began applying since: the scan comes after them, not in front of the pulls queued behind it
      if (this.#runs.size > 0) {
        this.#scanAfterRuns = true
        return
      }
      const scope = this.#scanScope
      this.#scanScope = new Set()
      await this.#scan(signal, scope === undefined ? undefined : [...scope])
    })
  }

  requestPull (device: string): void {
    this.#pulls.request(device)
  }

  /** A verified head from `device` (the device that signed it). Returns whether it was new. */
  async acceptHead (head: Head, signed: Uint8Array): Promise<boolean> {
    return this.#pulls.acceptHead(head, signed)
  }

  /**
   * A member came online (a new connection) or has a new head in a share of
   * this share's swarm: the chunks no member served may be served now.
   */
  sourcesChanged (): void {
    this.#pulls.sourcesChanged()
  }

  /** A device left the share's swarm: forget its head. */
  async forgetPeer (device: string): Promise<void> {
    await this.#pulls.forget(device)
  }

  /** Is `cid` a block of the snapshot we announce (or the one before)? */
  servesBlock (cid: CID): boolean {
    return this.#served.has(bytesKey(cid.bytes))
  }

  /** Waits for the work queued so far (tests, restore). */
  async settled (): Promise<void> {
    for (;;) {
      const queue = this.#queue
      await queue
      await this.#runs.idle()
      this.#afterRuns()
      if (queue === this.#queue && this.#runs.size === 0) return
    }
  }

  /** Once no pull is applying: the scans and pulls that waited for that. */
  #afterRuns (): void {
    if (this.#runs.size > 0 || this.#stopped) return
    if (this.#scanAfterRuns) {
      this.#scanAfterRuns = false
      this.requestScan([])
    }
    this.#pulls.runsEnded()
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
        // only a pull runs beside the applies of earlier pulls (on other paths); a scan steps aside itself
        if (what !== 'pull' && what !== 'scan') await this.#runs.idle()
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

  /** The latest error of a path (one per path: a retry replaces it rather than pushing the others out). */
  #pathError (path: string, error: Error): void {
    this.#clearPathError(path)
    this.#pathErrors.push({ path, code: errorCode(error), message: error.message })
    if (this.#pathErrors.length > MAX_STATUS_PATH_ERRORS) this.#pathErrors.splice(0, this.#pathErrors.length - MAX_STATUS_PATH_ERRORS)
  }

  #clearPathError (path: string): void {
    const known = this.#pathErrors.findIndex(e => e.path === path)
    if (known !== -1) this.#pathErrors.splice(known, 1)
  }

  /** Paused (disk full) pulls resume once there is room; failed pulls are tried again (those waiting for chunks no member served less often: PullBackoff). */
  #retry (): void {
    if (this.#paused) {
      void checkFreeSpace(nodeFs, this.def.path, 0, this.#ctx.config.minFreeFraction).then(() => {
        this.#paused = false
        for (const device of this.peers.keys()) this.requestPull(device)
      }, () => {})
      return
    }
    this.#pulls.retry()
  }

  /** Scans the share, or only `scope` (see ScanInit.scope). */
  async #scan (signal: AbortSignal, scope?: string[]): Promise<void> {
    this.#state = 'scanning'
    const ignore = await loadIgnoreFile(nodeFs, this.def.path)
    const changes: LocalEntry[] = []
    const now = this.#ctx.config.now()
    const moves = new Set<string>()
    const partial = new PartialHeads({
      changes,
      signal,
      afterMs: this.#ctx.config.partialHeadAfterMs,
      hold: (e) => moves.has(e.path),
      flush: async (entries) => {
        const started = Date.now()
        await this.index.set(entries)
        await this.#publish()
        log('share %s: partial head of a scan (%d changes so far) in %d ms', this.def.name, changes.length, Date.now() - started)
      }
    })
    try {
      for await (const r of scanShare({
        fs: nodeFs,
        root: this.def.path,
        chunkFile: this.#ctx.chunkFile,
        // a moved file (same inode, size, mtime) takes its chunks from the index, unread
        indexFile: async (path, chunks, options) => this.#ctx.store.indexFile(path, chunks, options),
        previous: this.index,
        ignore,
        scope
      }, { signal })) {
        if (r.kind === 'entry') {
          const next = entryFromScan(this.index.get(r.entry.path), r.entry, this.#ctx.self)
          // a move goes out whole, with its source's tombstone, in the final head
          if (r.entry.movedFrom != null) moves.add(r.entry.path).add(r.entry.movedFrom)
          if (next != null) changes.push(next)
        } else if (r.kind === 'deleted') {
          const prev = this.index.get(r.path)
          if (prev != null) changes.push(tombstoneFromScan(prev, this.#ctx.self, now))
        } else {
          this.#pathError(r.path, r.error)
        }
      }
    } finally {
      await partial.stop()
    }
    await this.index.set(partial.rest())
    // a local change may be what lets a refused entry through now
    if (changes.length > 0) await this.#pulls.localChanged()
    this.#lastScanAt = this.#ctx.config.now()
    await this.#publish()
    this.#settle()
  }

  #settle (): void {
    // files still wait for chunks no member serves: the folder is not complete, whatever run just ended
    const waiting = this.#pulls.waiting().files
    if (waiting > 0 && !this.#paused) {
      this.#fail(new ChunkUnavailableError(`${waiting === 1 ? '1 file waits' : `${waiting} files wait`} for chunks no member online serves`))
      return
    }
    this.#state = 'idle'
    // a paused share keeps saying why until the pull goes through
    if (!this.#paused) this.#lastError = undefined
    this.#ctx.changed(this.def.id, false)
  }

  /** A new snapshot and signed head when the index changed (or there is none yet). */
  async #publish (): Promise<void> {
    const run = this.#publishing.then(async () => { await this.#publishNow() })
    this.#publishing = run.catch(() => {})
    await run
  }

  async #publishNow (): Promise<void> {
    // the blocks served are those stored: only the others are built and written
    const snapshot = await this.index.encodeSnapshot(cid => this.#served.has(bytesKey(cid.bytes)))
    if (this.#head?.root.equals(snapshot.root) === true) return
    const seq = (this.#head?.seq ?? 0) + 1
    const head: Head = { share: this.def.id, device: this.#ctx.self, seq, snapshot: snapshot.root }
    const signed = await signHead(head, this.#ctx.privateKey)
    const blocks = snapshot.cids
    const keep = new Set([...blocks, ...(this.#head?.blocks ?? [])].map(c => bytesKey(c.bytes)))
    const ops: KvOperation[] = snapshot.blocks.map(b => ({ type: 'put', key: shareKeys.block(this.def.id, b.cid), value: b.bytes }))
    for (const cid of this.#head?.prev?.blocks ?? []) {
      if (!keep.has(bytesKey(cid.bytes))) ops.push({ type: 'del', key: shareKeys.block(this.def.id, cid) })
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
    this.#served = new Set([...(this.#head?.blocks ?? []), ...(this.#head?.prev?.blocks ?? [])].map(c => bytesKey(c.bytes)))
  }

  /** Files renamed into place by a pull that stopped before the index recorded them (pending-renames.ts). */
  async #recoverPending (signal: AbortSignal): Promise<void> {
    const recovered = await recoverPendingRenames({ share: this.def.id, root: this.def.path, records: this.#ctx.records, index: this.index, fs: nodeFs }, signal)
    await this.indexAllWritten(recovered, { signal })
    if (recovered.length > 0) log('share %s: %d files renamed into place before a stop are recorded', this.def.name, recovered.filter(e => e.deleted !== true).length)
  }

  /** How a plan asks the store about chunks no local file holds: all at once where the store can. */
  #storeLookups (signal: AbortSignal): Pick<PlanInit, 'hasMany'> {
    const { store } = this.#ctx
    return { hasMany: async (cids) => store.hasMany(cids, { signal }) }
  }

  /** Applies a plan; returns the steps that failed. Local edits seen on the way ask for a scan. */
  async #apply (plan: PullPlan, device: string | undefined, signal: AbortSignal, forget = new Set<string>()): Promise<ApplyResult['errors']> {
    const writes = plan.steps.filter(s => s.action === 'write-file')
    const total = writes.reduce((n, s) => n + s.entry.size, 0)
    // pulls applying side by side add up
    if (this.#runs.size === 0) this.#need = { files: 0, bytes: 0, totalBytes: 0, doneBytes: 0 }
    this.#need.files += writes.length
    this.#need.bytes += total
    this.#need.totalBytes += total
    const sizes = new Map(writes.map(s => [s.path, s.entry.size]))
    const onProgress = (evt: ApplyProgressEvents): void => {
      if (evt.type !== 'sync:apply:done' || !evt.detail.ok) return
      // a file that failed is still needed: status keeps counting it until a pull brings it
      if (evt.detail.action === 'write-file') this.#doneWrite(sizes.get(evt.detail.path) ?? 0)
      // an error of a path that is fine now is no longer news
      this.#clearPathError(evt.detail.path)
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
        await this.indexAllWritten(kept.filter(e => e.local != null), options)
      }
    }, { signal, onProgress })
    // replaced and deleted versions went to history, which may have pruned older ones: their blocks can go
    if (plan.steps.some(s => s.action !== 'record' && s.expect != null)) this.#ctx.gcWanted()
    for (const e of result.errors) this.#pathError(e.path, e.error)
    if (result.errors.some(e => e.error instanceof LocalChangedError)) this.requestScan()
    return result.errors
  }

  /** A file apply just wrote: `indexAllWritten` of one. */
  async indexWritten (entry: ShareEntry, options: AbortOptions): Promise<void> {
    await this.indexAllWritten([entry], options)
  }

  /**
   * Files apply just wrote now serve their chunks from the store (kept
   * history versions rely on it for the chunks they share with them), all
   * recorded in few index writes (one for a batch of small files). A failure
   * only means they are read from elsewhere (the scan indexes them).
   */
  async indexAllWritten (entries: ShareEntry[], options: AppliedOptions): Promise<void> {
    const files = entries.filter(e => e.type === 'file' && e.deleted !== true).map(e => {
      const offsets = chunkOffsets(e.chunks ?? [])
      // apply's fstat of the file it wrote: the store records that, not a later lstat of the path
      const stat = options.stats?.get(e.path)
      return { path: `${this.def.path}/${e.path}`, chunks: (e.chunks ?? []).map((c, i) => ({ cid: c.cid, offset: offsets[i], length: c.length })), ...(stat != null ? { stat } : {}) }
    })
    if (files.length === 0) return
    try {
      for (const { path, error } of await this.#ctx.store.indexFiles(files, options)) log('indexing %s failed: %e', path, error)
    } catch (err) {
      log('indexing %d files failed: %e', files.length, err)
    }
  }

  #doneWrite (size: number): void {
    this.#need.files = Math.max(0, this.#need.files - 1)
    this.#need.bytes = Math.max(0, this.#need.bytes - size)
    this.#need.doneBytes += size
  }

  /**
   * Receive-only: scans (a change the watcher has not reported yet is
   * reverted too), then puts back the remote version of every path changed
   * here (read from the snapshots of the members online now), type changes
   * included (revert.ts), and removes local additions. Kept versions of what
   * is reverted go to history; files the index never knew stay, and the
   * path that holds them fails with their names. Returns how many changed
   * paths were reverted, and the paths that failed with why (status names
   * them too).
   */
  async revert (snapshots: Array<{ device: string, entries: ShareEntry[] }>, signal: AbortSignal): Promise<ShareRevertResult> {
    await this.#scan(signal)
    const { plan, changed, forget } = await planRevert({
      local: this.index,
      self: this.#ctx.self,
      snapshots: snapshots.map(s => s.entries),
      ...this.#storeLookups(signal)
    }, { signal })
    if (changed.length === 0) return { reverted: 0, failed: [], failedTotal: 0 }
    const errors = [...plan.errors, ...await this.#apply(plan, undefined, signal, forget)]
    // per path the first error says why: a later step of the path (what replaces a directory still holding files) fails only because of it
    const first = new Map<string, Error>()
    for (const e of errors) if (!first.has(e.path)) first.set(e.path, e.error)
    for (const [path, error] of first) this.#pathError(path, error)
    await this.#publish()
    this.#settle()
    const failed = [...first].slice(0, MAX_STATUS_PATH_ERRORS).map(([path, error]) => ({ path, code: errorCode(error), message: error.message }))
    return { reverted: changed.filter(p => !first.has(p)).length, failed, failedTotal: first.size }
  }

  status (peers: MemberStatus[]): Omit<ShareStatus, 'share'> {
    return shareStatus({
      counts: this.index.counts(this.#ctx.self),
      mode: this.def.mode,
      ...(this.#head != null ? { head: this.#head } : {}),
      peerHeads: this.peers,
      state: this.#state,
      paused: this.#paused,
      need: this.#need,
      ...(this.#lastError != null ? { lastError: this.#lastError } : {}),
      pathErrors: this.#pathErrors,
      watching: this.#watcher != null && !this.#watcher.failed,
      ...(this.#watcherError != null ? { watcherError: this.#watcherError } : {}),
      ...(this.#lastScanAt != null ? { lastScanAt: this.#lastScanAt } : {}),
      ...(this.#lastSyncAt != null ? { lastSyncAt: this.#lastSyncAt } : {}),
      historyBytes: this.history.bytes,
      waiting: this.#pulls.waiting()
    }, peers)
  }
}
