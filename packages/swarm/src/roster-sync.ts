/**
 * `/homecloud/roster-sync/1.0.0`, behind the gate: two members bring each other's roster up to
 * date, hand over the current swarm secret, and pass on members' signed peer records.
 *
 *   initiator → responder  { swarm: <id bytes>, heads: [CID] }
 *   responder → initiator  { entries: [...], more: true } ... { entries, more: false, heads, secret?, records }
 *   initiator → responder  { entries: [...], more: true } ... { entries, more: false, heads, secret?, records }
 *
 * Each side sends the entries it holds that are not the other's heads or their ancestors (the
 * other's heads it does not know are simply not subtracted; a duplicate costs bytes, not
 * correctness). The responder binds the stream to the swarm named in the first message: a device
 * that is a member of another of this device's swarms but not of that one gets a reset.
 * The secret is sent only to a remote that is on the roster at that moment.
 */
import { logger } from '@libp2p/logger'
import { CID } from 'multiformats/cid'
import {
  DEFAULT_PROTOCOL_TIMEOUT_MS, MAX_ENTRIES_PER_MESSAGE, MAX_HEADS, MAX_INBOUND_STREAMS, MAX_MESSAGE_BYTES,
  MAX_PEER_RECORDS_PER_MESSAGE, MAX_ROSTER_ENTRIES, ROSTER_SYNC_PROTOCOL, SECRET_BYTES
} from './constants.js'
import { PermissionDeniedError, ProtocolError } from './errors.js'
import { FramedStream, chunk } from './framed-stream.js'
import type { GateContext, GateDialOptions, RosterGate } from './gate.js'
import type { AbortOptions, Connection, PeerId, Stream } from '@libp2p/interface'

const log = logger('homecloud:swarm:roster-sync')

const MAX_BATCHES = Math.ceil(MAX_ROSTER_ENTRIES / MAX_ENTRIES_PER_MESSAGE) + 1

/** What one side of a sync needs from the swarm it syncs. */
export interface SyncableSwarm {
  heads(): CID[]
  /** Entry bytes this side holds that a peer with `heads` lacks, parents first. */
  missingFor(heads: CID[]): Uint8Array[]
  /** Verify and admit entries from `from`; forged ones are counted and dropped. */
  ingest(entries: Uint8Array[], from: PeerId, options: AbortOptions): Promise<void>
  /** The current secret, if this side holds it and `peer` is on the roster now. */
  secretFor(peer: PeerId): Uint8Array | undefined
  acceptSecret(secret: Uint8Array, from: PeerId): Promise<void>
  /** Signed peer records of other members to pass on to `peer`. */
  peerRecords(peer: PeerId, options: AbortOptions): Promise<Uint8Array[]>
  acceptPeerRecords(records: Uint8Array[], from: PeerId, options: AbortOptions): Promise<void>
}

export interface RosterSyncHost {
  /** The swarm with this id, if this device is in it. */
  swarm(id: string): SyncableSwarm | undefined
}

export interface RosterSyncOptions {
  timeoutMs?: number
}

export class RosterSync {
  private readonly timeoutMs: number

  constructor (private readonly host: RosterSyncHost, private readonly gate: RosterGate, options: RosterSyncOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_PROTOCOL_TIMEOUT_MS
  }

  async start (): Promise<void> {
    await this.gate.handle(ROSTER_SYNC_PROTOCOL, async (stream, connection, context) => { await this.respond(stream, connection, context) }, {
      maxInboundStreams: MAX_INBOUND_STREAMS
    })
  }

  async stop (): Promise<void> {
    await this.gate.unhandle(ROSTER_SYNC_PROTOCOL)
  }

