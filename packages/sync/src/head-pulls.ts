/**
 * The pulls of other members' heads into one share: which head is pulled
 * when, and one pull from start to end. The snapshot is read and verified;
 * entries a pull still applying touches are held for the next pull
 * (pull-runs.ts); the rest is planned against the local index and applied
 * beside the share's queue. Then the outcome decides what comes next: the
 * head is applied; or its entries refused for good are not pulled again
 * until it changes (refused-entries.ts); or it is retried, less and less
 * often when only chunks no member serves were missing (pull-backoff.ts).
 */
import { logger } from '@libp2p/logger'
import { UNAVAILABLE_RETRY_MAX_MS } from './constants.js'
import { ChunkUnavailableError } from './errors.js'
import { nodeFs } from './fs.js'
import { loadIgnoreFile } from './ignore.js'
import { planPull, type PlanInit, type PullPlan } from './plan.js'
import { PullBackoff, type PullBackoffSummary } from './pull-backoff.js'
import { isPermanentEntryError, RefusedEntries, type RefusedRecord } from './refused-entries.js'
import { RemoteSnapshotBlocks } from './remote-snapshot.js'
import { loadSnapshot } from './snapshot.js'
import type { ApplyResult } from './apply.js'
import type { Head } from './head.js'
import type { LocalIndex } from './local-index.js'
import type { PullRuns } from './pull-runs.js'
import type { PeerHead, ShareDefinition } from './share-state.js'
import type { ShareSyncContext } from './share-sync.js'
import type { CID } from 'multiformats/cid'

const log = logger('homecloud:sync:share')

/** What the pulls use of their share's sync. */
export interface PullHost {
  readonly def: ShareDefinition
  readonly ctx: ShareSyncContext
  readonly index: LocalIndex
  /** The members' newest heads. */
  readonly peers: Map<string, PeerHead>
  readonly runs: PullRuns
  /** The snapshot of this device's own head. */
  ownRoot(): CID | undefined
  /** Disk full: no pull until there is room. */
  paused(): boolean
  stopped(): boolean
  /** Runs `fn` in the share's queue (between scans). */
  enqueue(fn: (signal: AbortSignal) => Promise<void>): void
  /** A pull starts: status says so. */
  syncing(): void
  pathError(path: string, error: Error): void
  storeLookups(signal: AbortSignal): Pick<PlanInit, 'hasMany'>
  /** Applies a plan; returns the steps that failed. */
  apply(plan: PullPlan, device: string, signal: AbortSignal): Promise<ApplyResult['errors']>
  /** A pull's apply ended: a new head of ours when the index changed. */
  pulled(): Promise<void>
  /** The last pull applying ended: the share is idle. */
  settle(): void
  fail(err: Error): void
  /** An apply starts beside the queue; call the function returned once it (and its bookkeeping) ended. */
  runStarted(): () => void
}

export class HeadPulls {
  readonly #host: PullHost
  readonly #queued = new Set<string>()
  readonly #refused: RefusedEntries
  /** Members whose refused entries are kept in the share's records (so a restart does not pull such a head again). */
  readonly #kept: Set<string>
  /** Heads whose last pull failed only for chunks no member served: retried less and less often. */
  readonly #unavailable: PullBackoff
  /** Members whose head is pulled again once no pull is applying. */
  readonly #afterRuns = new Set<string>()

  /** `refused`: what the share's records kept of refused entries (ShareRecords.refused). */
  constructor (host: PullHost, refused: ReadonlyMap<string, RefusedRecord> = new Map()) {
    this.#host = host
    this.#refused = new RefusedEntries(refused)
    this.#kept = new Set(refused.keys())
    this.#unavailable = new PullBackoff({ interval: host.ctx.config.retryIntervalMs, max: UNAVAILABLE_RETRY_MAX_MS })
  }

