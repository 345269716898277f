import { join } from 'node:path'
import { after, before } from 'node:test'
import { removeDir, tempDir as makeTempDir } from '@homecloud/test-support'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createHomecloudNode, type HomecloudNode, type HomecloudNodeConfig } from '../src/index.js'

/** Loopback only, nothing that talks to the LAN or the router. */
export const QUIET_SERVICES = {
  mdns: false,
  upnp: false,
  autonat: false,
  websockets: false,
  dcutr: false
} as const

export async function testConfig (name: string, overrides: Partial<HomecloudNodeConfig> = {}): Promise<HomecloudNodeConfig> {
  return {
    privateKey: await generateKeyPair('Ed25519'),
    name,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    ...overrides,
    services: { ...QUIET_SERVICES, dht: 'off', ...overrides.services }
  }
}

/** Creates and starts a loopback device; register it with `devices` so `stopAll` stops it. */
export async function startDevice (devices: HomecloudNode[], name: string, overrides: Partial<HomecloudNodeConfig> = {}): Promise<HomecloudNode> {
  const device = await createHomecloudNode(await testConfig(name, overrides))
  devices.push(device)
  return device
}

export async function stopAll (devices: HomecloudNode[]): Promise<void> {
  await Promise.all(devices.splice(0).map(async d => d.stop()))
}

export { waitFor } from '@homecloud/test-support'

export async function tempDir (): Promise<{ path: string, remove(): Promise<void> }> {
  const path = await makeTempDir('homecloud-node-')
  return { path, remove: async () => removeDir(path) }
}

export interface TestDevices {
  /** Devices to stop after the suite: `startDevice(devices, …)` adds to it, a hand-made one is pushed. */
  devices: HomecloudNode[]
  /** `parts` joined below the suite's temp folder (which exists once the suite's first `before` ran). */
  tempPath (...parts: string[]): string
}

/**
 * A describe's devices and temp folder: registers a `before` that makes the folder and an
 * `after` that stops every device and removes it, whatever failed. Call it first in the
 * describe, so the folder exists for the describe's own `before`.
 */
export function useDevices (): TestDevices {
  const devices: HomecloudNode[] = []
  let dir: string | undefined

  before(async () => { dir = await makeTempDir('homecloud-node-') })
  after(async () => {
    await stopAll(devices)
    if (dir != null) await removeDir(dir)
  })

  return {
    devices,
    tempPath: (...parts) => {
      if (dir == null) throw new Error('useDevices: the folder is made in `before`; use it in a hook or a test')
      return join(dir, ...parts)
    }
  }
}

/** The first loopback TCP address of a device, with its /p2p/. */
export function addressOf (device: HomecloudNode): string {
  const address = device.identity().addresses.find(a => a.startsWith('/ip4/127.0.0.1/tcp/'))

  if (address == null) {
    throw new Error(`${device.name} has no loopback address`)
  }

  return address
}
