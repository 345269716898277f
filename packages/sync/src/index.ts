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
 * @example
 *
 * ```ts
 * import { nodeFs, scanShare, planPull, applyPlan, cleanupTempFiles } from '@homecloud/sync'
 *
 * await cleanupTempFiles(nodeFs, root)
 * for await (const r of scanShare({ fs: nodeFs, root, chunkFile, previous: index })) record(r)
 * const plan = await planPull({ local: index, remote: await loadSnapshot(head.snapshot, blocks) })
 * await applyPlan(plan, { fs: nodeFs, root, reader, fetcher, onApplied: async (e) => { index.set(e.path, e) } })
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
