/**
 * The libp2p 3 options of a device: which transports and services run, with
 * which limits. The only place in Home Cloud that chooses libp2p modules.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { autoNATv2 } from '@libp2p/autonat-v2'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { dcutr } from '@libp2p/dcutr'
import { identify, identifyPush } from '@libp2p/identify'
import { serviceCapabilities, transportSymbol } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { WebSockets, WebSocketsSecure } from '@multiformats/multiaddr-matcher'
import { dhtAutoMode, publicAddressRule } from './address-ranges.js'
import { guardEmptyWalks } from './dht-walk-guard.js'
import { noiseCrypto } from './noise-crypto.js'
import { DHT_PROTOCOL, FAMILY_RELAY_RESERVATIONS, LOG_SCOPE, MDNS_SERVICE_TAG } from './constants.js'
import { InvalidParametersError } from './errors.js'
import { familyRelayServer } from './family-relay.js'
import { withPeerRecordGuard } from './identify-guard.js'
import { nodeAddresses, reachabilityOf } from './reachability.js'
import { stunService } from './stun-service.js'
import { IceServers, lazyWebRTC, type WebRTCTransportHandle } from './webrtc.js'
import { webrtcUpgrade } from './webrtc-upgrade.js'
import type { DeviceServices } from './types.js'
import type { ResolvedConfig } from './config.js'
import type { PeerRecordGuard } from './peer-record-guard.js'
import type { CircuitRelayServerComponents } from '@libp2p/circuit-relay-v2'
import type { KadDHTComponents } from '@libp2p/kad-dht'
import type { Connection, DialTransportOptions, Listener, PeerDiscovery, PeerId, PeerInfo, Transport } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Datastore } from 'interface-datastore'
import type { Libp2pOptions, ServiceFactoryMap } from 'libp2p'

const log = logger(`${LOG_SCOPE}:libp2p`)

export interface DeviceLibp2pInit {
  config: ResolvedConfig
  guard: PeerRecordGuard
  /** Where the peer store and DHT records live; libp2p's in-memory store when absent. */
  datastore?: Datastore
  /** Called for every peer mDNS finds on the LAN. */
  onLanPeer(peer: PeerInfo): void
  /** Is `peer` a member of one of this device's swarms? (the relay server's policy) */
  isMember(peer: PeerId): boolean
  /** The chunk exchange service (content.ts), serving from the device's store. */
  chunks?: ServiceFactoryMap[string]
}

/** Service names on `libp2p.services`; optional ones are absent when turned off. */
export const SERVICE = {
  identify: 'identify',
  identifyPush: 'identifyPush',
  ping: 'ping',
  dht: 'dht',
  dhtMode: 'dhtAutoMode',
  autonat: 'autonat',
  upnp: 'upnp',
  relayServer: 'relay',
  dcutr: 'dcutr',
  addresses: 'nodeAddresses',
  chunks: 'chunks',
  webrtcUpgrade: 'webrtcUpgrade',
  stun: 'stun'
} as const

/**
 * The modules of services a device may leave off, imported only when its config turns them
 * on: each costs memory for as long as the daemon runs (kad-dht ~3 MiB, UPnP with its XML
 * parser ~8, WebSockets ~7 before the daemon's own HTTP), bench/idle-rss.mjs, issue 5 f.
 */
async function optionalModules (on: DeviceServices, upnpByRanges: boolean, listensOnWebSockets: boolean): Promise<{
  dht?: typeof import('@libp2p/kad-dht')
  upnpNat?: typeof import('@libp2p/upnp-nat')
  upnpRanges?: typeof import('./upnp-ranges.js')
  mdns?: typeof import('@libp2p/mdns')
  webSockets?: typeof import('@libp2p/websockets')
}> {
  const [dht, upnpNat, upnpRanges, mdns, webSockets] = await Promise.all([
    on.dht !== 'off' ? import('@libp2p/kad-dht') : undefined,
    on.upnp && !upnpByRanges ? import('@libp2p/upnp-nat') : undefined,
    on.upnp && upnpByRanges ? import('./upnp-ranges.js') : undefined,
    on.mdns ? import('@libp2p/mdns') : undefined,
    on.websockets && listensOnWebSockets ? import('@libp2p/websockets') : undefined
  ])
  return { dht, upnpNat, upnpRanges, mdns, webSockets }
}

