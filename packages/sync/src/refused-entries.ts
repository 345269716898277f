/**
 * Entries of other devices' heads that failed for good: a path this device
 * refuses (path policy, a collision, a write through a link). Pulling the
 * same head again cannot change that, so a retry of that head skips them,
 * and a pull whose only failures were these is not retried at all. A new
 * head from that device starts afresh, and so does every head once this
 * device's own index changes (a local change may be what let them through).
 */
import { PathRejectedError } from './errors.js'
import type { CID } from 'multiformats/cid'

/** Per-entry errors a retry of the same head cannot cure. */
export function isPermanentEntryError (err: Error): boolean {
  return err instanceof PathRejectedError
}

interface Refused {
  snapshot: CID
  paths: Set<string>
  /** The last pull of this head failed only on refused paths: nothing is left to retry. */
  settled: boolean
}

/** What is kept of one member's head across restarts (share-state.ts stores it). */
export interface RefusedRecord {
  snapshot: CID
  paths: string[]
  settled: boolean
}

export class RefusedEntries {
  readonly #byDevice = new Map<string, Refused>()

  /** Starts from what an earlier run kept. */
  constructor (kept: ReadonlyMap<string, RefusedRecord> = new Map()) {
    for (const [device, r] of kept) this.#byDevice.set(device, { snapshot: r.snapshot, paths: new Set(r.paths), settled: r.settled })
  }

  /** What to keep of `device`'s head (undefined: nothing is refused). */
  kept (device: string): RefusedRecord | undefined {
    const r = this.#byDevice.get(device)
    return r == null ? undefined : { snapshot: r.snapshot, paths: [...r.paths], settled: r.settled }
  }

  /** Devices with something refused. */
  devices (): string[] {
    return [...this.#byDevice.keys()]
  }

  /** Paths of `device`'s head `snapshot` refused by an earlier pull (empty for a head not seen before). */
  paths (device: string, snapshot: CID): ReadonlySet<string> {
    return this.#current(device, snapshot)?.paths ?? new Set()
  }

  /** Did the last pull of this head fail only on refused paths? */
  settled (device: string, snapshot: CID): boolean {
    return this.#current(device, snapshot)?.settled === true
  }

  /**
   * The failures of a pull of `device`'s head `snapshot`: remembers the
   * permanent ones; returns whether any other (worth retrying) failed, or
   * the pull was `incomplete`.
   */
  record (device: string, snapshot: CID, errors: ReadonlyArray<{ path: string, error: Error }>, incomplete = false): { retry: boolean } {
    let refused = this.#current(device, snapshot)
    if (refused == null) {
      refused = { snapshot, paths: new Set(), settled: false }
      this.#byDevice.set(device, refused)
    }
    // `incomplete`: entries were left for another pull (they wait for one running)
    let retry = incomplete
    for (const { path, error } of errors) {
      if (isPermanentEntryError(error)) refused.paths.add(path)
      else retry = true
    }
    refused.settled = !retry && refused.paths.size > 0
    if (refused.paths.size === 0) this.#byDevice.delete(device)
    return { retry }
  }

  /** A device left: forget its head. */
  forget (device: string): void {
    this.#byDevice.delete(device)
  }

  /** This device's index changed: every head is considered afresh. */
  clear (): void {
    this.#byDevice.clear()
  }

  #current (device: string, snapshot: CID): Refused | undefined {
    const refused = this.#byDevice.get(device)
    if (refused == null) return undefined
    if (refused.snapshot.equals(snapshot)) return refused
    // a new head from that device: considered afresh
    this.#byDevice.delete(device)
    return undefined
  }
}
