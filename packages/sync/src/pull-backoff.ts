/**
 * Heads whose last pull failed only for chunks no member served (the
 * member holding them is offline): retrying them every retry interval
 * forever asks every member again and again for nothing, so each such head
 * waits the retry interval, then twice as long each time it fails the same
 * way, up to a cap. A new head, a member coming online or a new connection
 * starts every head over (`clear`); any other outcome of a pull ends the
 * wait for that member (`record` with `unavailable` false).
 */
import type { CID } from 'multiformats/cid'

interface Waiting {
  snapshot: CID
  gap: number
  /** When (ms, `now()`) the head may be pulled again. */
  next: number
  /** Files its last pull could not write for want of chunks. */
  files: number
}

/** What waits, for status. */
export interface PullBackoffSummary {
  /** Files waiting for chunks: the most any one waiting head has (members' heads mostly hold the same files). */
  files: number
  /** The soonest retry (ms, `now()`); absent when nothing waits. */
  nextRetryAt?: number
}

export interface PullBackoffInit {
  /** The first gap: the share's retry interval. */
  interval: number
  /** The longest gap. */
  max: number
  now?(): number
}

export class PullBackoff {
  readonly #waiting = new Map<string, Waiting>()
  readonly #interval: number
  readonly #max: number
  readonly #now: () => number

  constructor (init: PullBackoffInit) {
    this.#interval = init.interval
    this.#max = Math.max(init.interval, init.max)
    this.#now = init.now ?? Date.now
  }

  /**
   * A pull of `device`'s head `snapshot` ended; `unavailable`: the files it
   * could not write for want of chunks no member served, when nothing else
   * is worth retrying at once (else undefined). Returns the gap before its
   * next retry (0: no backing off).
   */
  record (device: string, snapshot: CID, unavailable: number | undefined): number {
    if (unavailable == null) {
      this.#waiting.delete(device)
      return 0
    }
    const before = this.#waiting.get(device)
    const gap = before?.snapshot.equals(snapshot) === true ? Math.min(before.gap * 2, this.#max) : this.#interval
    this.#waiting.set(device, { snapshot, gap, next: this.#now() + gap, files: unavailable })
    return gap
  }

  summary (): PullBackoffSummary {
    let files = 0
    let nextRetryAt: number | undefined
    for (const w of this.#waiting.values()) {
      files = Math.max(files, w.files)
      nextRetryAt = Math.min(nextRetryAt ?? w.next, w.next)
    }
    return { files, ...(nextRetryAt != null ? { nextRetryAt } : {}) }
  }

  /** Must a retry of `device`'s head `snapshot` wait still? */
  waiting (device: string, snapshot: CID): boolean {
    const w = this.#waiting.get(device)
    return w?.snapshot.equals(snapshot) === true && this.#now() < w.next
  }

  forget (device: string): void {
    this.#waiting.delete(device)
  }

  clear (): void {
    this.#waiting.clear()
  }
}
