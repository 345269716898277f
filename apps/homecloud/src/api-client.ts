/**
 * How CLI commands reach the running daemon: the URL in `<repo>/api`, the token
 * in `<repo>/token`, plain node:http on loopback.
 */
import { readFile } from 'node:fs/promises'
import { RepoError } from '@homecloud/interface'
import type { AbortOptions } from '@homecloud/interface'
import { ControlApiError, DaemonNotRunningError } from './errors.js'
import { readToken } from './repo.js'
import type { RepoPaths } from './repo.js'

// not an ES import of node:http: that loads Node's internal undici (control-api.ts in the gateway says why)
const { request } = process.getBuiltinModule('node:http')

/** Largest answer the CLI reads from the daemon. */
export const MAX_RESPONSE_BYTES = 4 * 1024 * 1024

export interface ApiClient {
  readonly url: string
  get(route: string, options?: AbortOptions): Promise<unknown>
  post(route: string, body: unknown, options?: AbortOptions): Promise<unknown>
  /**
   * A long POST (add, get, gc, verify) with its progress: NDJSON lines, each
   * `progress` line handed to `onProgress`; resolves to the `result` line.
   */
  stream(route: string, body: unknown, onProgress: (progress: Record<string, unknown>) => void, options?: AbortOptions): Promise<unknown>
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
  function daemonGone (err: unknown): never {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ECONNREFUSED' || code === 'ECONNRESET') {
      // the api file outlived its daemon (killed with -9, power loss), or it died during the request
      throw new DaemonNotRunningError(repoRoot, { cause: err })
    }
    throw err
  }

  async function call (method: 'GET' | 'POST', route: string, body: unknown, options: AbortOptions): Promise<unknown> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), 'utf8')
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'application/json' }
    if (payload !== undefined) {
      headers['content-type'] = 'application/json'
      headers['content-length'] = String(payload.byteLength)
    }
    const { status, text } = await send(new URL(`/api/v1/${route}`, url), method, headers, payload, options).catch(daemonGone)
    return decode(status, text)
  }

  async function stream (route: string, body: unknown, onProgress: (progress: Record<string, unknown>) => void, options: AbortOptions): Promise<unknown> {
    const payload = Buffer.from(JSON.stringify(body), 'utf8')
    const headers: Record<string, string> = {
      authorization: `Bearer ${token}`,
      accept: 'application/x-ndjson, application/json',
      'content-type': 'application/json',
      'content-length': String(payload.byteLength)
    }
    const answer = await sendNdjson(new URL(`/api/v1/${route}`, url), headers, payload, onProgress, options).catch(daemonGone)
    if ('result' in answer) {
      return answer.result
    }
    // an error before any progress comes as plain JSON with its status
    return decode(answer.status, answer.text)
  }

  function decode (status: number, text: string): unknown {
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
    post: async (route, body, options = {}) => call('POST', route, body, options),
    stream: async (route, body, onProgress, options = {}) => stream(route, body, onProgress, options)
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

type StreamAnswer = { result: unknown } | { status: number, text: string }

/**
 * One request whose answer is NDJSON (progress lines, then a result or an
 * error line) or, for an early error, one JSON body. Lines are bounded; the
 * stream as a whole is not (a long get sends many progress lines).
 */
async function sendNdjson (
  target: URL, headers: Record<string, string>, payload: Buffer,
  onProgress: (progress: Record<string, unknown>) => void, options: AbortOptions
): Promise<StreamAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(target, { method: 'POST', headers, signal: options.signal, agent: false }, (res) => {
      const status = res.statusCode ?? 0
      const ndjson = status === 200 && /^application\/x-ndjson/i.test(res.headers['content-type'] ?? '')
      let buffered = ''
      let settled = false
      const fail = (err: Error): void => {
        settled = true
        req.destroy(err)
        reject(err)
      }
      const onLine = (line: string): void => {
        if (line.trim() === '' || settled) return
        let message: { type?: unknown, result?: unknown, error?: { code?: unknown, message?: unknown, status?: unknown } }
        try {
          message = JSON.parse(line)
        } catch (err) {
          fail(new ControlApiError('the daemon sent an unreadable progress line', 'ERR_BAD_RESPONSE', status, { cause: err }))
          return
        }
        if (message.type === 'progress') {
          const { type: _type, ...progress } = message as Record<string, unknown>
          onProgress(progress)
        } else if (message.type === 'result') {
          settled = true
          resolve({ result: message.result })
        } else if (message.type === 'error') {
          const error = message.error ?? {}
          fail(new ControlApiError(
            typeof error.message === 'string' ? error.message : 'the daemon reported an error',
            typeof error.code === 'string' ? error.code : 'ERR_HTTP',
            typeof error.status === 'number' ? error.status : status
          ))
        }
      }
      res.setEncoding('utf8')
      res.on('data', (text: string) => {
        buffered += text
        if (buffered.length > MAX_RESPONSE_BYTES) {
          fail(new ControlApiError(`the daemon sent a line longer than ${MAX_RESPONSE_BYTES} bytes`, 'ERR_BAD_RESPONSE', status))
          return
        }
        if (!ndjson) return
        let end: number
        while ((end = buffered.indexOf('\n')) !== -1) {
          onLine(buffered.slice(0, end))
          buffered = buffered.slice(end + 1)
        }
      })
      res.on('end', () => {
        if (ndjson) {
          onLine(buffered)
          if (!settled) {
            settled = true
            reject(new ControlApiError('the daemon ended the answer without a result', 'ERR_BAD_RESPONSE', status))
          }
          return
        }
        settled = true
        resolve({ status, text: buffered })
      })
      res.on('error', (err) => { if (!settled) fail(err) })
      res.on('close', () => {
        if (!settled) fail(Object.assign(new Error('the daemon closed the connection'), { code: 'ECONNRESET' }))
      })
    })
    req.on('error', reject)
    req.end(payload)
  })
}
