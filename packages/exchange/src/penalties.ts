/**
 * Faults per peer, kept across fetches: a peer that sends a wrong block, a
 * malformed message or a block it was never asked for earns a fault; enough
 * faults ban it for a while.
 */
import { BAN_AFTER_FAULTS, BAN_MS, MAX_TRACKED_PEERS } from './constants.js'

export interface PeerPenalty {
  /** Faults counted since the last ban ended. */
  faults: number
  /** Faults ever counted (while remembered). */
  totalFaults: number
  /** The last fault's reason code. */
  lastReason: string
  /** Epoch milliseconds until which the peer is banned, or 0. */
  bannedUntil: number
}

export interface PenaltyInit {
  banAfterFaults?: number
  banMs?: number
  maxTrackedPeers?: number
  /** Clock, replaceable in tests. */
  now?: () => number
}

export class PeerPenalties {
  private readonly records = new Map<string, PeerPenalty>()
  private readonly banAfterFaults: number
  private readonly banMs: number
  private readonly maxTrackedPeers: number
  private readonly now: () => number

  constructor (init: PenaltyInit = {}) {
    this.banAfterFaults = init.banAfterFaults ?? BAN_AFTER_FAULTS
    this.banMs = init.banMs ?? BAN_MS
    this.maxTrackedPeers = init.maxTrackedPeers ?? MAX_TRACKED_PEERS
    this.now = init.now ?? Date.now
  }

  /** Counts a fault; returns true when this fault bans the peer. */
  fault (peer: string, reason: string): boolean {
    const record = this.records.get(peer) ?? { faults: 0, totalFaults: 0, lastReason: reason, bannedUntil: 0 }
    // re-inserted so the Map's order is least recently faulted first
    this.records.delete(peer)
    record.faults++
    record.totalFaults++
    record.lastReason = reason
    let banned = false
    if (record.faults >= this.banAfterFaults && record.bannedUntil <= this.now()) {
      record.bannedUntil = this.now() + this.banMs
      record.faults = 0
      banned = true
    }
    this.records.set(peer, record)
    while (this.records.size > this.maxTrackedPeers) {
      const oldest = this.records.keys().next().value
      if (oldest === undefined) {
        break
      }
      this.records.delete(oldest)
    }
    return banned
  }

  isBanned (peer: string): boolean {
    const record = this.records.get(peer)
    return record !== undefined && record.bannedUntil > this.now()
  }

  get (peer: string): Readonly<PeerPenalty> | undefined {
    const record = this.records.get(peer)
    return record === undefined ? undefined : { ...record }
  }
}
