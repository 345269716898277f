/**
 * @packageDocumentation
 *
 * Shares (DESIGN D5–D8): the network-free core. A scanner over a narrow
 * filesystem interface, per-file version vectors and deterministic conflict
 * resolution, dag-cbor snapshots and signed heads, the pull plan that reuses
 * every chunk already on the device, and atomic apply (temp file, fsync,
 * rename, directory fsync, then the index). One path policy guards every
 * name that reaches the disk.
 *
 * On top of it, `shareService` keeps shares in sync among the members of a
 * private swarm: watcher and rescans, signed heads, the share protocol
 * (`/homecloud/share/1.0.0`, through the roster gate), pulls with the chunk
 * exchange, history and restore, and the exchange's serve policy.
 *
 * @example
 *
 * ```ts
 * import { nodeFs, scanShare, planPull, applyPlan, cleanupTempFiles } from '@homecloud/sync'
 *
 * await cleanupTempFiles(nodeFs, root)
 * for await (const r of scanShare({ fs: nodeFs, root, chunkFile, previous: index })) record(r)
 * const plan = await planPull({ local: index, remote: await loadSnapshot(head.snapshot, blocks) })
 * await applyPlan(plan, { fs: nodeFs, root, reader, fetcher, onApplied: async (entries) => { await index.set(entries) } })
 *
 * const shares = shareService({ datastorePath: `${repo}/shares` })({
 *   peerId, privateKey, gate: swarms.gate, swarms, events: libp2p, store, chunks: exchange
 * })
 * await shares.start()
 * const docs = await shares.addShare('/home/me/Documents', { swarm: 'family' })
 * ```
 */
export * from './errors.js'
export * from './constants.js'
export * from './path-policy.js'
export * from './fs.js'
export { MemoryFs, type MemoryFsInit } from './memory-fs.js'
export * from './ignore.js'
export * from './entry.js'
export * from './version-vector.js'
export * from './conflict.js'
export * from './scanner.js'
export * from './local-change.js'
export * from './snapshot.js'
export * from './head.js'
export * from './plan.js'
export * from './apply.js'
export * from './share-kv.js'
export { SHARE_MODES, type ShareMode, type ShareDefinition } from './share-state.js'
export * from './share-types.js'
export { ShareService, shareService } from './share-service.js'
export type { HistoryVersion, HistoryReason, HistoryLimits } from './history.js'
export {
  exchangeAnnounce, requestBlocks, serveShareStream, decodeRequest, isShareId, ShareStream,
  type AnnouncedShare, type ShareRequest, type BlockReply, type ShareProtocolHandlers
} from './share-protocol.js'
export { ShareWatcher, inotifyQueueLimit, type ShareWatcherInit } from './watcher.js'
export { folderTree, sameFolders, type FolderTree } from './folder-tree.js'
