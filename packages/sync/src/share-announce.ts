/**
 * Announces: this device's shares and heads sent to the members of a swarm
 * over the share protocol, their answer taken in the same exchange. One
 * exchange per member at a time (asked again while one runs, it runs once
 * more). A failed announce to a member still online is tried again with a
 * doubling, jittered gap: across a partition the connection stays open, so
 * no close or open event would ask again, and the heads published meanwhile
 * would never cross once it heals. When each member last answered is kept
 * for status (a silent member is online all the same).
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { ANNOUNCE_RETRY_FIRST_MS, ANNOUNCE_RETRY_MAX_MS, SHARE_PROTOCOL } from './constants.js'
import { exchangeAnnounce, type AnnouncedShare } from './share-protocol.js'
import type { ShareServiceComponents } from './share-types.js'
import type { PeerId } from '@libp2p/interface'

/** What announces use of the share service. */
export interface AnnounceHost {
  gate: Pick<ShareServiceComponents['gate'], 'dial'>
  swarms: Pick<ShareServiceComponents['swarms'], 'members'>
  now(): number
  running(): boolean
  /** The bound of one exchange. */
  signal(): AbortSignal
  /** Our shares (and heads) for `peer`. */
  announced(peer: PeerId): AnnouncedShare[]
  /** What `peer` answered. */
  received(peer: PeerId, theirs: AnnouncedShare[]): Promise<void>
  /** Runs `fn` as the service's background work (errors logged, awaited on stop). */
  inBackground(fn: () => Promise<unknown>): void
}

export class ShareAnnouncer {
  readonly #host: AnnounceHost
  readonly #running = new Map<string, { again: boolean }>()
  /** Members whose last announce failed: the next try (one timer per member, bounded by the rosters). */
  readonly #retries = new Map<string, { attempt: number, timer?: ReturnType<typeof setTimeout> }>()
  /** When a share exchange with each member last completed (ms); members only. */
  readonly #answered = new Map<string, number>()

  constructor (host: AnnounceHost) {
    this.#host = host
  }

  /** Sends our announce to every online member of a swarm. */
  toSwarm (swarm: string): void {
    let members
    try {
      members = this.#host.swarms.members(swarm)
    } catch {
      return
    }
    for (const m of members) {
      if (m.online && !m.self) this.to(peerIdFromString(m.peerId), swarm)
    }
  }

  /** One announce exchange with `peer` at a time; a request while one runs makes it run once more. */
  to (peer: PeerId, swarm: string): void {
    const host = this.#host
    const key = peer.toString()
    const running = this.#running.get(key)
    if (running != null) {
      running.again = true
      return
    }
    const state = { again: false }
    this.#running.set(key, state)
    host.inBackground(async () => {
      try {
        do {
          state.again = false
          const { stream, release } = await host.gate.dial(swarm, peer, SHARE_PROTOCOL, { signal: host.signal() })
          try {
            const theirs = await exchangeAnnounce(stream, host.announced(peer), { signal: host.signal() })
            await host.received(peer, theirs)
            this.answered(key)
          } catch (err) {
            stream.abort(err as Error)
            throw err
          } finally {
            release()
          }
        } while (state.again && host.running())
        this.#clearRetry(key)
      } catch (err) {
        this.#retry(peer, swarm)
        throw err
      } finally {
        this.#running.delete(key)
      }
    })
  }

  /** A share exchange with `device` completed (either side asked). */
  answered (device: string): void {
    this.#answered.set(device, this.#host.now())
  }

  /** For status: when `device` last answered, and whether an announce to it is being retried. */
  memberState (device: string): { lastAnswer?: number, retrying: boolean } {
    const at = this.#answered.get(device)
    return { ...(at != null ? { lastAnswer: at } : {}), retrying: this.#retries.has(device) }
  }

  /** `device` left a swarm: nothing more to ask it. */
  forget (device: string): void {
    this.#clearRetry(device)
    this.#answered.delete(device)
  }

  /** The service stops: no retry stays armed. */
  stop (): void {
    for (const key of [...this.#retries.keys()]) this.#clearRetry(key)
  }

  /** Tries a failed announce again with a doubling gap while the member stays online. */
  #retry (peer: PeerId, swarm: string): void {
    const host = this.#host
    if (!host.running()) return
    const key = peer.toString()
    const retry = this.#retries.get(key) ?? { attempt: 0 }
    if (retry.timer != null) return
    const gap = Math.min(ANNOUNCE_RETRY_FIRST_MS * 2 ** retry.attempt, ANNOUNCE_RETRY_MAX_MS)
    retry.attempt++
    retry.timer = setTimeout(() => {
      retry.timer = undefined
      let online = false
      try {
        online = host.swarms.members(swarm).some(m => m.peerId === key && m.online)
      } catch {
        // the swarm was left meanwhile: nobody to announce to
      }
      if (host.running() && online) this.to(peer, swarm)
      else this.#retries.delete(key)
    }, gap * (0.75 + Math.random() / 2))
    retry.timer.unref?.()
    this.#retries.set(key, retry)
  }

  #clearRetry (key: string): void {
    clearTimeout(this.#retries.get(key)?.timer)
    this.#retries.delete(key)
  }
}
