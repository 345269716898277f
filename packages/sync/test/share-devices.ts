/**
 * Test devices for the share service: a real libp2p node on 127.0.0.1
 * (tcp + noise + yamux + identify), the swarm service, a LevelDB chunk
 * store, the chunk exchange serving with the share service's policy, and
 * the share service, all wired the way packages/node will wire them.
 */
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createChunkExchange, type ChunkExchange } from '@homecloud/exchange'
import { createLevelStore, type ChunkStore } from '@homecloud/store'
import { MemorySwarmDatastore, swarmService, type SwarmService } from '@homecloud/swarm'
import { loopbackNode } from '@homecloud/test-support'
import { generateKeyPair } from '@libp2p/crypto/keys'
import {
  SHARE_PROTOCOL, encodeSnapshot, exchangeAnnounce, sameFolders, serveShareStream, shareService, signHead,
  type ShareEntry, type ShareService, type ShareServiceInit
} from '../src/index.js'
import { removeDir, tempDir } from './helpers.js'
import type { AbortOptions } from '@homecloud/interface'
import type { Libp2p, PeerId, PrivateKey } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

export interface TestDevice {
  name: string
  dir: string
  node: Libp2p
  privateKey: PrivateKey
  peerId: PeerId
  swarms: SwarmService
  store: ChunkStore
  exchange: ChunkExchange
  shares: ShareService
}

/** Test seams of a device: wrap its store's chunker (to slow or hold the hashing of a file). */
export interface DeviceHooks {
  chunkFile?: (path: string, options: AbortOptions | undefined, next: ChunkStore['chunkFile']) => ReturnType<ChunkStore['chunkFile']>
}

