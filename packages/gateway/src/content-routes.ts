/**
 * Routes of content (issue 3), under `/api/v1/`:
 *
 * | route | in | out |
 * |---|---|---|
 * | `POST add` | `{ path }` (absolute) | `AddContentResult` `{ cid, files, bytes, provided }` |
 * | `POST get` | `{ cid, output, from? }` (output absolute; from: multiaddrs with /p2p/) | `GetContentResult` |
 * | `GET blocks/stat` | | `StoreStat` |
 * | `POST blocks/gc` | | `{ removedBlocks, removedBytes }` |
 * | `POST blocks/verify` | | `{ checked, bad: [{ cid, reason, path?, offset? }] }` |
 *
 * `add`, `get`, `blocks/gc` and `blocks/verify` are long: no operation
 * timeout (they run while the client waits; closing the connection cancels
 * them), and with `Accept: application/x-ndjson` they stream `ContentProgress`
 * lines before the result (`ndjson.ts`).
 */
import { isAbsolute } from 'node:path'
import { InvalidParametersError } from '@homecloud/interface'
import type { ContentOptions, HomecloudNode } from '@homecloud/node'
import { MAX_CID_LENGTH, MAX_FROM_ADDRESSES, MAX_MULTIADDR_LENGTH, MAX_PATH_LENGTH } from './constants.js'
import { NotImplementedError } from './errors.js'
import { readJsonObject } from './guards.js'
import type { ControlApiLimits } from './constants.js'
import type { Route, RouteContext } from './control-api.js'

/** The part of a device the content routes use; a device without it answers 501. */
export type ContentRoutesNode = Partial<Pick<HomecloudNode, 'add' | 'get' | 'blocks'>>

type Content = Pick<HomecloudNode, 'add' | 'get' | 'blocks'>

export function contentRoutes (node: ContentRoutesNode, limits: ControlApiLimits): Array<[string, Route]> {
  const content = (): Content => {
    if (node.add == null || node.get == null || node.blocks == null) throw new NotImplementedError('this device keeps no content')
    return node as Content
  }
  const body = async (ctx: RouteContext): Promise<Record<string, unknown>> => await readJsonObject(ctx.req, limits.maxBodyBytes)
  const options = (ctx: RouteContext): ContentOptions => ({
    signal: ctx.signal,
    onProgress: ctx.progress == null ? undefined : (evt) => { ctx.progress?.(evt.detail) }
  })
  return [
    ['add', {
      method: 'POST',
      long: true,
      run: async (ctx) => {
        const { path } = await body(ctx)
        return content().add(absolutePath(path, 'path'), options(ctx))
      }
    }],
    ['get', {
      method: 'POST',
      long: true,
      run: async (ctx) => {
        const { cid, output, from } = await body(ctx)
        if (typeof cid !== 'string' || cid.length === 0 || cid.length > MAX_CID_LENGTH) {
          throw new InvalidParametersError(`cid must be a string of 1 to ${MAX_CID_LENGTH} characters`)
        }
        return content().get(cid, absolutePath(output, 'output'), { ...options(ctx), from: addresses(from) })
      }
    }],
    ['blocks/stat', { method: 'GET', run: async ({ signal }) => content().blocks.stat({ signal }) }],
    ['blocks/gc', { method: 'POST', long: true, run: async (ctx) => content().blocks.gc(options(ctx)) }],
    ['blocks/verify', { method: 'POST', long: true, run: async (ctx) => content().blocks.verify(options(ctx)) }]
  ]
}

/** Paths are resolved by the client (the daemon's working folder means nothing to it). */
function absolutePath (value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_PATH_LENGTH || !isAbsolute(value) || value.includes('\0')) {
    throw new InvalidParametersError(`${field} must be an absolute path of at most ${MAX_PATH_LENGTH} characters`)
  }
  return value
}

function addresses (value: unknown): string[] {
  if (value === undefined) return []
  if (!Array.isArray(value) || value.length > MAX_FROM_ADDRESSES ||
      !value.every(item => typeof item === 'string' && item.length > 0 && item.length <= MAX_MULTIADDR_LENGTH)) {
    throw new InvalidParametersError(`from must be a list of at most ${MAX_FROM_ADDRESSES} multiaddrs`)
  }
  return value as string[]
}
