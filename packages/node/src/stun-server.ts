/**
 * A small STUN server (RFC 5389 Binding only, UDP) run by public devices, so
 * that devices behind NAT learn their public address and port for WebRTC hole
 * punching from a member of their swarm instead of a public STUN service.
 *
 * It answers a Binding request with one XOR-MAPPED-ADDRESS and nothing else:
 * a reply is 32 bytes (44 for IPv6) whatever the request held, so a spoofed
 * source gains little; each source IP gets a token bucket, and the number of
 * tracked sources is capped (the least recently seen is forgotten).
 */
import { createSocket, type Socket } from 'node:dgram'
import { isIPv4, isIPv6 } from 'node:net'
import { logger } from '@libp2p/logger'
import { InvalidParametersError } from './errors.js'
import { LOG_SCOPE } from './constants.js'

const log = logger(`${LOG_SCOPE}:stun`)

/** The STUN port of RFC 5389. */
export const DEFAULT_STUN_PORT = 3478
export const STUN_MAGIC_COOKIE = 0x2112A442
export const STUN_HEADER_BYTES = 20
export const STUN_BINDING_REQUEST = 0x0001
export const STUN_BINDING_SUCCESS = 0x0101
export const STUN_ATTR_XOR_MAPPED_ADDRESS = 0x0020
/** Requests larger than this are dropped (RFC 5389 §7.1: 576-byte IPv4 path minus headers). */
export const MAX_STUN_REQUEST_BYTES = 548

export interface StunServerInit {
  /** UDP port; 0 picks a free one. Default 3478. */
  port?: number
  /** Address to bind; default every IPv4 address (`0.0.0.0`). */
  host?: string
  /** Replies per second per source IP, sustained. Default 20. */
  ratePerSecond?: number
  /** Replies a source IP may get in a burst. Default 40. */
  burst?: number
  /** Source IPs tracked for rate limiting; the oldest is forgotten beyond it. Default 4096. */
  maxSources?: number
}

export interface StunServerStats {
  answered: number
  /** Requests dropped: malformed, not a Binding request, too large. */
  invalid: number
  /** Requests dropped by the per-source rate limit. */
  limited: number
}

/**
 * Reads a STUN Binding request; returns its transaction id (12 bytes), or
 * undefined when `msg` is not a well-formed RFC 5389 Binding request.
 */
export function parseBindingRequest (msg: Uint8Array): Uint8Array | undefined {
  if (msg.byteLength < STUN_HEADER_BYTES || msg.byteLength > MAX_STUN_REQUEST_BYTES) {
    return undefined
  }
  const view = new DataView(msg.buffer, msg.byteOffset, msg.byteLength)
  const type = view.getUint16(0)
  const length = view.getUint16(2)
  if (type !== STUN_BINDING_REQUEST || view.getUint32(4) !== STUN_MAGIC_COOKIE ||
    length % 4 !== 0 || STUN_HEADER_BYTES + length !== msg.byteLength) {
    return undefined
  }
  return msg.slice(8, 20)
}

/** A Binding success response carrying `address`:`port` as XOR-MAPPED-ADDRESS. */
export function bindingResponse (transactionId: Uint8Array, address: string, port: number): Uint8Array {
  const ip = ipBytes(address)
  const value = 4 + ip.byteLength
  const out = new Uint8Array(STUN_HEADER_BYTES + 4 + value)
  const view = new DataView(out.buffer)
  view.setUint16(0, STUN_BINDING_SUCCESS)
  view.setUint16(2, 4 + value)
  view.setUint32(4, STUN_MAGIC_COOKIE)
  out.set(transactionId, 8)
  view.setUint16(20, STUN_ATTR_XOR_MAPPED_ADDRESS)
  view.setUint16(22, value)
  view.setUint8(25, ip.byteLength === 4 ? 0x01 : 0x02)
  view.setUint16(26, port ^ (STUN_MAGIC_COOKIE >>> 16))
  // the address is XORed with the cookie, then (IPv6) the transaction id: bytes 4..20 of the header
  for (let i = 0; i < ip.byteLength; i++) {
    out[28 + i] = ip[i] ^ out[4 + i]
  }
  return out
}

/** Reads the XOR-MAPPED-ADDRESS of a Binding success response (the client side; tests and checks). */
export function readXorMappedAddress (msg: Uint8Array): { address: string, port: number } | undefined {
  if (msg.byteLength < STUN_HEADER_BYTES) return undefined
  const view = new DataView(msg.buffer, msg.byteOffset, msg.byteLength)
  if (view.getUint16(0) !== STUN_BINDING_SUCCESS || view.getUint32(4) !== STUN_MAGIC_COOKIE) return undefined
  let offset = STUN_HEADER_BYTES
  const end = Math.min(msg.byteLength, STUN_HEADER_BYTES + view.getUint16(2))
  while (offset + 4 <= end) {
    const type = view.getUint16(offset)
    const length = view.getUint16(offset + 2)
    if (type === STUN_ATTR_XOR_MAPPED_ADDRESS && offset + 4 + length <= end) {
      const family = view.getUint8(offset + 5)
      const size = family === 0x01 ? 4 : 16
      if (length < 4 + size) return undefined
      const port = view.getUint16(offset + 6) ^ (STUN_MAGIC_COOKIE >>> 16)
      const ip = msg.slice(offset + 8, offset + 8 + size).map((b, i) => b ^ msg[4 + i])
      return { address: size === 4 ? ip.join('.') : ipv6String(ip), port }
    }
    offset += 4 + Math.ceil(length / 4) * 4
  }
  return undefined
}

