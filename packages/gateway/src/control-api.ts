/**
 * The control API: the daemon's HTTP face for the CLI (and later the web UI).
 * Loopback by default, bearer token, Host allow-list, every socket and body bounded.
 */
import { isIP } from 'node:net'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { InvalidParametersError, NotFoundError } from '@homecloud/interface'
import type { AbortOptions } from '@homecloud/interface'
import type { HomecloudNode } from '@homecloud/node'
import { logger } from '@libp2p/logger'
import { API_PREFIX, DEFAULT_CONTROL_API_HOST, DEFAULT_CONTROL_API_LIMITS, MAX_MULTIADDR_LENGTH, MIN_TOKEN_LENGTH } from './constants.js'
import type { ControlApiLimits } from './constants.js'
import { MethodNotAllowedError, NotStartedError, RequestTooLargeError, UnauthenticatedError } from './errors.js'
import { allowedHostHeaders, checkHost, createTokenCheck, hostForm, readJsonBody } from './guards.js'
import { httpStatusFor } from './http-status.js'
import { swarmRoutes } from './swarm-routes.js'
import type { SwarmRoutesNode } from './swarm-routes.js'
import { contentRoutes } from './content-routes.js'
import type { ContentRoutesNode } from './content-routes.js'
import { shareRoutes } from './share-routes.js'
import type { ShareRoutesNode } from './share-routes.js'
import { streamNdjson, wantsNdjson } from './ndjson.js'

const log = logger('homecloud:gateway')
// not `import ... from 'node:http'`: any ES import of node:http reads every export, and its lazy
// `WebSocket` getter loads Node's internal undici (~2.3 MiB of V8 heap in every daemon)
const { createServer } = process.getBuiltinModule('node:http')

/** The parts of a device the control API asks questions of. */
export type ControlApiNode = Pick<HomecloudNode, 'identity' | 'status' | 'peers' | 'connect'> & SwarmRoutesNode & ContentRoutesNode & ShareRoutesNode

export interface ControlApiInit {
  node: ControlApiNode
  /** The bearer token every request must carry (at least 16 characters). */
  token: string
  /** Listen host; `127.0.0.1` by default. */
  host?: string
  /** Listen port; 0 (the default) picks a free port. */
  port?: number
  /** Extra Host header values to accept (`name` or `name:port`), e.g. a LAN name when listening beyond loopback. */
  allowedHosts?: string[]
  limits?: Partial<ControlApiLimits>
}

export interface ControlApi {
  /** `http://host:port` of the running API (the real port when 0 was asked). */
  readonly url: string
  start(): Promise<void>
  stop(): Promise<void>
}

export interface RouteContext {
  req: IncomingMessage
  signal: AbortSignal
  /** Set on a long route whose client asked for NDJSON: where its progress goes. */
  progress?: (detail: object) => void
}

export interface Route {
  method: 'GET' | 'POST'
  /** Long work (add, get, gc, verify): no operation timeout, NDJSON progress on request (`ndjson.ts`). */
  long?: boolean
  run(ctx: RouteContext): Promise<unknown>
}

