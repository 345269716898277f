/**
 * The lab of the WebRTC scenarios (6 and 7): a public member device and two homes, WebRTC on;
 * and the helpers every lab spec uses (peers, relay address, file hash, teardown).
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { waitFor } from '@homecloud/test-support'
import { createLab, LabDevice, type Lab, type NatPreset } from '../src/index.js'

export interface Id { peerId: string }
export interface Status { relayReservations: string[] }
export interface PeerRow { peerId: string, address: string, path: 'direct' | 'relayed' }
export interface GetResult { bytes: number, receivedBytes: number }

export interface WebRTCLab {
  lab: Lab
  pub: LabDevice
  a: LabDevice
  b: LabDevice
  aId: string
  /** A's address through the public device's relay. */
  aRelay: string
  devices: LabDevice[]
}

export function sha256 (path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex')
}

export async function peersOf (device: LabDevice): Promise<PeerRow[]> {
  return (await device.json<{ peers: PeerRow[] }>(['peers'])).peers
}

/**
 * A WebRTC connection: direct, the relay only set it up. The dialling side's address names the
 * relay (`…/p2p-circuit/webrtc/p2p/X`), the answering side's is just `/webrtc/p2p/X`.
 */
export function isWebRTC (row: PeerRow): boolean {
  return row.path === 'direct' && /(^|\/)webrtc\/p2p\//.test(row.address)
}

/** Bytes the public device has received so far (all of the relay's traffic passes its eth0). */
export async function bytesInto (lab: Lab, device: LabDevice): Promise<number> {
  const result = await lab.exec(device.host, 'cat', ['/sys/class/net/eth0/statistics/rx_bytes'], 5_000)
  assert.equal(result.code, 0, result.stderr)
  return Number(result.stdout.trim())
}

export async function relayAddressOf (device: LabDevice, relayIp: string): Promise<string> {
  return waitFor(async () => {
    const { relayReservations } = await device.json<Status>(['status'])
    return relayReservations.find(a => a.startsWith(`/ip4/${relayIp}/`))
  }, { timeout: 20_000, interval: 50, what: `${device.name}'s relay reservation` })
}

/**
 * A public member device (relay, DHT server, STUN server) and two homes behind `natA` / `natB`,
 * all with WebRTC on, in one private swarm; B not yet connected to A.
 */
export async function buildWebRTCLab (natA: NatPreset, natB: NatPreset): Promise<WebRTCLab> {
  const lab = createLab({ log: console.log })
  const devices: LabDevice[] = []
  try {
    const pub = new LabDevice(lab, lab.addPublicHost('pub'), { relayServer: true, dht: 'server', webrtc: true, stunServer: true })
    devices.push(pub)
    await pub.start()
    const pubId = await pub.json<Id>(['id'])
    const bootstrap = [`/ip4/${pub.host.ip}/tcp/4001/p2p/${pubId.peerId}`]
    const a = new LabDevice(lab, lab.addHome('ha', { nat: natA }).addDevice('a1'), { relayClient: true, bootstrap, webrtc: true })
    const b = new LabDevice(lab, lab.addHome('hb', { nat: natB }).addDevice('b1'), { relayClient: true, bootstrap, webrtc: true })
    devices.push(a, b)
    await Promise.all([a.start(), b.start()])
    await pub.json(['swarm', 'create', 'family'])
    const invite = (await pub.json<{ code: string }>(['swarm', 'invite', 'family', '--uses', '2'])).code
    const [aRelay] = await Promise.all([relayAddressOf(a, pub.host.ip), relayAddressOf(b, pub.host.ip)])
    await a.json(['swarm', 'join', invite])
    await b.json(['swarm', 'join', invite])
    const aId = (await a.json<Id>(['id'])).peerId
    return { lab, pub, a, b, aId, aRelay, devices }
  } catch (err) {
    await teardown(lab, devices)
    throw err
  }
}

export async function teardown (lab: Lab | undefined, devices: LabDevice[]): Promise<void> {
  try {
    await Promise.all(devices.map(async d => d.stop()))
  } finally {
    lab?.cleanup()
  }
}

/** B connects to A through the relay; resolves with the time of that connection. */
export async function connectRelayed (l: WebRTCLab): Promise<{ started: number, firstConnectionMs: number }> {
  const started = performance.now()
  await l.b.json(['connect', l.aRelay])
  return { started, firstConnectionMs: performance.now() - started }
}

