import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
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

/** Polls `fn` until it returns a truthy value, or fails after `timeout` ms. */
export async function waitFor<T> (fn: () => T | Promise<T>, { timeout = 5_000, interval = 20, what = 'condition' } = {}): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeout
  let lastError: unknown

  while (Date.now() < deadline) {
    try {
      const value = await fn()

      if (value) {
        return value as NonNullable<T>
      }
    } catch (err) {
      lastError = err
    }

    await new Promise(resolve => setTimeout(resolve, interval))
  }

  throw new Error(`timed out after ${timeout} ms waiting for ${what}`, { cause: lastError })
}

export async function tempDir (): Promise<{ path: string, remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), 'homecloud-node-'))
  return { path, remove: async () => rm(path, { recursive: true, force: true }) }
}

/** The first loopback TCP address of a device, with its /p2p/. */
export function addressOf (device: HomecloudNode): string {
  const address = device.identity().addresses.find(a => a.startsWith('/ip4/127.0.0.1/tcp/'))

  if (address == null) {
    throw new Error(`${device.name} has no loopback address`)
  }

  return address
}
