/**
 * @packageDocumentation
 *
 * HTTP for a device. Today: the control API the `homecloud` CLI talks to, under
 * `/api/v1/` (`GET id`, `GET status`, `GET peers`, `POST connect`, and the private
 * swarm routes under `swarm/`: see `swarm-routes.ts`; content: `POST add`, `POST get`,
 * `blocks/stat|gc|verify`, with NDJSON progress: see `content-routes.ts`; shares under `share/`,
 * `history` and `restore`: see `share-routes.ts`). Every request
 * needs `Authorization: Bearer <token>` and a Host header naming the API itself;
 * errors are `{ "error": { "code", "message" } }` with the status taken from
 * `HTTP_STATUS_BY_CODE`.
 *
 * @example
 *
 * ```ts
 * import { createControlApi } from '@homecloud/gateway'
 *
 * const api = createControlApi({ node, token, host: '127.0.0.1', port: 0 })
 * await api.start()
 * console.log(api.url) // http://127.0.0.1:41234
 * await api.stop()
 * ```
 */
export { createControlApi } from './control-api.js'
export type { ControlApi, ControlApiInit, ControlApiNode } from './control-api.js'
export type { SwarmRoutesNode } from './swarm-routes.js'
export type { ContentRoutesNode } from './content-routes.js'
export type { ShareRoutesNode } from './share-routes.js'
export { NDJSON_TYPE } from './ndjson.js'
export { DEFAULT_CONTROL_API_LIMITS, DEFAULT_CONTROL_API_HOST, API_PREFIX } from './constants.js'
export type { ControlApiLimits } from './constants.js'
export { HTTP_STATUS_BY_CODE, httpStatusFor } from './http-status.js'
export * from './errors.js'