/** The store with `chunkFile` wrapped by `hooks`, every other method bound to the real one. */
function hookedStore (store: ChunkStore, hooks: DeviceHooks): ChunkStore {
  const wrap = hooks.chunkFile
  if (wrap == null) return store
  const next: ChunkStore['chunkFile'] = async (path, options) => store.chunkFile(path, options)
  return new Proxy(store, {
    get: (target, key) => {
      if (key === 'chunkFile') return async (path: string, options?: AbortOptions) => wrap(path, options, next)
      const value: unknown = Reflect.get(target, key)
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
}

const noRouting = {
  provide: async () => {},
  findProviders: async function * () {}
}

/** A device with everything but shares wired; `withShares` adds the share service. */
export async function createDevice (name: string, dir: string, init: Partial<ShareServiceInit> = {}, withShares = true, hooks: DeviceHooks = {}): Promise<TestDevice> {
  const privateKey = await generateKeyPair('Ed25519')
  const node: Libp2p = await loopbackNode(privateKey)
  const swarms = swarmService({ deviceName: name, rendezvousIntervalMs: 0 })({
    peerId: node.peerId,
    privateKey,
    registrar: node,
    dialer: node,
    connectionManager: node,
    events: node,
    addresses: node,
    peerStore: node.peerStore,
    contentRouting: noRouting,
    datastore: new MemorySwarmDatastore()
  })
  await swarms.start()
  const store = await createLevelStore({ path: join(dir, 'store') })
  const device = { name, dir, node, privateKey, peerId: node.peerId, swarms, store } as TestDevice
  device.exchange = createChunkExchange({
    registrar: node,
    connectionManager: { openStream: async (peer, protocol, options) => node.dialProtocol(peer, protocol, options) }
  }, {
    serve: {
      source: { get: async (cid) => store.get(cid).catch(() => undefined) },
      policy: (peer, cid) => device.shares?.policyFor(peer, cid) ?? false
    },
    sink: store
  })
  await device.exchange.start()
  if (withShares) {
    device.shares = shareService({ datastorePath: join(dir, 'shares'), watchDebounceMs: 50, retryIntervalMs: 300, ...init })({
      peerId: node.peerId, privateKey, gate: swarms.gate, swarms, events: node, store: hookedStore(store, hooks), chunks: device.exchange
    })
    await device.shares.start()
  }
  return device
}

export async function stopDevice (d: TestDevice | undefined): Promise<void> {
  if (d == null) return
  await d.shares?.stop()
  await d.exchange.stop()
  await d.swarms.stop()
  await d.node.stop()
  await d.store.close()
}

/** Do `a` and `b` hold the same tree (compared byte for byte)? */
export async function sameTree (a: string, b: string): Promise<boolean> {
  return sameFolders([a, b])
}

export async function readText (path: string): Promise<string | undefined> {
  return readFile(path, 'utf8').catch(() => undefined)
}

/** Two devices in the swarm `family`: `a` created it and invited the other. */
export async function twoDevicesSharing (root: string, other: { name: string, shares?: boolean }, aInit: Partial<ShareServiceInit> = {}, aHooks: DeviceHooks = {}): Promise<{ a: TestDevice, b: TestDevice, swarm: string }> {
  const a = await createDevice('a', join(root, 'a'), aInit, true, aHooks)
  const b = await createDevice(other.name, join(root, other.name), {}, other.shares ?? true)
  const swarm = (await a.swarms.create('family')).id
  const { code } = await a.swarms.invite('family')
  await b.swarms.join(code)
  return { a, b, swarm }
}

/** `twoDevicesSharing` in a new temp folder, with `a/docs/sub` made for a's share `docs` and `b/docs` named for b's copy. */
export async function twoDevicesWithDocs (prefix: string): Promise<{ root: string, dirA: string, dirB: string, a: TestDevice, b: TestDevice }> {
  const root = await tempDir(prefix)
  const dirA = join(root, 'a', 'docs')
  await mkdir(join(dirA, 'sub'), { recursive: true })
  const { a, b } = await twoDevicesSharing(root, { name: 'b' })
  return { root, dirA, dirB: join(root, 'b', 'docs'), a, b }
}

export interface CraftedMember {
  /** A file entry of the member's with one chunk. */
  file: (path: string, chunk: { cid: CID, length: number }, seq?: number, mtime?: number) => ShareEntry
  /** Serves a new head with `entries` and announces it to `to`; the snapshot root. */
  publish: (entries: ShareEntry[], seq: number) => Promise<string>
  /** When (ms) each published snapshot root was asked of the member. */
  rootAsks: Map<string, number[]>
}

/**
 * A member (a device without a share service) serving hand-made heads and
 * snapshot blocks of share `shareId` over SHARE_PROTOCOL, as a buggy or
 * hostile peer could; blocks of every head it published stay served.
 */
export async function craftedMember (m: TestDevice, to: TestDevice, swarm: string, shareId: string): Promise<CraftedMember> {
  const blocks = new Map<string, Uint8Array>()
  const rootAsks = new Map<string, number[]>()
  let announced: Array<{ id: string, name: string, swarm: string, head: Uint8Array }> = []
  const device = m.peerId.toString()
  await m.swarms.gate.handle(SHARE_PROTOCOL, async (stream) => {
    await serveShareStream(stream, {
      announce: async () => announced,
      bindShare: () => {},
      block: async (_share, cid) => {
        const key = cid.toString()
        rootAsks.get(key)?.push(Date.now())
        return blocks.get(key)
      }
    }, { signal: AbortSignal.timeout(5000) })
  })
  return {
    rootAsks,
    file: (path, chunk, seq = 1, mtime = 1_700_000_000_000) => ({
      path, type: 'file', size: chunk.length, mtime, mode: 0o644, version: { [device]: seq }, modifiedBy: device, chunks: [chunk]
    }),
    publish: async (entries, seq) => {
      const snapshot = await encodeSnapshot(entries)
      for (const b of snapshot.blocks) blocks.set(b.cid.toString(), b.bytes)
      const root = snapshot.root.toString()
      if (!rootAsks.has(root)) rootAsks.set(root, [])
      const head = await signHead({ share: shareId, device, seq, snapshot: snapshot.root }, m.privateKey)
      announced = [{ id: shareId, name: 'docs', swarm, head }]
      const { stream, release } = await m.swarms.gate.dial(swarm, to.peerId, SHARE_PROTOCOL)
      try {
        await exchangeAnnounce(stream, announced, { signal: AbortSignal.timeout(5000) })
      } finally {
        release()
      }
      return root
    }
  }
}

export interface MemberFixture {
  root: string
  /** The folder `a` shares. */
  dir: string
  a: TestDevice
  /** The crafted member's device (no share service). */
  m: TestDevice
  shareId: string
  member: CraftedMember
}

/**
 * `a` shares `<root>/a/docs` (as `docs`, swarm `family`) with `m`, a crafted
 * member; `prepare` fills the folder before the share is added.
 */
export async function shareWithCraftedMember (prefix: string, aInit: Partial<ShareServiceInit> = {}, prepare?: (dir: string) => Promise<void>): Promise<MemberFixture> {
  const root = await tempDir(prefix)
  const dir = join(root, 'a', 'docs')
  await mkdir(dir, { recursive: true })
  await prepare?.(dir)
  const { a, b: m, swarm } = await twoDevicesSharing(root, { name: 'm', shares: false }, aInit)
  const shareId = (await a.shares.addShare(dir, { swarm: 'family', name: 'docs' })).id
  return { root, dir, a, m, shareId, member: await craftedMember(m, a, swarm, shareId) }
}

export async function stopFixture (t: MemberFixture | undefined): Promise<void> {
  if (t == null) return
  await stopDevice(t.a)
  await stopDevice(t.m)
  await removeDir(t.root)
}
