/**
 * When rendezvous runs: every `intervalMs`, and soon after this device's own addresses change
 * (a relay reservation appears, a new public address), so a member behind NAT is findable at
 * its relay address without waiting for the next period; also again soon after an announcement
 * failed (no DHT peer yet at start). Joining runs it at once (swarm-service.ts). Runs on changes are bounded: one
 * pending at most, after `settleMs` of quiet, spaced by a gap that doubles (from `minGapMs` up
 * to `intervalMs`) while changes keep coming and resets once they stop for twice the gap.
 */
import { RENDEZVOUS_MIN_GAP_MS, RENDEZVOUS_SETTLE_MS } from './constants.js'

export interface RendezvousScheduleInit {
  /** Period of the regular runs; > 0. */
  intervalMs: number
  settleMs?: number
  minGapMs?: number
  now?(): number
}

export class RendezvousSchedule {
  private readonly settleMs: number
  private readonly minGapMs: number
  private readonly maxGapMs: number
  private readonly now: () => number
  private gapMs: number
  private lastRun = -Infinity
  private periodic?: ReturnType<typeof setInterval>
  private pending?: ReturnType<typeof setTimeout>
  /** Runs caused by `changed()` so far. */
  triggeredRuns = 0

  constructor (private readonly run: () => void, init: RendezvousScheduleInit) {
    this.settleMs = init.settleMs ?? RENDEZVOUS_SETTLE_MS
    this.maxGapMs = init.intervalMs
    this.minGapMs = Math.min(init.minGapMs ?? RENDEZVOUS_MIN_GAP_MS, this.maxGapMs)
    this.gapMs = this.minGapMs
    this.now = init.now ?? Date.now
  }

  /** Run now, then every interval. */
  start (): void {
    if (this.periodic != null) return
    this.periodic = setInterval(() => { this.fire() }, this.maxGapMs)
    this.periodic.unref?.()
    this.fire()
  }

  stop (): void {
    clearInterval(this.periodic)
    clearTimeout(this.pending)
    this.periodic = undefined
    this.pending = undefined
  }

  /** Something worth announcing changed: run once it settles, within the backoff. */
  changed (): void {
    if (this.periodic == null || this.pending != null) return
    const now = this.now()
    // quiet for twice the gap: the next change is news again
    if (now - this.lastRun > 2 * this.gapMs) this.gapMs = this.minGapMs
    this.arm(Math.max(this.settleMs, this.lastRun + this.gapMs - now))
  }

  private arm (wait: number): void {
    this.pending = setTimeout(() => {
      // a timer counts from the event loop's cached time, so it can fire a little before the
      // clock says the gap is over: wait out the rest rather than run early
      const early = this.lastRun + this.gapMs - this.now()
      if (early > 0) { this.arm(early); return }
      this.pending = undefined
      this.triggeredRuns++
      this.gapMs = Math.min(this.gapMs * 2, this.maxGapMs)
      this.fire()
    }, wait)
    this.pending.unref?.()
  }

  private fire (): void {
    this.lastRun = this.now()
    this.run()
  }
}
