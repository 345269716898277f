/**
 * @packageDocumentation
 *
 * What the packages' tests share: a bounded `waitFor` (tests wait on conditions, never on
 * sleeps), temp folders, a seeded PRNG for reproducible property tests, and a bare libp2p
 * node on loopback with a stream reader. Private: only test code depends on it (a
 * devDependency and a tsconfig reference of the packages that do).
 *
 * @example
 *
 * ```ts
 * import { inTempDir, seededBytes, seededRandom, waitFor } from '@homecloud/test-support'
 *
 * // the folder is removed when the callback returns or throws
 * await inTempDir(async (dir) => {
 *   await writeFile(join(dir, 'a.bin'), seededBytes(seededRandom(42), 1024))
 *   await waitFor(() => queue.length === 0, { timeout: 2_000, what: 'the queue to drain' })
 * }, 'hc-sync-')
 * ```
 */
export { drain, loopbackNode, type LoopbackNode } from './loopback-node.js'
export { inTempDir, removeDir, tempDir } from './temp-dir.js'
export { seededBytes, seededRandom } from './seeded-random.js'
export { waitFor, type WaitForOptions } from './wait-for.js'