export async function deviceLibp2pOptions (init: DeviceLibp2pInit): Promise<Libp2pOptions> {
  const { config, guard } = init
  const { services: on, limits } = config
  const modules = await optionalModules(on, config.publicAddressRanges.length > 0, config.listen.some(address => address.includes('/ws')))
  const isPublic = publicAddressRule(config.publicAddressRanges)

  const services: ServiceFactoryMap = {
    // identify, identify-push and ping are always on: DHT, AutoNAT, relay and DCUtR depend on them
    [SERVICE.identify]: withPeerRecordGuard(identify({
      maxMessageSize: limits.maxIdentifyMessageBytes,
      maxInboundStreams: 1,
      maxOutboundStreams: 1
    }), guard),
    [SERVICE.identifyPush]: withPeerRecordGuard(identifyPush({
      maxMessageSize: limits.maxIdentifyMessageBytes,
      maxInboundStreams: 1,
      maxOutboundStreams: 1
    }), guard),
    // the ping spec: at most one outbound stream per peer, two inbound
    [SERVICE.ping]: ping({ maxInboundStreams: 2, maxOutboundStreams: 1 }),
    [SERVICE.addresses]: nodeAddresses({ isPublic })
  }

  if (modules.dht !== undefined) {
    const { kadDHT, passthroughMapper } = modules.dht
    const dht = kadDHT({
      protocol: DHT_PROTOCOL,
      // 'auto' starts as a client; dhtAutoMode below switches to server once the device has a public
      // address (D3). kad-dht's own switch is left off: it hardcodes libp2p's private ranges.
      clientMode: on.dht !== 'server',
      // the default mapper drops private addresses, which makes a LAN or loopback DHT empty
      peerInfoMapper: passthroughMapper,
      allowQueryWithZeroPeers: true,
      maxInboundStreams: Math.min(32, limits.maxStreamsPerProtocol),
      maxOutboundStreams: limits.maxStreamsPerProtocol
    })
    // kad-dht reads the ping service from its components, which libp2p's ServiceFactoryMap type cannot express
    // guarded: an empty routing table would make libp2p's random walk spin (dht-walk-guard.ts)
    services[SERVICE.dht] = (components) => guardEmptyWalks(dht(components as unknown as KadDHTComponents))

    if (on.dht === 'auto') {
      services[SERVICE.dhtMode] = dhtAutoMode({
        isPublic,
        service: SERVICE.dht,
        onError: (err) => { log.error('could not switch the DHT mode - %e', err) }
      })
    }
  }

  if (on.autonat) {
    services[SERVICE.autonat] = autoNATv2()
  }

  // uPnPNAT refuses a gateway whose external address is private; with public ranges the device maps by its own rule
  if (modules.upnpRanges !== undefined) {
    services[SERVICE.upnp] = modules.upnpRanges.upnpRanges({ isPublic })
  } else if (modules.upnpNat !== undefined) {
    services[SERVICE.upnp] = modules.upnpNat.uPnPNAT()
  }

  if (on.relayServer !== false) {
    // unlimited for the family, libp2p's defaults for everyone else (D4)
    const relayInit = {
      maxReservations: limits.maxRelayReservations,
      memberReservations: FAMILY_RELAY_RESERVATIONS,
      isMember: init.isMember
    }
    services[SERVICE.relayServer] = on.relayServer === 'auto'
      // reservations only while publicly reachable, by the same rule as the device's `reachability`
      ? (components: CircuitRelayServerComponents) => familyRelayServer({
          ...relayInit,
          acceptsReservations: () => reachabilityOf(components.addressManager.getAddressesWithMetadata(), isPublic) === 'public'
        })(components)
      : familyRelayServer(relayInit)
  }

  if (init.chunks != null) {
    services[SERVICE.chunks] = init.chunks
  }

  if (on.dcutr) {
    services[SERVICE.dcutr] = dcutr()
  }

  let webrtc: WebRTCTransportHandle | undefined
  const ice = new IceServers(config.stunServers, init.isMember)
  if (on.webrtc) {
    services[SERVICE.webrtcUpgrade] = webrtcUpgrade({ ice, transport: () => webrtc, isMember: init.isMember })
  }

  if (on.stunServer) {
    services[SERVICE.stun] = stunService({ port: config.stunServerPort })
  }

  const peerDiscovery: NonNullable<Libp2pOptions['peerDiscovery']> = []

  if (modules.mdns !== undefined) {
    const factory = modules.mdns.mdns({ serviceTag: MDNS_SERVICE_TAG })
    peerDiscovery.push((components) => {
      const discovery: PeerDiscovery = factory(components)
      discovery.addEventListener('peer', (evt) => { init.onLanPeer(evt.detail) })
      return discovery
    })
  }

  return {
    privateKey: config.privateKey,
    datastore: init.datastore,
    addresses: {
      listen: config.listen,
      appendAnnounce: config.announce
    },
    transports: [
      tcp({ maxConnections: limits.maxConnections }),
      // a device that does not listen on WebSockets only dials them: the module (with ws and Node's undici) at the first dial
      ...(on.websockets ? [modules.webSockets?.webSockets() ?? webSocketsOnDemand()] : []),
      // always on: a device behind NAT is reached through relays (D4)
      circuitRelayTransport(),
      // hole punching from a relayed connection (issue 6); no `/webrtc` listener is needed to answer
      // loaded at its first use unless the device listens on /webrtc (an idle device's memory, issue 5 f)
      ...(on.webrtc ? [lazyWebRTC({ ice, onDemand: !config.listen.some(address => address.includes('/webrtc')) }, (handle) => { webrtc = handle })] : [])
    ],
    connectionEncrypters: [noise({ crypto: noiseCrypto })],
    streamMuxers: [yamux({
      maxInboundStreams: limits.maxStreamsPerConnection,
      maxOutboundStreams: limits.maxStreamsPerConnection
    })],
    connectionManager: {
      maxConnections: limits.maxConnections,
      maxIncomingPendingConnections: limits.maxPendingConnections,
      maxParallelDials: limits.maxPendingConnections,
      inboundConnectionThreshold: limits.inboundConnectionsPerIpPerSecond
    },
    // slow home uplinks delay pings behind bulk data; a late ping is not a dead connection (FACTS.md)
    connectionMonitor: { abortConnectionOnPingFailure: false },
    peerDiscovery,
    services,
    start: false
  }
}

