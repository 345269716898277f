import { loopbackNode, type LoopbackNode } from '@homecloud/test-support'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { MemorySwarmDatastore, swarmService } from '../src/index.js'
import type { SwarmDatastore, SwarmService, SwarmServiceInit } from '../src/index.js'
import type { ContentRouting, Libp2p, PeerId, PrivateKey, Provider, Stream } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

/**
 * A provider table shared by the nodes of one test: the narrow `provide/findProviders` pair of
 * content routing (a DHT stand-in), answering with the addresses each node listens on.
 */
export class ProviderTable {
  readonly providers = new Map<string, Map<string, Provider>>()

  routingFor (node: Libp2p): Pick<ContentRouting, 'provide' | 'findProviders'> {
    const providers = this.providers
    return {
      provide: async (cid: CID) => {
        const key = cid.toString()
        const map = providers.get(key) ?? new Map<string, Provider>()
        map.set(node.peerId.toString(), { id: node.peerId, multiaddrs: node.getMultiaddrs(), routing: 'test' })
        providers.set(key, map)
      },
      findProviders: async function * (cid: CID) {
        yield * (providers.get(cid.toString())?.values() ?? [])
      }
    }
  }
}

export interface Device {
  node: LoopbackNode
  service: SwarmService
  datastore: SwarmDatastore
  privateKey: PrivateKey
  peerId: PeerId
}

export interface DeviceOptions extends Partial<SwarmServiceInit> {
  datastore?: SwarmDatastore
  table?: ProviderTable
  privateKey?: PrivateKey
  node?: LoopbackNode
}

/** A started libp2p node with a started swarm service wired to it. */
export async function createDevice (name: string, options: DeviceOptions = {}): Promise<Device> {
  const privateKey = options.privateKey ?? await generateKeyPair('Ed25519')
  const node = options.node ?? await loopbackNode(privateKey)
  const datastore = options.datastore ?? new MemorySwarmDatastore()
  const table = options.table ?? new ProviderTable()
  const service = swarmService({ deviceName: name, rendezvousIntervalMs: 0, ...options })({
    peerId: node.peerId,
    privateKey,
    registrar: node,
    dialer: node,
    connectionManager: node,
    events: node,
    addresses: node,
    peerStore: node.peerStore,
    contentRouting: table.routingFor(node),
    datastore
  })
  await service.start()
  return { node, service, datastore, privateKey, peerId: node.peerId }
}

export async function stopDevices (...devices: Array<Device | undefined>): Promise<void> {
  await Promise.all(devices.map(async d => {
    if (d === undefined) return
    await d.service.stop()
    await d.node.stop()
  }))
}

/** Send if the stream is still writable: a gate may already have reset it (which is the point). */
export function trySend (stream: Stream, bytes: Uint8Array): void {
  try {
    stream.send(bytes)
  } catch {
    // already reset by the far end
  }
}

/** Connect `a` to `b` (loopback). */
export async function connect (a: Device, b: Device): Promise<void> {
  await a.node.dial(b.node.getMultiaddrs())
}

/** A private test protocol, gated to one swarm: echoes one message back. */
export const ECHO = '/homecloud/test-echo/1.0.0'
export async function handleEcho (device: Device, swarmId: string): Promise<void> {
  await device.service.gate.handle(ECHO, async (stream) => {
    for await (const chunk of stream) {
      stream.send(chunk)
      break
    }
    await stream.close().catch(() => {})
  }, { swarm: swarmId })
}
