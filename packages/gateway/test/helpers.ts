import { request as httpRequest } from 'node:http'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createHomecloudNode } from '@homecloud/node'
import type { HomecloudNode, HomecloudNodeConfig } from '@homecloud/node'
import { createControlApi } from '../src/index.js'
import type { ControlApi } from '../src/index.js'
import type { IncomingHttpHeaders } from 'node:http'
import type { DeviceIdentity, DeviceStatus, PeerConnectionInfo } from '@homecloud/interface'
import type { ControlApiNode } from '../src/index.js'

export const TOKEN = 'test-token-0123456789abcdef'

export interface Reply {
  status: number
  headers: IncomingHttpHeaders
  json: unknown
}

export interface RequestOptions {
  method?: string
  headers?: Record<string, string>
  body?: string | Buffer
}

/** One HTTP request on its own socket; `host` and `authorization` headers are exactly what is given. */
export async function request (url: string, path: string, options: RequestOptions = {}): Promise<Reply> {
  const target = new URL(path, url)
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: target.hostname,
      port: target.port,
      path: target.pathname + target.search,
      method: options.method ?? 'GET',
      headers: options.headers,
      agent: false,
      timeout: 5000
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let json: unknown
        try {
          json = text === '' ? undefined : JSON.parse(text)
        } catch {
          json = text
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, json })
      })
      res.on('error', reject)
    })
    req.on('timeout', () => { req.destroy(new Error('request timed out')) })
    req.on('error', reject)
    req.end(options.body)
  })
}

export function auth (url: string, token = TOKEN): Record<string, string> {
  return { authorization: `Bearer ${token}`, host: new URL(url).host }
}

export const identity: DeviceIdentity = {
  peerId: '12D3KooWStubStubStubStubStubStubStubStubStubStubStub',
  name: 'stub-box',
  addresses: ['/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWStubStubStubStubStubStubStubStubStubStubStub'],
  reachability: 'private'
}

export const peer: PeerConnectionInfo = {
  peerId: '12D3KooWPeerPeerPeerPeerPeerPeerPeerPeerPeerPeerPeer',
  address: '/ip4/127.0.0.1/tcp/4002',
  path: 'direct',
  direction: 'outbound',
  latencyMs: 3
}

export const status: DeviceStatus = {
  peerId: identity.peerId,
  name: identity.name,
  uptimeMs: 1234,
  connections: 1,
  peers: 1,
  reachability: 'private',
  dhtMode: 'client',
  relayReservations: [],
  rejectedPeerRecords: {}
}

/** A stub of the narrow node the API needs; `connect` behaviour is swappable per test. */
export interface StubNode extends ControlApiNode {
  dialled: string[]
  connectImpl: (multiaddr: string, signal?: AbortSignal) => Promise<PeerConnectionInfo>
  peersImpl: (signal?: AbortSignal) => Promise<PeerConnectionInfo[]>
}

export function stubNode (): StubNode {
  const stub: StubNode = {
    dialled: [],
    connectImpl: async () => peer,
    peersImpl: async () => [peer],
    identity: () => identity,
    status: () => status,
    peers: async (options) => stub.peersImpl(options?.signal),
    connect: async (multiaddr, options) => {
      stub.dialled.push(multiaddr)
      return stub.connectImpl(multiaddr, options?.signal)
    }
  }
  return stub
}

/** A real loopback device (no LAN/router services, no DHT) behind a started control API. */
export async function startDevice (name: string, extra: Partial<HomecloudNodeConfig> = {}): Promise<{ node: HomecloudNode, api: ControlApi }> {
  const node = await createHomecloudNode({
    privateKey: await generateKeyPair('Ed25519'),
    name,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    services: { mdns: false, upnp: false, autonat: false, websockets: false, dcutr: false, dht: 'off' },
    ...extra
  })
  const api = createControlApi({ node, token: TOKEN })
  await api.start()
  return { node, api }
}

export async function post (api: ControlApi, route: string, body: unknown): Promise<Reply> {
  return request(api.url, `/api/v1/${route}`, {
    method: 'POST',
    headers: { ...auth(api.url), 'content-type': 'application/json' },
    body: JSON.stringify(body)
  })
}

export async function get (api: ControlApi, route: string): Promise<Reply> {
  return request(api.url, `/api/v1/${route}`, { headers: auth(api.url) })
}