/** What @libp2p/websockets dials (and listens on). */
function isWebSocketAddress (ma: Multiaddr): boolean {
  return WebSockets.exactMatch(ma) || WebSocketsSecure.exactMatch(ma)
}

/**
 * The WebSockets transport of a device with no WebSockets listen address: dials only, and
 * imports `@libp2p/websockets` at its first dial (an idle daemon's memory, issue 5 f).
 */
function webSocketsOnDemand (): (components: unknown) => Transport {
  return (components) => {
    let inner: Promise<Transport> | undefined
    return {
      [transportSymbol]: true,
      [Symbol.toStringTag]: '@homecloud/websockets-on-demand',
      [serviceCapabilities]: ['@libp2p/transport'],
      async dial (ma: Multiaddr, options: DialTransportOptions): Promise<Connection> {
        inner ??= import('@libp2p/websockets').then(({ webSockets }) => webSockets()(components as Parameters<ReturnType<typeof webSockets>>[0]))
        return (await inner).dial(ma, options)
      },
      createListener (): Listener {
        // never called: listenFilter accepts no address
        throw new InvalidParametersError('this device does not listen on WebSockets')
      },
      listenFilter: () => [],
      dialFilter: (multiaddrs: Multiaddr[]) => multiaddrs.filter(isWebSocketAddress)
    }
  }
}