  /** Queues a pull of `device`'s newest head (once, however often asked before it runs). */
  request (device: string): void {
    const host = this.#host
    if (this.#queued.has(device) || host.stopped() || host.def.mode === 'send-only') return
    this.#queued.add(device)
    host.enqueue(async (signal) => {
      this.#queued.delete(device)
      await this.#pull(device, signal)
    })
  }

  /** A verified head from `device` (the device that signed it). Returns whether it was new. */
  async acceptHead (head: Head, signed: Uint8Array): Promise<boolean> {
    const { peers, ctx, def } = this.#host
    const known = peers.get(head.device)
    if (known != null && head.seq <= known.seq) return false
    const next: PeerHead = { seq: head.seq, snapshot: head.snapshot, signed, ...(known?.applied != null ? { applied: known.applied } : {}) }
    peers.set(head.device, next)
    // a new head (of any member) may be what brings the missing chunks
    this.#unavailable.clear()
    await ctx.records.putPeerHead(def.id, head.device, next)
    this.request(head.device)
    ctx.changed(def.id, false)
    return true
  }

  /** The chunks no member served may be served now: heads waiting for them are retried at the next retry. */
  sourcesChanged (): void {
    this.#unavailable.clear()
  }

  /** A device left the share's swarm: forget its head. */
  async forget (device: string): Promise<void> {
    const { peers, ctx, def } = this.#host
    this.#refused.forget(device)
    await this.#keepRefused(device)
    this.#unavailable.forget(device)
    if (!peers.delete(device)) return
    await ctx.records.deletePeerHead(def.id, device)
  }

  /** This device's index changed: a local change may be what lets a refused entry through now. */
  async localChanged (): Promise<void> {
    this.#refused.clear()
    for (const device of [...this.#kept]) await this.#keepRefused(device)
  }

  /** Writes what is refused of `device`'s head to the share's records when it may have changed. */
  async #keepRefused (device: string): Promise<void> {
    const record = this.#refused.kept(device)
    if (record == null && !this.#kept.has(device)) return
    await this.#host.ctx.records.putRefused(this.#host.def.id, device, record)
    if (record != null) this.#kept.add(device)
    else this.#kept.delete(device)
  }

  /**
   * Failed pulls are tried again (those waiting for chunks no member served
   * less often); not while no member is online: nothing could be fetched, and
   * the status keeps the error rather than flipping to syncing for each try.
   * A member coming online clears the wait (`sourcesChanged`).
   */
  retry (): void {
    if (!this.#host.ctx.anyMemberOnline(this.#host.def)) return
    for (const [device, peer] of this.#host.peers) {
      if (peer.applied?.equals(peer.snapshot) === true || this.#refused.settled(device, peer.snapshot)) continue
      if (this.#unavailable.waiting(device, peer.snapshot)) continue
      this.request(device)
    }
  }

  /** No pull is applying any more: the pulls that waited for that. */
  runsEnded (): void {
    for (const device of this.#afterRuns) this.request(device)
    this.#afterRuns.clear()
  }

  /** What waits for chunks no member served, for status. */
  waiting (): PullBackoffSummary {
    return this.#unavailable.summary()
  }

  async #pull (device: string, signal: AbortSignal): Promise<void> {
    const host = this.#host
    const { def, ctx, runs } = host
    const peer = host.peers.get(device)
    if (peer == null || host.paused()) return
    if (host.ownRoot()?.equals(peer.snapshot) === true || peer.applied?.equals(peer.snapshot) === true) {
      await this.#markApplied(device, peer)
      return
    }
    // its last pull failed only on entries refused for good: pulling it again cannot help
    if (this.#refused.settled(device, peer.snapshot)) return
    // a pull of this head is applying: it pulls again itself when it left entries for later
    const key = `${device} ${peer.snapshot.toString()}`
    if (runs.has(key)) return
    host.syncing()
    const blocks = new RemoteSnapshotBlocks({
      local: async (cid) => ctx.records.block(def.id, cid),
      remote: ctx.fetchBlocks(def, device)
    })
    const started = Date.now()
    // pages the device shares with our own snapshot are not read: only what differs is planned
    const read = { signal, ownPage: (cid: CID) => host.index.ownPage(cid) }
    await blocks.prefetch(peer.snapshot, read)
    // entries of this head refused for good by an earlier pull are not planned (nor fetched) again
    const refused = this.#refused.paths(device, peer.snapshot)
    const remote = (await loadSnapshot(peer.snapshot, blocks, read)).filter(e => !refused.has(e.path))
    const loaded = Date.now()
    await runs.slot()
    // entries a pull still applying touches wait for the next pull; the rest starts now
    const { free, held } = await runs.split(remote, async (path) => nodeFs.lstat(`${def.path}/${path}`).catch(() => undefined))
    const plan = await planPull({
      local: host.index,
      remote: free,
      ...host.storeLookups(signal),
      ignore: await loadIgnoreFile(nodeFs, def.path)
    }, { signal })
    for (const e of plan.errors) host.pathError(e.path, e.error)
    const skipped = plan.skipped?.length ?? 0
    const planned = Date.now()
    // the apply runs beside the queue: the next pull may plan meanwhile (scans wait for it)
    const ended = host.runStarted()
    const run = (async () => {
      const errors = await host.apply(plan, device, signal)
      // entries held for a running pull or skipped by the plan: the head is not applied whole, it is pulled again
      const failed = [...plan.errors, ...errors]
      const { retry } = this.#refused.record(device, peer.snapshot, failed, held.length > 0 || skipped > 0)
      await this.#keepRefused(device)
      // only chunks no member served failed: the member holding them may be offline for long
      const waiting = retry && held.length === 0 && skipped === 0 && failed.every(e => e.error instanceof ChunkUnavailableError || isPermanentEntryError(e.error))
      const gap = this.#unavailable.record(device, peer.snapshot, waiting ? new Set(failed.filter(e => e.error instanceof ChunkUnavailableError).map(e => e.path)).size : undefined)
      if (gap > 0) log('share %s: head %d of %s waits for chunks no member serves: retried in %d ms', def.name, peer.seq, device, gap)
      if (!retry && this.#refused.paths(device, peer.snapshot).size === 0) await this.#markApplied(device, peer)
      else if (!retry) log('share %s: head %d of %s applied but for %d refused entries: not pulled again until it changes', def.name, peer.seq, device, this.#refused.paths(device, peer.snapshot).size)
      const applied = Date.now()
      await host.pulled()
      log('share %s: pull from %s: snapshot %d ms (%d entries differ from ours), plan %d ms (%d steps, %d chunks to fetch, %d entries left for later), apply %d ms, publish %d ms',
        def.name, device, loaded - started, remote.length, planned - loaded, plan.steps.length, plan.fetch.length, held.length + skipped, applied - planned, Date.now() - applied)
      // the last run going settles the share (idle, or an error while files wait for chunks: `waiting`)
      if (runs.size <= 1) host.settle()
    })()
    // what waited for the runs is pulled once they end; so is what the plan skipped once this apply moved things (else the retry timer)
    if (held.length > 0 || (skipped > 0 && plan.steps.length > 0)) this.#afterRuns.add(device)
    void runs.add(key, plan, run).then(ended)
    run.catch(err => {
      if (host.stopped()) return
      host.fail(err as Error)
      log.error('pull of share %s failed: %e', def.name, err)
    })
  }

  async #markApplied (device: string, peer: PeerHead): Promise<void> {
    // a newer head came meanwhile: it is the one to record (and to pull)
    if (peer.applied?.equals(peer.snapshot) === true || this.#host.peers.get(device) !== peer) return
    peer.applied = peer.snapshot
    await this.#host.ctx.records.putPeerHead(this.#host.def.id, device, peer)
  }
}
