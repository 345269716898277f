/**
 * @packageDocumentation
 *
 * Types, error classes and option shapes shared by every Home Cloud package.
 * No runtime code beyond the error classes.
 *
 * @example
 *
 * ```ts
 * import { NotFoundError, type AbortOptions } from '@homecloud/interface'
 *
 * async function find (cid: string, options: AbortOptions = {}): Promise<never> {
 *   options.signal?.throwIfAborted()
 *   throw new NotFoundError(`no block ${cid}`)
 * }
 * ```
 */
export type { AbortOptions } from '@libp2p/interface'
export type { ProgressEvent, ProgressOptions } from 'progress-events'
export { CustomProgressEvent } from 'progress-events'
export * from './errors.js'
export * from './device.js'