  /** Sync swarm `swarmId` with member `peer` (dials if needed); refused without dialling if `peer` is off the roster. */
  async sync (swarmId: string, peer: PeerId, options: GateDialOptions = {}): Promise<void> {
    const swarm = this.host.swarm(swarmId)
    if (swarm === undefined) throw new PermissionDeniedError('this device is not in that swarm')
    const signal = options.signal ?? AbortSignal.timeout(this.timeoutMs)
    const { stream, release } = await this.gate.dial(swarmId, peer, ROSTER_SYNC_PROTOCOL, { signal, dialHints: options.dialHints })
    const framed = new FramedStream(stream, MAX_MESSAGE_BYTES)
    try {
      await framed.write({ swarm: CID.parse(swarmId).bytes, heads: swarm.heads() }, { signal })
      const theirHeads = await this.receive(framed, swarm, peer, { signal })
      await this.send(framed, swarm, peer, theirHeads, { signal })
      await framed.close({ signal })
    } catch (err) {
      framed.abort(err instanceof Error ? err : new ProtocolError(String(err)))
      throw err
    } finally {
      release()
    }
  }

  private async respond (stream: Stream, connection: Connection, context: GateContext): Promise<void> {
    const signal = AbortSignal.timeout(this.timeoutMs)
    const framed = new FramedStream(stream, MAX_MESSAGE_BYTES)
    const hello = await framed.read({ signal })
    let swarmId: string
    try {
      swarmId = CID.decode(hello.swarm as Uint8Array).toString()
    } catch (err) {
      throw new ProtocolError('roster sync names no swarm', { cause: err })
    }
    const swarm = this.host.swarm(swarmId)
    // unknown swarm and foreign swarm look the same to the remote: a reset
    if (swarm === undefined) throw new PermissionDeniedError('not a swarm of this device')
    context.bind(swarmId)
    const theirHeads = parseHeads(hello.heads)
    await this.send(framed, swarm, connection.remotePeer, theirHeads, { signal })
    await this.receive(framed, swarm, connection.remotePeer, { signal })
    await framed.close({ signal })
    log.trace('synced %s with %p', swarmId, connection.remotePeer)
  }

  private async send (framed: FramedStream, swarm: SyncableSwarm, peer: PeerId, theirHeads: CID[], options: AbortOptions): Promise<void> {
    const batches = chunk(swarm.missingFor(theirHeads), MAX_ENTRIES_PER_MESSAGE)
    for (const batch of batches.slice(0, -1)) await framed.write({ entries: batch, more: true }, options)
    const message: Record<string, unknown> = {
      entries: batches.at(-1) ?? [],
      more: false,
      heads: swarm.heads(),
      records: (await swarm.peerRecords(peer, options)).slice(0, MAX_PEER_RECORDS_PER_MESSAGE)
    }
    const secret = swarm.secretFor(peer)
    if (secret !== undefined) message.secret = secret
    await framed.write(message, options)
  }

  /** Read the other side's batches; returns its heads. */
  private async receive (framed: FramedStream, swarm: SyncableSwarm, peer: PeerId, options: AbortOptions): Promise<CID[]> {
    for (let i = 0; i < MAX_BATCHES; i++) {
      const message = await framed.read(options)
      const entries = message.entries
      if (!Array.isArray(entries) || entries.length > MAX_ENTRIES_PER_MESSAGE || !entries.every(e => e instanceof Uint8Array)) {
        throw new ProtocolError('malformed roster batch')
      }
      if (entries.length > 0) await swarm.ingest(entries as Uint8Array[], peer, options)
      if (message.more === true) continue
      if (message.secret instanceof Uint8Array && message.secret.byteLength === SECRET_BYTES) {
        await swarm.acceptSecret(message.secret, peer)
      }
      const records = message.records
      if (Array.isArray(records) && records.length <= MAX_PEER_RECORDS_PER_MESSAGE && records.every(r => r instanceof Uint8Array)) {
        await swarm.acceptPeerRecords(records as Uint8Array[], peer, options)
      }
      return parseHeads(message.heads)
    }
    throw new ProtocolError('too many roster batches')
  }
}

function parseHeads (value: unknown): CID[] {
  if (!Array.isArray(value) || value.length > MAX_HEADS) throw new ProtocolError('malformed heads')
  return value.map(h => {
    const cid = CID.asCID(h)
    if (cid == null) throw new ProtocolError('a head is not a CID')
    return cid
  })
}
