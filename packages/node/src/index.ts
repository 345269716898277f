/**
 * @packageDocumentation
 *
 * The one place that constructs libp2p: `createHomecloudNode` wires a device
 * (TCP + WebSockets, Noise, Yamux, identify with signed peer records, ping,
 * Kademlia DHT, mDNS, AutoNAT v2, UPnP, circuit relay v2, DCUtR), with every
 * bound in {@link DEFAULT_LIMITS} and a device's addresses believed only from
 * its signed peer record (D2, {@link PeerRecordGuard}). Every device carries its
 * private swarms (`device.swarms`, state in `swarmDatastorePath`) and their access
 * gate (`device.gate`) for private protocols; as a relay server it relays without
 * limits between members of its swarms and with libp2p's defaults for everyone
 * else ({@link familyRelayServer}). Its shares (`device.shares`, state in
 * `shareDatastorePath`) keep folders identical on the members of a swarm; the
 * chunk exchange serves public content (what `add` pinned) to anyone and share
 * content only to the roster of the share's swarm ({@link deviceServePolicy}).
 *
 * @example
 *
 * ```ts
 * import { generateKeyPair } from '@libp2p/crypto/keys'
 * import { createHomecloudNode } from '@homecloud/node'
 *
 * const device = await createHomecloudNode({
 *   privateKey: await generateKeyPair('Ed25519'),
 *   name: 'living-room-pi',
 *   datastorePath: '/home/pi/.homecloud/datastore',
 *   swarmDatastorePath: '/home/pi/.homecloud/swarms',
 *   storePath: '/home/pi/.homecloud/store',
 *   listen: ['/ip4/0.0.0.0/tcp/4001'],
 *   services: { relayServer: false }
 * })
 *
 * console.log(device.identity())   // { peerId, name, addresses, reachability }
 * await device.connect('/ip4/192.168.1.20/tcp/4001/p2p/12D3Koo...')
 * console.log(await device.peers()) // [{ peerId, address, path: 'direct', direction, latencyMs }]
 * const { cid } = await device.add('/home/pi/Photos')             // indexed in place, announced in the DHT
 * await device.get(cid, '/home/pi/Copy', { from: ['/ip4/192.168.1.20/tcp/4001/p2p/12D3Koo...'] })
 * await device.stop()
 * ```
 */
export type * from './types.js'
export { createHomecloudNode } from './homecloud-node.js'
export { DEFAULT_LIMITS, resolveLimits, type DeviceLimits } from './limits.js'
export { DEFAULT_SERVICES, resolveConfig, parseMultiaddr, type ResolvedConfig } from './config.js'
export { PeerRecordGuard, PEER_RECORD_REJECTIONS, type PeerRecordGuardInit, type PeerRecordRejection, type PeerRecordVerdict, type PeerRecordStore } from './peer-record-guard.js'
export { identifyPeerStore, withPeerRecordGuard } from './identify-guard.js'
export { reachabilityOf, isRelayed } from './reachability.js'
export { parseStunServers, stunUrl, IceServers, lazyWebRTC, MAX_STUN_SERVERS, WEBRTC_MAX_BUFFERED_AMOUNT, type LazyWebRTCInit, type WebRTCTransportHandle } from './webrtc.js'
export { webrtcUpgrade, webrtcAddressFor, dialsFirst, type WebRTCUpgrade, type WebRTCUpgradeInit, type WebRTCUpgradeStats } from './webrtc-upgrade.js'
export { StunServer, parseBindingRequest, bindingResponse, readXorMappedAddress, DEFAULT_STUN_PORT, MAX_STUN_REQUEST_BYTES, type StunServerInit, type StunServerStats } from './stun-server.js'
export { stunService, queryStunPort, STUN_PROTOCOL, type StunService } from './stun-service.js'
export { noiseCrypto } from './noise-crypto.js'
export { parsePublicAddressRanges, publicAddressRule, MAX_PUBLIC_ADDRESS_RANGES, type IsPublicAddress } from './address-ranges.js'
export { NodeNotStartedError, DialFailedError, ListenError, InvalidParametersError, AbortError } from './errors.js'
// content (issue 3): add, get, blocks
export { NoProvidersError, OutputExistsError, BadDagError, UnsafeNameError } from './errors.js'
export type * from './content-types.js'
export { DeviceContent, resolveContentConfig, partialPathFor, SERVE_WHAT_IS_HELD, type DeviceContentInit } from './content.js'
export { walkTree, fileLeaves, checkEntryName, type TreeEntry, type Leaf, type InlineData } from './unixfs-tree.js'
export type { ServePolicy, PeerRate } from '@homecloud/exchange'
export type { StoreStat, ChunkStore } from '@homecloud/store'
export { familyRelayServer, FamilyRelayPolicy, RELAY_DEFAULT_DATA_LIMIT, RELAY_DEFAULT_DURATION_LIMIT_MS, type FamilyRelayInit } from './family-relay.js'
// upnp-ranges.js is not re-exported: its import loads nat-port-mapper + xml2js (~1 MiB); libp2p-options.ts imports it only when UPnP is on
export type { UpnpRangesInit, UpnpRangesComponents, UpnpRangesService } from './upnp-ranges.js'
export {
  DeviceSwarms, MemberRedial, MEMBER_REDIAL, redialDelay, resolveSwarmConfig, StaleMemberConnections, STALE_PROBE_PROTOCOL, STALE_PROBE_TIMEOUT_MS,
  type DeviceSwarmsInit, type MemberRedialInit, type RedialLibp2p, type StaleMemberConnectionsInit
} from './swarm-wiring.js'
// the swarm package's shapes, for the HTTP layer and the CLI (which depend on this package only)
export { renderInviteQr, JOIN_PROTOCOL, ROSTER_SYNC_PROTOCOL } from '@homecloud/swarm'
export type {
  SwarmService, RosterGate, SwarmInfo, SwarmMemberInfo, SwarmInviteInfo, CreatedInvite, SwarmStats, GatedStreamHandler, GateContext
} from '@homecloud/swarm'
export * from './constants.js'
// shares (issue 5): the device's share service and serve policy; the sync package's shapes for the HTTP layer and the CLI
export { DeviceShares, deviceServePolicy, resolveShareConfig, type DeviceSharesInit } from './share-wiring.js'
export { PublicContent, type PublicContentInit } from './public-content.js'
export { SHARE_MODES, ShareNotFoundError, ShareExistsError, VersionNotFoundError, DiskFullError, PathRejectedError } from '@homecloud/sync'
export type {
  ShareService, ShareMode, ShareInfo, ShareOffer, ShareStatus, ShareState, SharePeerStatus, SharePathError, HistoryVersion, HistoryReason
} from '@homecloud/sync'
