/**
 * How CLI commands reach the running daemon: the URL in `<repo>/api`, the token
 * in `<repo>/token`, plain node:http on loopback.
 */
import { request } from 'node:http'
import { readFile } from 'node:fs/promises'
import { RepoError } from '@homecloud/interface'
import type { AbortOptions } from '@homecloud/interface'
import { ControlApiError, DaemonNotRunningError } from './errors.js'
import { readToken } from './repo.js'
import type { RepoPaths } from './repo.js'

/** Largest answer the CLI reads from the daemon. */
export const MAX_RESPONSE_BYTES = 4 * 1024 * 1024

export interface ApiClient {
  readonly url: string
  get(route: string, options?: AbortOptions): Promise<unknown>
  post(route: string, body: unknown, options?: AbortOptions): Promise<unknown>
}

/** Find the daemon of a repo; DaemonNotRunningError when there is none. */
export async function connectToDaemon (paths: Pick<RepoPaths, 'root' | 'api' | 'token'>): Promise<ApiClient> {
  let url: string
  try {
    url = (await readFile(paths.api, 'utf8')).trim()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new DaemonNotRunningError(paths.root, { cause: err })
    }
    throw err
  }
  if (!/^http:\/\/[^/]+$/.test(url)) {
    throw new RepoError(`${paths.api} does not hold a control API URL (found ${JSON.stringify(url.slice(0, 100))})`)
  }
  return createApiClient(url, await readToken(paths), paths.root)
}

export function createApiClient (url: string, token: string, repoRoot: string): ApiClient {
  async function call (method: 'GET' | 'POST', route: string, body: unknown, options: AbortOptions): Promise<unknown> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), 'utf8')
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'application/json' }
    if (payload !== undefined) {
      headers['content-type'] = 'application/json'
      headers['content-length'] = String(payload.byteLength)
    }
    const { status, text } = await send(new URL(`/api/v1/${route}`, url), method, headers, payload, options).catch((err: unknown) => {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ECONNREFUSED' || code === 'ECONNRESET') {
        // the api file outlived its daemon (killed with -9, power loss)
        throw new DaemonNotRunningError(repoRoot, { cause: err })
      }
      throw err
    })
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch (err) {
      throw new ControlApiError(`the daemon sent an unreadable answer (HTTP ${status})`, 'ERR_BAD_RESPONSE', status, { cause: err })
    }
    if (status >= 200 && status < 300) {
      return json
    }
    const error = (json as { error?: { code?: unknown, message?: unknown } } | null)?.error
    throw new ControlApiError(
      typeof error?.message === 'string' ? error.message : `the daemon answered HTTP ${status}`,
      typeof error?.code === 'string' ? error.code : 'ERR_HTTP',
      status
    )
  }

  return {
    url,
    get: async (route, options = {}) => call('GET', route, undefined, options),
    post: async (route, body, options = {}) => call('POST', route, body, options)
  }
}

async function send (target: URL, method: string, headers: Record<string, string>, payload: Buffer | undefined, options: AbortOptions): Promise<{ status: number, text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(target, { method, headers, signal: options.signal, agent: false }, (res) => {
      const chunks: Buffer[] = []
      let size = 0
      res.on('data', (chunk: Buffer) => {
        size += chunk.byteLength
        if (size > MAX_RESPONSE_BYTES) {
          req.destroy(new ControlApiError(`the daemon's answer is larger than ${MAX_RESPONSE_BYTES} bytes`, 'ERR_BAD_RESPONSE', res.statusCode ?? 0))
          return
        }
        chunks.push(chunk)
      })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }) })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(payload)
  })
}
