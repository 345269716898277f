/**
 * The checks every control API request passes before it reaches a route:
 * the Host allow-list (DNS rebinding), the bearer token, and a bounded body reader.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { InvalidParametersError, PermissionDeniedError } from '@homecloud/interface'
import { RequestTooLargeError, UnauthenticatedError, UnsupportedMediaTypeError } from './errors.js'

/** `host` as it appears in a Host header: IPv6 literals in brackets. */
export function hostForm (host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host
}

/**
 * The Host header values that name this API: its loopback forms, the configured
 * host, and any extra names the caller allows, all with the real port.
 */
export function allowedHostHeaders (host: string, port: number, extra: readonly string[] = []): Set<string> {
  const names = ['127.0.0.1', 'localhost', '[::1]', hostForm(host.toLowerCase())]
  const allowed = new Set<string>()
  for (const name of names) {
    allowed.add(`${name}:${port}`)
    if (port === 80) {
      allowed.add(name)
    }
  }
  for (const entry of extra) {
    const value = entry.trim().toLowerCase()
    allowed.add(hasPort(value) ? value : `${hostForm(value)}:${port}`)
  }
  return allowed
}

function hasPort (value: string): boolean {
  return value.startsWith('[') ? value.includes(']:') : value.includes(':') && value.indexOf(':') === value.lastIndexOf(':')
}

/** Refuse a request whose Host header is not one of ours: a rebound DNS name reaching loopback. */
export function checkHost (req: IncomingMessage, allowed: ReadonlySet<string>): void {
  const host = req.headers.host?.toLowerCase()
  if (host === undefined || !allowed.has(host)) {
    throw new PermissionDeniedError(`Host header ${JSON.stringify(req.headers.host ?? '')} is not allowed`)
  }
}

/** Compares digests so neither the token's length nor its prefix leaks through timing. */
export function createTokenCheck (token: string): (req: IncomingMessage) => void {
  const expected = digest(token)
  return (req) => {
    const header = req.headers.authorization
    const match = header === undefined ? null : /^Bearer[ ]+(\S+)[ ]*$/i.exec(header)
    if (match?.[1] == null) {
      throw new UnauthenticatedError()
    }
    if (!timingSafeEqual(digest(match[1]), expected)) {
      throw new UnauthenticatedError('the bearer token is not valid')
    }
  }
}

function digest (value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest()
}

/**
 * Read a JSON body of at most `maxBytes`. On overflow the rest of the body is
 * discarded (not buffered) before the error, so the 413 answer is not lost to a
 * connection reset; `requestTimeout` bounds how long that can take.
 */
export async function readJsonBody (req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const type = req.headers['content-type']
  if (type !== undefined && !/^application\/json\s*(;|$)/i.test(type)) {
    throw new UnsupportedMediaTypeError()
  }
  const declared = Number(req.headers['content-length'] ?? 0)
  let tooLarge = declared > maxBytes
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.byteLength
    tooLarge ||= size > maxBytes
    if (!tooLarge) {
      chunks.push(chunk)
    }
  }
  if (tooLarge) {
    throw new RequestTooLargeError(maxBytes)
  }
  if (size === 0) {
    throw new InvalidParametersError('request body is empty; send a JSON object')
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch (err) {
    throw new InvalidParametersError(`request body is not valid JSON: ${(err as Error).message}`, { cause: err })
  }
}

/** A JSON request body that must be an object: the shape every POST route takes. */
export async function readJsonObject (req: IncomingMessage, maxBytes: number): Promise<Record<string, unknown>> {
  const value = await readJsonBody(req, maxBytes)
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidParametersError('request body must be a JSON object')
  }
  return value as Record<string, unknown>
}

/** The query parameters of a request (the host part is irrelevant: it was checked already). */
export function queryOf (req: IncomingMessage): URLSearchParams {
  return new URL(req.url ?? '/', 'http://control.invalid').searchParams
}
