/**
 * @packageDocumentation
 *
 * The one place that constructs libp2p: `createHomecloudNode` wires a device.
 */
import { HomecloudError } from '@homecloud/interface'
import type { HomecloudNode, HomecloudNodeConfig } from './types.js'

export type * from './types.js'
export { DEFAULT_LIMITS, type DeviceLimits } from './limits.js'

export async function createHomecloudNode (_config: HomecloudNodeConfig): Promise<HomecloudNode> {
  throw new HomecloudError('not implemented yet', 'ERR_NOT_IMPLEMENTED')
}
