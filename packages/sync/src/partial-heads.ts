/**
 * Heads published while a long scan runs (a big file hashing): the changes
 * found so far go to the index and out as a head, so members start on them
 * (the small files of a folder moved in) instead of waiting for the whole
 * scan. Every entry is complete (the scanner yields a file only once it is
 * hashed, never part of one); the scan's final head follows as always.
 */
import type { LocalEntry } from './entry.js'

/** A scan running this long publishes what it has found so far… */
export const PARTIAL_HEAD_AFTER_MS = 300
/**
 * …and again after this long, then after twice as long each time: each head
 * costs its members a snapshot read and a plan, so a long scan sends a few,
 * not one a second.
 */
export const PARTIAL_HEAD_INTERVAL_MS = 1000

export interface PartialHeadsInit {
  /** The changes the scan has found so far (it appends to this array). */
  changes: readonly LocalEntry[]
  /** Records `entries` in the index and publishes a head. */
  flush(entries: LocalEntry[]): Promise<void>
  /**
   * Changes kept for the final head (a move: its source's tombstone comes
   * only at the end of the scan, and a member seeing both at once renames
   * rather than copies).
   */
  hold?(entry: LocalEntry): boolean
  signal: AbortSignal
  afterMs?: number
  intervalMs?: number
}

export class PartialHeads {
  /** How many of `changes` were looked at (flushed, or held for the end). */
  flushed = 0
  /** Changes among the first `flushed` that were held for the final head. */
  readonly held: LocalEntry[] = []
  /** Partial heads published. */
  published = 0
  readonly #init: PartialHeadsInit
  #running?: Promise<void>
  #timer?: ReturnType<typeof setTimeout>

  constructor (init: PartialHeadsInit) {
    this.#init = init
    this.#timer = setTimeout(this.#tick, init.afterMs ?? PARTIAL_HEAD_AFTER_MS)
  }

  /** The changes not in the index yet (for the scan's final write), once stopped. */
  rest (): LocalEntry[] {
    return [...this.held, ...this.#init.changes.slice(this.flushed)]
  }

  /** No more partial heads; resolves once the one being made (if any) is out. */
  async stop (): Promise<void> {
    clearTimeout(this.#timer)
    this.#timer = undefined
    await this.#running
  }

  readonly #tick = (): void => {
    const { changes, signal } = this.#init
    this.#timer = setTimeout(this.#tick, (this.#init.intervalMs ?? PARTIAL_HEAD_INTERVAL_MS) * 2 ** this.published)
    if (this.#running != null || changes.length === this.flushed || signal.aborted) return
    const upTo = changes.length
    const fresh = changes.slice(this.flushed, upTo)
    const ready = fresh.filter(e => this.#init.hold?.(e) !== true)
    if (ready.length === 0) return
    this.#running = (async () => {
      await this.#init.flush(ready)
      this.held.push(...fresh.filter(e => this.#init.hold?.(e) === true))
      this.flushed = upTo
      this.published++
    })().catch(() => {
      // the scan's final write records them (and reports a failure)
    }).finally(() => { this.#running = undefined })
  }
}
