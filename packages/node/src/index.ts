/**
 * @packageDocumentation
 *
 * The one place that constructs libp2p: `createHomecloudNode` wires a device
 * (TCP + WebSockets, Noise, Yamux, identify with signed peer records, ping,
 * Kademlia DHT, mDNS, AutoNAT v2, UPnP, circuit relay v2, DCUtR), with every
 * bound in {@link DEFAULT_LIMITS} and a device's addresses believed only from
 * its signed peer record (D2, {@link PeerRecordGuard}).
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
 *   listen: ['/ip4/0.0.0.0/tcp/4001'],
 *   services: { relayServer: false }
 * })
 *
 * console.log(device.identity())   // { peerId, name, addresses, reachability }
 * await device.connect('/ip4/192.168.1.20/tcp/4001/p2p/12D3Koo...')
 * console.log(await device.peers()) // [{ peerId, address, path: 'direct', direction, latencyMs }]
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
export { NodeNotStartedError, DialFailedError, ListenError, InvalidParametersError, AbortError } from './errors.js'
export * from './constants.js'