export function createControlApi (init: ControlApiInit): ControlApi {
  if (typeof init.token !== 'string' || init.token.length < MIN_TOKEN_LENGTH) {
    throw new InvalidParametersError(`the control API token must be at least ${MIN_TOKEN_LENGTH} characters`)
  }
  const port = init.port ?? 0
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidParametersError(`invalid control API port ${String(port)}`)
  }
  const host = init.host ?? DEFAULT_CONTROL_API_HOST
  const limits: ControlApiLimits = { ...DEFAULT_CONTROL_API_LIMITS, ...init.limits }
  const { node } = init
  const checkToken = createTokenCheck(init.token)
  const routes = createRoutes(node, limits)

  let server: Server | undefined
  let url: string | undefined
  let allowedHosts: ReadonlySet<string> = new Set()
  let stopController = new AbortController()
  const socketsPerIp = new Map<string, number>()

  function limitSocketsPerIp (socket: Socket): void {
    const ip = socket.remoteAddress ?? 'unknown'
    const count = socketsPerIp.get(ip) ?? 0
    if (count >= limits.maxSocketsPerIp) {
      log('refusing socket from %s: %d sockets open', ip, count)
      socket.destroy()
      return
    }
    socketsPerIp.set(ip, count + 1)
    socket.once('close', () => {
      const left = (socketsPerIp.get(ip) ?? 1) - 1
      if (left <= 0) {
        socketsPerIp.delete(ip)
      } else {
        socketsPerIp.set(ip, left)
      }
    })
  }

  async function handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestController = new AbortController()
    res.once('close', () => { requestController.abort() })
    const cancel = [requestController.signal, stopController.signal]
    try {
      checkHost(req, allowedHosts)
      checkToken(req)
      const route = findRoute(routes, req)
      // long work lasts while the client waits for it: closing the connection (or stop) cancels it
      const signal = AbortSignal.any(route.long === true ? cancel : [...cancel, AbortSignal.timeout(limits.operationTimeoutMs)])
      if (route.long === true && wantsNdjson(req)) {
        await streamNdjson(res, async (progress) => route.run({ req, signal, progress }), sendError)
        return
      }
      sendJson(res, 200, await route.run({ req, signal }))
    } catch (err) {
      sendError(res, err)
    }
  }

  return {
    get url (): string {
      if (url === undefined) {
        throw new NotStartedError()
      }
      return url
    },

    async start (): Promise<void> {
      if (server !== undefined) {
        throw new NotStartedError('the control API is already started')
      }
      stopController = new AbortController()
      const s = createServer({
        headersTimeout: limits.headersTimeoutMs,
        requestTimeout: limits.requestTimeoutMs,
        keepAliveTimeout: limits.keepAliveTimeoutMs,
        maxHeaderSize: limits.maxHeaderBytes,
        // Node checks the two timeouts above only this often (30 s by default).
        connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs)
      }, (req, res) => { void handle(req, res) })
      s.maxConnections = limits.maxSockets
      s.on('connection', limitSocketsPerIp)
      server = s
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject)
        s.listen({ host, port }, () => {
          s.off('error', reject)
          resolve()
        })
      })
      s.on('error', (err) => { log.error('control API server error %e', err) })
      const address = s.address()
      if (address === null || typeof address === 'string') {
        throw new NotStartedError('the control API has no TCP address')
      }
      allowedHosts = allowedHostHeaders(host, address.port, init.allowedHosts)
      url = `http://${hostForm(urlHost(host))}:${address.port}`
      log('control API listening on %s', url)
    },

    async stop (): Promise<void> {
      const s = server
      if (s === undefined) {
        return
      }
      server = undefined
      url = undefined
      stopController.abort(new NotStartedError('the control API is stopping'))
      const closed = new Promise<void>((resolve) => { s.close(() => { resolve() }) })
      s.closeAllConnections()
      await closed
      log('control API stopped')
    }
  }
}

/** A wildcard listen address is reached through loopback. */
function urlHost (host: string): string {
  if (host === '0.0.0.0' || (isIP(host) === 6 && /^[:0]+$/.test(host))) {
    return '127.0.0.1'
  }
  return host
}

function createRoutes (node: ControlApiNode, limits: ControlApiLimits): Map<string, Route> {
  return new Map<string, Route>([
    ['id', { method: 'GET', run: async () => node.identity() }],
    ['status', { method: 'GET', run: async () => node.status() }],
    ['peers', { method: 'GET', run: async ({ signal }) => ({ peers: await node.peers({ signal }) }) }],
    ['connect', {
      method: 'POST',
      run: async ({ req, signal }) => {
        const multiaddr = parseConnectBody(await readJsonBody(req, limits.maxBodyBytes))
        const options: AbortOptions = { signal }
        return node.connect(multiaddr, options)
      }
    }],
    ...swarmRoutes(node, limits),
    ...contentRoutes(node, limits),
    ...shareRoutes(node, limits)
  ])
}

function findRoute (routes: Map<string, Route>, req: IncomingMessage): Route {
  const path = new URL(req.url ?? '/', 'http://control.invalid').pathname
  const route = path.startsWith(API_PREFIX) ? routes.get(path.slice(API_PREFIX.length)) : undefined
  if (route === undefined) {
    throw new NotFoundError(`no route ${path}`)
  }
  if (req.method !== route.method) {
    throw new MethodNotAllowedError(req.method ?? '', route.method)
  }
  return route
}

function parseConnectBody (body: unknown): string {
  const multiaddr = (body as { multiaddr?: unknown } | null)?.multiaddr
  if (typeof multiaddr !== 'string' || multiaddr.length === 0) {
    throw new InvalidParametersError('body must be a JSON object { "multiaddr": "/ip4/.../p2p/..." }')
  }
  if (multiaddr.length > MAX_MULTIADDR_LENGTH) {
    throw new InvalidParametersError(`multiaddr is longer than ${MAX_MULTIADDR_LENGTH} characters`)
  }
  return multiaddr
}

function sendJson (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) {
    return
  }
  const bytes = Buffer.from(JSON.stringify(body), 'utf8')
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(bytes.byteLength),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...headers
  })
  res.end(bytes)
}

function sendError (res: ServerResponse, err: unknown): void {
  const { status, code } = httpStatusFor(err)
  const message = err instanceof Error ? err.message : String(err)
  if (status >= 500) {
    log.error('control API request failed %e', err)
  } else {
    log('control API request refused: %s %s', code, message)
  }
  const headers: Record<string, string> = {}
  if (err instanceof UnauthenticatedError) {
    headers['www-authenticate'] = 'Bearer realm="homecloud"'
  }
  if (err instanceof MethodNotAllowedError) {
    headers.allow = err.allow
  }
  if (err instanceof RequestTooLargeError) {
    headers.connection = 'close'
  }
  sendJson(res, status, { error: { code, message } }, headers)
}
