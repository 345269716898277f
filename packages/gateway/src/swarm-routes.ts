/**
 * Routes of the private swarms (issue 4), under `/api/v1/swarm/`:
 *
 * | route | in | out |
 * |---|---|---|
 * | `POST swarm/create` | `{ name }` | `SwarmInfo` |
 * | `POST swarm/invite` | `{ swarm, expiresInMs?, uses?, qr? }` | `{ code, swarmId, expires, uses, qr? }` |
 * | `POST swarm/join` | `{ code, name? }` | `SwarmInfo` |
 * | `GET swarm/list` | | `{ swarms: SwarmInfo[] }` |
 * | `GET swarm/members?swarm=NAME` | | `{ swarm: SwarmInfo, members: SwarmMemberInfo[] }` |
 * | `POST swarm/remove` | `{ swarm, device }` (device: name or PeerId) | `{ swarm: SwarmInfo, removed: { peerId, name } }` |
 * | `POST swarm/leave` | `{ swarm }` | `{ left: SwarmInfo }` |
 * | `GET swarm/stats` | | `SwarmStats` (gate refusals, rejected entries and records, joins) |
 *
 * `swarm` is a swarm's name or id. Errors go through the status table (`http-status.ts`).
 */
import { InvalidParametersError } from '@homecloud/interface'
import { renderInviteQr } from '@homecloud/node'
import type { HomecloudNode, SwarmService } from '@homecloud/node'
import { MAX_SWARM_FIELD_LENGTH } from './constants.js'
import { NotImplementedError } from './errors.js'
import { queryOf, readJsonObject } from './guards.js'
import type { ControlApiLimits } from './constants.js'
import type { Route, RouteContext } from './control-api.js'

/** The part of a device the swarm routes use; a device without swarms answers 501. */
export type SwarmRoutesNode = Partial<Pick<HomecloudNode, 'swarms'>>


export function swarmRoutes (node: SwarmRoutesNode, limits: ControlApiLimits): Array<[string, Route]> {
  const swarms = (): SwarmService => {
    if (node.swarms == null) throw new NotImplementedError('this device has no private swarms')
    return node.swarms
  }
  const body = async (ctx: RouteContext): Promise<Record<string, unknown>> => await readJsonObject(ctx.req, limits.maxBodyBytes)
  return [
    ['swarm/create', {
      method: 'POST',
      run: async (ctx) => {
        const { name } = await body(ctx)
        return swarms().create(text(name, 'name'), { signal: ctx.signal })
      }
    }],
    ['swarm/invite', {
      method: 'POST',
      run: async (ctx) => {
        const { swarm, expiresInMs, uses, qr } = await body(ctx)
        const invite = await swarms().invite(text(swarm, 'swarm'), {
          expiresInMs: integer(expiresInMs, 'expiresInMs'),
          uses: integer(uses, 'uses'),
          signal: ctx.signal
        })
        if (flag(qr, 'qr')) return { ...invite, qr: await renderInviteQr(invite.code) }
        return invite
      }
    }],
    ['swarm/join', {
      method: 'POST',
      run: async (ctx) => {
        const { code, name } = await body(ctx)
        return swarms().join(text(code, 'code'), { name: name === undefined ? undefined : text(name, 'name'), signal: ctx.signal })
      }
    }],
    ['swarm/list', { method: 'GET', run: async () => ({ swarms: swarms().list() }) }],
    ['swarm/members', {
      method: 'GET',
      run: async ({ req }) => {
        const swarm = text(queryOf(req).get('swarm') ?? undefined, 'swarm (query parameter)')
        const service = swarms()
        return { swarm: service.get(swarm), members: service.members(swarm) }
      }
    }],
    ['swarm/remove', {
      method: 'POST',
      run: async (ctx) => {
        const fields = await body(ctx)
        const swarm = text(fields.swarm, 'swarm')
        const device = text(fields.device, 'device')
        const service = swarms()
        const before = service.members(swarm)
        await service.remove(swarm, device, { signal: ctx.signal })
        // the service resolved `device` the same way: by PeerId first, else by its one name
        const removed = before.find(m => m.peerId === device) ?? before.find(m => m.name === device)
        return { swarm: service.list().find(s => s.name === swarm || s.id === swarm) ?? null, removed: { peerId: removed?.peerId, name: removed?.name } }
      }
    }],
    ['swarm/leave', {
      method: 'POST',
      run: async (ctx) => {
        const swarm = text((await body(ctx)).swarm, 'swarm')
        const service = swarms()
        const info = service.get(swarm)
        await service.leave(swarm, { signal: ctx.signal })
        return { left: info }
      }
    }],
    ['swarm/stats', { method: 'GET', run: async () => swarms().stats() }]
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

function integer (value: unknown, field: string): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw new InvalidParametersError(`${field} must be an integer`)
  }
  return value
}

function flag (value: unknown, field: string): boolean {
  if (value === undefined) return false
  if (typeof value !== 'boolean') throw new InvalidParametersError(`${field} must be true or false`)
  return value
}
