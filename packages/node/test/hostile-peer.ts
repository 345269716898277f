/**
 * A swarm member gone bad, for the share hostile-peer tests: a real device
 * that joined by invite (so the roster gate lets it in), whose share service
 * and chunk server are replaced by ones that serve whatever the test built:
 * snapshots with any paths, signed heads (its own key: they verify), and
 * chunks with any bytes, over the real share protocol and chunk exchange.
 */
import { createChunkExchange, type ChunkExchange } from '@homecloud/exchange'
import { chunkCid } from '@homecloud/store'
import { encodeSnapshot, exchangeAnnounce, serveShareStream, signHead, SHARE_PROTOCOL, type AnnouncedShare, type ShareEntry } from '@homecloud/sync'
import { SERVICE } from '../src/libp2p-options.js'
import type { HomecloudNode } from '../src/index.js'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

/** A file entry of `device` and its chunks (cut every `chunkBytes`: a receiver takes any cut the snapshot names). */
export async function fileEntry (path: string, bytes: Uint8Array, device: string, chunkBytes = 64 * 1024): Promise<{ entry: ShareEntry, chunks: Array<[CID, Uint8Array]> }> {
  const chunks: Array<[CID, Uint8Array]> = []
  for (let offset = 0; offset < bytes.byteLength; offset += chunkBytes) {
    const piece = bytes.subarray(offset, offset + chunkBytes)
    chunks.push([await chunkCid(piece), piece])
  }
  const entry: ShareEntry = {
    path,
    type: 'file',
    size: bytes.byteLength,
    mtime: 1_700_000_000_000,
    mode: 0o644,
    version: { [device]: 1 },
    modifiedBy: device,
    chunks: chunks.map(([cid, piece]) => ({ cid, length: piece.byteLength }))
  }
  return { entry, chunks }
}

export function linkEntry (path: string, target: string, device: string): ShareEntry {
  return { path, type: 'symlink', size: 0, mtime: 1_700_000_000_000, mode: 0o777, version: { [device]: 1 }, modifiedBy: device, target }
}

export class HostilePeer {
  readonly device: HomecloudNode
  readonly #key: PrivateKey
  /** Snapshot blocks served over the share protocol, by CID. */
  readonly blocks = new Map<string, Uint8Array>()
  /** What the chunk server answers for a CID (right bytes or not). */
  readonly chunks = new Map<string, Uint8Array>()
  #announced: AnnouncedShare[] = []
  #exchange?: ChunkExchange

  private constructor (device: HomecloudNode, key: PrivateKey) {
    this.device = device
    this.#key = key
  }

  get id (): string {
    return this.device.peerId.toString()
  }

  /** Takes over a started device: its own share service and chunk server stop; the hostile ones answer. */
  static async take (device: HomecloudNode, key: PrivateKey): Promise<HostilePeer> {
    const peer = new HostilePeer(device, key)
    await device.shares.stop()
    await (device.libp2p.services[SERVICE.chunks] as ChunkExchange).stop()
    await device.libp2p.handle(SHARE_PROTOCOL, async (stream) => {
      await serveShareStream(stream, {
        announce: async () => peer.#announced,
        bindShare: () => {},
        block: async (_share, cid) => peer.blocks.get(cid.toString())
      }, { signal: AbortSignal.timeout(10_000) }).catch((err: Error) => { stream.abort(err) })
    })
    peer.#exchange = createChunkExchange({
      registrar: device.libp2p,
      connectionManager: { openStream: async (p, protocol, options) => device.libp2p.dialProtocol(p, protocol, options) }
    }, {
      serve: { source: { get: async (cid) => peer.chunks.get(cid.toString()) }, policy: () => true }
    })
    await peer.#exchange.start()
    return peer
  }

  /** Builds a snapshot of `entries`, signs head `seq` for it with the device's key, and serves both. */
  async publish (share: { id: string, name: string, swarm: string }, entries: ShareEntry[], seq: number): Promise<void> {
    const snapshot = await encodeSnapshot(entries)
    for (const block of snapshot.blocks) this.blocks.set(block.cid.toString(), block.bytes)
    const head = await signHead({ share: share.id, device: this.id, seq, snapshot: snapshot.root }, this.#key)
    this.#announced = [{ ...share, head }]
  }

  /** Pushes the announce (the head) to `peer`, as a member does when its head changes. */
  async announceTo (peer: PeerId): Promise<void> {
    const stream = await this.device.libp2p.dialProtocol(peer, SHARE_PROTOCOL, { signal: AbortSignal.timeout(10_000) })
    await exchangeAnnounce(stream, this.#announced, { signal: AbortSignal.timeout(10_000) })
  }

  async stop (): Promise<void> {
    await this.#exchange?.stop()
    await this.device.libp2p.unhandle(SHARE_PROTOCOL).catch(() => {})
  }
}