function ipBytes (address: string): Uint8Array {
  if (isIPv4(address)) {
    return Uint8Array.from(address.split('.').map(Number))
  }
  // an IPv4-mapped IPv6 source (dual-stack socket) is answered as IPv4
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
  if (mapped !== null) return ipBytes(mapped[1])
  if (!isIPv6(address)) throw new InvalidParametersError(`not an IP address: ${address}`)
  const [head, tail = ''] = address.split('::')
  const groups = (s: string): number[] => s === '' ? [] : s.split(':').map(g => parseInt(g, 16))
  const h = groups(head)
  const t = address.includes('::') ? groups(tail) : []
  const all = [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t]
  const out = new Uint8Array(16)
  all.forEach((g, i) => { out[2 * i] = g >> 8; out[2 * i + 1] = g & 0xff })
  return out
}

function ipv6String (ip: Uint8Array): string {
  const groups: string[] = []
  for (let i = 0; i < 16; i += 2) groups.push(((ip[i] << 8) | ip[i + 1]).toString(16))
  return groups.join(':')
}

interface Bucket { tokens: number, at: number }

/** Token buckets per source IP, at most `maxSources` of them (the least recently seen is forgotten). */
class SourceLimiter {
  private readonly buckets = new Map<string, Bucket>()

  constructor (private readonly rate: number, private readonly burst: number, private readonly maxSources: number) {}

  take (source: string, now: number): boolean {
    let bucket = this.buckets.get(source)
    if (bucket === undefined) {
      if (this.buckets.size >= this.maxSources) {
        this.buckets.delete(this.buckets.keys().next().value as string)
      }
      bucket = { tokens: this.burst, at: now }
    } else {
      this.buckets.delete(source)
      bucket.tokens = Math.min(this.burst, bucket.tokens + (now - bucket.at) * this.rate / 1000)
      bucket.at = now
    }
    // re-inserted: Map order is recency order
    this.buckets.set(source, bucket)
    if (bucket.tokens < 1) return false
    bucket.tokens -= 1
    return true
  }

  get size (): number {
    return this.buckets.size
  }
}

function positiveInt (value: number | undefined, fallback: number, what: string, min = 1): number {
  if (value === undefined) return fallback
  if (!Number.isInteger(value) || value < min) {
    throw new InvalidParametersError(`${what} must be an integer ≥ ${min}, got ${String(value)}`)
  }
  return value
}

export class StunServer {
  private socket?: Socket
  private readonly limiter: SourceLimiter
  private readonly host: string
  private readonly requestedPort: number
  readonly stats: StunServerStats = { answered: 0, invalid: 0, limited: 0 }

  /** @throws {InvalidParametersError} on a bad port, rate or bound */
  constructor (init: StunServerInit = {}) {
    this.requestedPort = positiveInt(init.port, DEFAULT_STUN_PORT, 'stun port', 0)
    if (this.requestedPort > 65535) throw new InvalidParametersError(`stun port must be at most 65535, got ${this.requestedPort}`)
    this.host = init.host ?? '0.0.0.0'
    if (!isIPv4(this.host) && !isIPv6(this.host)) throw new InvalidParametersError(`stun host must be an IP address, got ${this.host}`)
    this.limiter = new SourceLimiter(
      positiveInt(init.ratePerSecond, 20, 'stun ratePerSecond'),
      positiveInt(init.burst, 40, 'stun burst'),
      positiveInt(init.maxSources, 4096, 'stun maxSources')
    )
  }

  /** The bound UDP port (after `start`). */
  get port (): number {
    return this.socket?.address().port ?? this.requestedPort
  }

  /** Source IPs currently tracked by the rate limiter (bounded by `maxSources`). */
  get trackedSources (): number {
    return this.limiter.size
  }

  async start (): Promise<void> {
    if (this.socket !== undefined) return
    const socket = createSocket({ type: isIPv6(this.host) ? 'udp6' : 'udp4' })
    socket.on('message', (msg, rinfo) => { this.onMessage(msg, rinfo.address, rinfo.port) })
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject)
      socket.bind(this.requestedPort, this.host, () => {
        socket.off('error', reject)
        resolve()
      })
    })
    socket.on('error', (err) => { log.error('stun socket error - %e', err) })
    this.socket = socket
    log('STUN server on udp %s:%d', this.host, this.port)
  }

  async stop (): Promise<void> {
    const socket = this.socket
    this.socket = undefined
    if (socket === undefined) return
    await new Promise<void>(resolve => { socket.close(() => { resolve() }) })
  }

  private onMessage (msg: Buffer, address: string, port: number): void {
    const transactionId = parseBindingRequest(msg)
    if (transactionId === undefined) {
      this.stats.invalid++
      return
    }
    if (!this.limiter.take(address, performance.now())) {
      this.stats.limited++
      return
    }
    this.stats.answered++
    this.socket?.send(bindingResponse(transactionId, address, port), port, address)
  }
}
