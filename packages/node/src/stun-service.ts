/**
 * The STUN server as a device service, and how members learn of it: a device
 * running one handles `STUN_PROTOCOL`, which identify lists among its
 * protocols; a peer connected to it directly asks for the UDP port (2 bytes)
 * and uses `stun:<the IP it reached the device at>:<port>`.
 */
import { logger } from '@libp2p/logger'
import { LOG_SCOPE } from './constants.js'
import { StunServer, type StunServerInit } from './stun-server.js'
import type { AbortOptions, Connection, Startable } from '@libp2p/interface'
import type { Registrar } from '@libp2p/interface-internal'

const log = logger(`${LOG_SCOPE}:stun`)

/** Asks a device for the UDP port of its STUN server. */
export const STUN_PROTOCOL = '/homecloud/stun/1.0.0'

export interface StunServiceComponents {
  registrar: Pick<Registrar, 'handle' | 'unhandle'>
}

/** The service on `libp2p.services` when the device runs a STUN server. */
export interface StunService {
  readonly server: StunServer
}

class DeviceStunService implements StunService, Startable {
  readonly server: StunServer
  private started = false

  constructor (private readonly components: StunServiceComponents, init: StunServerInit) {
    this.server = new StunServer(init)
  }

  isStarted (): boolean {
    return this.started
  }

  async start (): Promise<void> {
    await this.server.start()
    await this.components.registrar.handle(STUN_PROTOCOL, async (stream) => {
      const port = this.server.port
      stream.send(Uint8Array.of(port >> 8, port & 0xff))
      await stream.close().catch((err: unknown) => { log('could not close a STUN port answer - %s', String(err)) })
    }, { maxInboundStreams: 1, maxOutboundStreams: 0 })
    this.started = true
  }

  async stop (): Promise<void> {
    this.started = false
    await this.components.registrar.unhandle(STUN_PROTOCOL)
    await this.server.stop()
  }
}

export function stunService (init: StunServerInit = {}): (components: StunServiceComponents) => StunService {
  return (components) => new DeviceStunService(components, init)
}

/** The STUN port a peer announces over `connection`; undefined when it answers nothing sensible. */
export async function queryStunPort (connection: Connection, options: AbortOptions): Promise<number | undefined> {
  const stream = await connection.newStream(STUN_PROTOCOL, options)
  const bytes: number[] = []
  try {
    for await (const chunk of stream) {
      bytes.push(...chunk.subarray(0, 2 - bytes.length))
      if (bytes.length >= 2) break
    }
  } finally {
    await stream.close(options).catch(() => { stream.abort(new Error('STUN port query ended')) })
  }
  const port = bytes.length === 2 ? (bytes[0] << 8) | bytes[1] : 0
  return port > 0 ? port : undefined
}
