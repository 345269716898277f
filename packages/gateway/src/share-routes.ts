/**
 * Routes of the shares (issue 5), under `/api/v1/`:
 *
 * | route | in | out |
 * |---|---|---|
 * | `POST share/add` | `{ path, swarm, name?, mode? }` (path absolute) | `ShareInfo` |
 * | `POST share/accept` | `{ share, path, mode? }` (share: id or name of an offer) | `ShareInfo` |
 * | `GET share/list` | | `{ shares: ShareInfo[], offers: ShareOffer[] }` |
 * | `GET share/offers` | | `{ offers: ShareOffer[] }` |
 * | `GET share/status?share=` | | `ShareStatus`; without `share`: `{ shares: ShareStatus[] }` |
 * | `POST share/remove` | `{ share }` | `{ removed: ShareInfo }` (the folder stays) |
 * | `POST share/rescan` | `{ share }` | `ShareStatus` once the scan is done |
 * | `POST share/revert` | `{ share }` (receive-only) | `{ reverted: number, failed: [{ path, code, message }], failedTotal: number }` |
 * | `GET history?share=&path=` | | `{ share: ShareInfo, versions: HistoryVersion[] }`, newest first |
 * | `POST restore` | `{ share, path, version?, to? }` (to absolute, must not exist) | `{ restored: string }` (where it went) |
 *
 * `share` is a share's id or name; `path` in history/restore is the path
 * inside the share (`docs/a.txt`), checked by the share service's one path
 * policy. rescan, revert and restore are long (no operation timeout).
 * Errors go through the status table (`http-status.ts`).
 */
import { isAbsolute } from 'node:path'
import { InvalidParametersError } from '@homecloud/interface'
import type { HomecloudNode, ShareMode, ShareService } from '@homecloud/node'
import { MAX_PATH_LENGTH, MAX_SWARM_FIELD_LENGTH } from './constants.js'
import { NotImplementedError } from './errors.js'
import { queryOf, readJsonObject } from './guards.js'
import type { ControlApiLimits } from './constants.js'
import type { Route, RouteContext } from './control-api.js'

/** The part of a device the share routes use; a device without shares answers 501. */
export type ShareRoutesNode = Partial<Pick<HomecloudNode, 'shares'>>


export function shareRoutes (node: ShareRoutesNode, limits: ControlApiLimits): Array<[string, Route]> {
  const shares = (): ShareService => {
    if (node.shares == null) throw new NotImplementedError('this device has no shares')
    return node.shares
  }
  const body = async (ctx: RouteContext): Promise<Record<string, unknown>> => await readJsonObject(ctx.req, limits.maxBodyBytes)
  const query = (ctx: RouteContext): URLSearchParams => queryOf(ctx.req)
  return [
    ['share/add', {
      method: 'POST',
      run: async (ctx) => {
        const { path, swarm, name, mode } = await body(ctx)
        return shares().addShare(absolutePath(path, 'path'), {
          swarm: text(swarm, 'swarm'),
          ...(name === undefined ? {} : { name: text(name, 'name') }),
          ...(mode === undefined ? {} : { mode: text(mode, 'mode') as ShareMode }),
          signal: ctx.signal
        })
      }
    }],
    ['share/accept', {
      method: 'POST',
      run: async (ctx) => {
        const { share, path, mode } = await body(ctx)
        return shares().acceptShare(text(share, 'share'), absolutePath(path, 'path'), {
          ...(mode === undefined ? {} : { mode: text(mode, 'mode') as ShareMode }),
          signal: ctx.signal
        })
      }
    }],
    ['share/list', { method: 'GET', run: async () => ({ shares: shares().list(), offers: shares().offers() }) }],
    ['share/offers', { method: 'GET', run: async () => ({ offers: shares().offers() }) }],
    ['share/status', {
      method: 'GET',
      run: async (ctx) => {
        const share = query(ctx).get('share')
        const service = shares()
        if (share === null) return { shares: service.list().map(s => service.status(s.id)) }
        return service.status(text(share, 'share (query parameter)'))
      }
    }],
    ['share/remove', {
      method: 'POST',
      run: async (ctx) => {
        const share = text((await body(ctx)).share, 'share')
        const service = shares()
        const removed = service.status(share).share
        await service.removeShare(removed.id, { signal: ctx.signal })
        return { removed }
      }
    }],
    ['share/rescan', {
      method: 'POST',
      long: true,
      run: async (ctx) => {
        const share = text((await body(ctx)).share, 'share')
        await shares().rescan(share)
        return shares().status(share)
      }
    }],
    ['share/revert', {
      method: 'POST',
      long: true,
      run: async (ctx) => {
        const share = text((await body(ctx)).share, 'share')
        // the paths that failed come back with their code and message (status names them too)
        const { reverted, failed, failedTotal } = await shares().revert(share, { signal: ctx.signal })
        return { reverted, failed, failedTotal }
      }
    }],
    ['history', {
      method: 'GET',
      run: async (ctx) => {
        const params = query(ctx)
        const share = text(params.get('share') ?? undefined, 'share (query parameter)')
        const path = params.get('path')
        const service = shares()
        return { share: service.status(share).share, versions: service.history(share, path === null ? undefined : sharePath(path)) }
      }
    }],
    ['restore', {
      method: 'POST',
      long: true,
      run: async (ctx) => {
        const { share, path, version, to } = await body(ctx)
        if (version !== undefined && (typeof version !== 'number' || !Number.isSafeInteger(version) || version <= 0)) {
          throw new InvalidParametersError('version must be a positive integer')
        }
        const restored = await shares().restore(text(share, 'share'), sharePath(path), {
          ...(version === undefined ? {} : { version }),
          ...(to === undefined ? {} : { to: absolutePath(to, 'to') }),
          signal: ctx.signal
        })
        return { restored }
      }
    }]
  ]
}

function text (value: unknown, field: string): string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new InvalidParametersError(`${field} must be a non-empty string`)
  }
  if (value.length > MAX_SWARM_FIELD_LENGTH) {
    throw new InvalidParametersError(`${field} is longer than ${MAX_SWARM_FIELD_LENGTH} characters`)
  }
  return value
}

/** Paths are resolved by the client (the daemon's working folder means nothing to it). */
function absolutePath (value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_PATH_LENGTH || !isAbsolute(value) || value.includes('\0')) {
    throw new InvalidParametersError(`${field} must be an absolute path of at most ${MAX_PATH_LENGTH} characters`)
  }
  return value
}

/** A path inside a share; the share service's path policy decides the rest. */
function sharePath (value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_PATH_LENGTH) {
    throw new InvalidParametersError(`path must be a path inside the share of at most ${MAX_PATH_LENGTH} characters`)
  }
  return value
}
