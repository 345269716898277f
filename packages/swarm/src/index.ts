/**
 * @packageDocumentation
 *
 * Private swarms (DESIGN.md D1, D2): a secret, a signed replicated roster, invites, the access
 * gate every private protocol goes through, rendezvous in the DHT under a key derived from the
 * secret, and revocation. `packages/node` wires `swarmService` to the libp2p node; other
 * packages gate their private protocols with `service.gate`.
 *
 * @example
 *
 * ```ts
 * import { swarmService, MemorySwarmDatastore } from '@homecloud/swarm'
 *
 * const swarms = swarmService({ deviceName: 'pi-home' })({
 *   peerId: libp2p.peerId, privateKey, registrar: libp2p, dialer: libp2p, connectionManager: libp2p,
 *   events: libp2p, addresses: libp2p, peerStore: libp2p.peerStore,
 *   contentRouting: libp2p.contentRouting, datastore: new MemorySwarmDatastore()
 * })
 * await swarms.start()
 * const family = await swarms.create('family')
 * const { code } = await swarms.invite('family', { expiresInMs: 24 * 3600_000 })
 * // on the other device: await otherSwarms.join(code)
 * await swarms.gate.handle('/homecloud/share-sync/1.0.0', (stream, connection, { bind }) => {
 *   bind(family.id) // resets the stream unless the remote is on the roster of `family`
 * }, { swarm: family.id })
 * ```
 */
export * from './constants.js'
export * from './errors.js'
export { swarmService, SwarmService } from './swarm-service.js'
export type {
  SwarmComponents, SwarmServiceInit, SwarmInfo, SwarmMemberInfo, SwarmInviteInfo, InviteOptions, CreatedInvite, JoinOptions,
  RendezvousResult, SwarmStats, SwarmEvents
} from './types.js'
export { RosterGate } from './gate.js'
export { FramedStream } from './framed-stream.js'
export type { Membership, GateContext, GatedStreamHandler, GateOptions, GateComponents, GateDialOptions, GateStats } from './gate.js'
export { RosterLog } from './roster.js'
export type { Member, RecordedInvite, RosterState, AddResult } from './roster.js'
export { createEntry, decodeEntry } from './entry.js'
export type { RosterEntry, EntryBody, EntryDraft, EntryType } from './entry.js'
export { encodeInvite, decodeInvite, renderInviteQr, inviteKey, joinProofPayload, INVITE_VERSION } from './invite.js'
export type { Invite } from './invite.js'
export { rendezvousCid, PeerRecordGuard, Rendezvous } from './rendezvous.js'
export type { PeerRecordRejection, PeerRecordVerdict, FoundMember, RendezvousStats } from './rendezvous.js'
export { MemorySwarmDatastore, LevelSwarmDatastore } from './datastore.js'
export type { SwarmDatastore, LevelLike } from './datastore.js'
export { secretCommit } from './swarm.js'
