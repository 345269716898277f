/**
 * The access gate (D1): the one check every private protocol runs. A stream is admitted only if
 * the remote PeerId, which Noise authenticated for the connection, is on the roster of the
 * swarm the protocol serves; otherwise it is reset before a byte is read, and counted. Admitted
 * streams are tracked so that removing a device from a roster resets them at once.
 */
import { logger } from '@libp2p/logger'
import { withPeer } from './addresses.js'
import { PermissionDeniedError } from './errors.js'
import type { AbortOptions, Connection, Libp2p, PeerId, Stream, StreamHandler, StreamHandlerOptions } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

const log = logger('homecloud:swarm:gate')

/** Who is on which roster, as of now. */
export interface Membership {
  isMember(swarmId: string, peer: PeerId): boolean
  /** Ids of this device's swarms that have `peer` on their roster. */
  swarmsOf(peer: PeerId): string[]
}

/** What a gated handler learns about the stream it was given. */
export interface GateContext {
  peer: PeerId
  /** The swarms the remote shared with this device when the stream was admitted. */
  swarms: string[]
  /**
   * Tie the stream to one swarm (when the protocol reads the swarm from its first message).
   * Throws `PermissionDeniedError` if the remote is not on that roster; the gate then resets
   * the stream. From then on, removal from that swarm resets the stream.
   */
  bind(swarmId: string): void
}

export type GatedStreamHandler = (stream: Stream, connection: Connection, context: GateContext) => void | Promise<void>

export interface GateOptions {
  /** The swarm the protocol belongs to; without it, membership of any of this device's swarms admits and the handler must `bind`. */
  swarm?: string
}

export interface GateComponents {
  registrar: Pick<Libp2p, 'handle' | 'unhandle'>
  dialer: Pick<Libp2p, 'dialProtocol'>
}

export interface GateDialOptions extends AbortOptions {
  /** Addresses to try when the peer store has none that work (unsigned: e.g. from the DHT). */
  dialHints?: Multiaddr[]
}

export interface GateStats {
  /** Streams reset because the remote was not a member, by protocol. */
  refused: Record<string, number>
  /** Admitted streams reset because their device was removed. */
  revoked: number
  /** Gated streams open now. */
  open: number
}

interface Tracked {
  stream: Stream
  swarm?: string
}

export class RosterGate {
  private readonly tracked = new Map<string, Set<Tracked>>()
  private readonly refused: Record<string, number> = {}
  private revoked = 0

  constructor (private readonly membership: Membership, private readonly components: GateComponents) {}

  /** Wrap a handler so it only ever sees streams from members. */
  wrap (protocol: string, handler: GatedStreamHandler, options: GateOptions = {}): StreamHandler {
    return async (stream, connection) => {
      const peer = connection.remotePeer
      const swarms = options.swarm === undefined
        ? this.membership.swarmsOf(peer)
        : (this.membership.isMember(options.swarm, peer) ? [options.swarm] : [])
      if (swarms.length === 0) {
        this.refuse(protocol, stream, peer)
        return
      }
      const entry: Tracked = { stream, swarm: options.swarm }
      this.track(peer, entry)
      const context: GateContext = {
        peer,
        swarms,
        bind: (swarmId) => {
          if (!this.membership.isMember(swarmId, peer)) {
            throw new PermissionDeniedError(`${peer.toString()} is not on the roster of this swarm`)
          }
          entry.swarm = swarmId
        }
      }
      try {
        await handler(stream, connection, context)
      } catch (err) {
        if (err instanceof PermissionDeniedError) {
          this.refuse(protocol, stream, peer)
        } else {
          log('%s handler failed for %p: %e', protocol, peer, err)
          stream.abort(err instanceof Error ? err : new Error(String(err)))
        }
      } finally {
        this.untrack(peer, entry)
      }
    }
  }

  /** Register a gated handler with libp2p. */
  async handle (protocol: string, handler: GatedStreamHandler, options: GateOptions & StreamHandlerOptions = {}): Promise<void> {
    const { swarm, ...handlerOptions } = options
    await this.components.registrar.handle(protocol, this.wrap(protocol, handler, { swarm }), handlerOptions)
  }

  async unhandle (protocol: string, options: AbortOptions = {}): Promise<void> {
    await this.components.registrar.unhandle(protocol, options)
  }

  /**
   * Open a stream of a private protocol to a member: refused (`PermissionDeniedError`) without
   * dialling if `peer` is not on the roster, so nothing private is sent to a non-member.
   * Call `release` when done with the stream.
   */
  async dial (swarmId: string, peer: PeerId, protocol: string, options: GateDialOptions = {}): Promise<{ stream: Stream, release(): void }> {
    if (!this.membership.isMember(swarmId, peer)) {
      throw new PermissionDeniedError(`${peer.toString()} is not on the roster of this swarm`)
    }
    const { dialHints = [], ...dialOptions } = options
    let stream: Stream
    try {
      stream = await this.components.dialer.dialProtocol(peer, protocol, dialOptions)
    } catch (err) {
      if (dialHints.length === 0) throw err
      // Noise proves the far end is `peer`, whatever the hint said
      stream = await this.components.dialer.dialProtocol(dialHints.map(a => withPeer(a, peer)), protocol, dialOptions)
    }
    // the roster may have changed while dialling
    if (!this.membership.isMember(swarmId, peer)) {
      stream.abort(new PermissionDeniedError('removed from the roster'))
      throw new PermissionDeniedError(`${peer.toString()} is not on the roster of this swarm`)
    }
    const entry: Tracked = { stream, swarm: swarmId }
    this.track(peer, entry)
    return { stream, release: () => { this.untrack(peer, entry) } }
  }

  /**
   * `peer` left the roster of `swarmId`: reset its streams of that swarm, and its unbound ones
   * if it shares no other swarm with this device. Returns how many were reset.
   */
  revoke (swarmId: string, peer: PeerId): number {
    const set = this.tracked.get(peer.toString())
    if (set === undefined) return 0
    const sharesAnother = this.membership.swarmsOf(peer).length > 0
    let count = 0
    for (const entry of [...set]) {
      if (entry.swarm === swarmId || (entry.swarm === undefined && !sharesAnother)) {
        entry.stream.abort(new PermissionDeniedError('removed from the roster'))
        set.delete(entry)
        count++
      }
    }
    if (set.size === 0) this.tracked.delete(peer.toString())
    this.revoked += count
    return count
  }

  stats (): GateStats {
    let open = 0
    for (const set of this.tracked.values()) open += set.size
    return { refused: { ...this.refused }, revoked: this.revoked, open }
  }

  private refuse (protocol: string, stream: Stream, peer: PeerId): void {
    this.refused[protocol] = (this.refused[protocol] ?? 0) + 1
    log('refused %s from %p: not on the roster', protocol, peer)
    stream.abort(new PermissionDeniedError('not on the roster'))
  }

  private track (peer: PeerId, entry: Tracked): void {
    const key = peer.toString()
    let set = this.tracked.get(key)
    if (set === undefined) {
      set = new Set()
      this.tracked.set(key, set)
    }
    set.add(entry)
  }

  private untrack (peer: PeerId, entry: Tracked): void {
    const key = peer.toString()
    const set = this.tracked.get(key)
    set?.delete(entry)
    if (set?.size === 0) this.tracked.delete(key)
  }
}
