/**
 * Test devices for the share service: a real libp2p node on 127.0.0.1
 * (tcp + noise + yamux + identify), the swarm service, a LevelDB chunk
 * store, the chunk exchange serving with the share service's policy, and
 * the share service, all wired the way packages/node will wire them.
 */
import { createHash } from 'node:crypto'
import { lstat, readdir, readFile, readlink } from 'node:fs/promises'
import { join } from 'node:path'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { createChunkExchange, type ChunkExchange } from '@homecloud/exchange'
import { createLevelStore, type ChunkStore } from '@homecloud/store'
import { MemorySwarmDatastore, swarmService, type SwarmService } from '@homecloud/swarm'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { shareService, type ShareService, type ShareServiceInit } from '../src/index.js'
import type { Libp2p, PeerId, PrivateKey } from '@libp2p/interface'

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

export async function createNode (privateKey: PrivateKey): Promise<Libp2p> {
  return createLibp2p({
    privateKey,
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() },
    connectionMonitor: { enabled: false }
  })
}

const noRouting = {
  provide: async () => {},
  findProviders: async function * () {}
}

/** A device with everything but shares wired; `withShares` adds the share service. */
export async function createDevice (name: string, dir: string, init: Partial<ShareServiceInit> = {}, withShares = true): Promise<TestDevice> {
  const privateKey = await generateKeyPair('Ed25519')
  const node = await createNode(privateKey)
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
      peerId: node.peerId, privateKey, gate: swarms.gate, swarms, events: node, store, chunks: device.exchange
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

/** path → content hash or link target, for comparing folders byte for byte. */
export async function tree (root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  const stack = ['']
  while (stack.length > 0) {
    const dir = stack.pop() as string
    for (const name of await readdir(`${root}/${dir}`)) {
      // temp files of a write in progress come and go
      if (name.startsWith('.homecloud')) continue
      const path = dir === '' ? name : `${dir}/${name}`
      const s = await lstat(`${root}/${path}`).catch(() => undefined)
      if (s == null) continue
      if (s.isDirectory()) {
        out[path] = 'dir'
        stack.push(path)
      } else if (s.isSymbolicLink()) out[path] = `-> ${await readlink(`${root}/${path}`)}`
      else out[path] = createHash('sha256').update(await readFile(`${root}/${path}`).catch(() => 'gone')).digest('hex')
    }
  }
  return out
}

export async function sameTree (a: string, b: string): Promise<boolean> {
  return JSON.stringify(sortKeys(await tree(a))) === JSON.stringify(sortKeys(await tree(b)))
}

function sortKeys (o: Record<string, string>): Array<[string, string]> {
  return Object.entries(o).sort(([x], [y]) => x < y ? -1 : 1)
}

export async function readText (path: string): Promise<string | undefined> {
  return readFile(path, 'utf8').catch(() => undefined)
}
