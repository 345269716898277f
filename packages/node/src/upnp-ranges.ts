/**
 * UPnP port mapping for a device with `config.publicAddressRanges`.
 *
 * libp2p's `uPnPNAT` refuses a gateway whose external address is private
 * (`DoubleNATError`, hardcoded `isPrivateIp`), so behind a router whose WAN side
 * is in a configured public range (a company network, the NAT lab's
 * 10.77.0.0/24) it never maps anything. This service does the same job with the
 * device's public-address rule: it finds the gateway by SSDP
 * (`@achingbrain/nat-port-mapper`, the client `uPnPNAT` uses), maps every
 * private TCP listening address and adds the mapping to the address manager.
 *
 * Confirmation: AutoNAT v2 skips private addresses on the client and refuses to
 * dial them on the server (both hardcoded), so a mapping whose external IP is
 * public only by a configured range can never be checked by it. Such a mapping
 * is confirmed by the gateway's word, as `uPnPNAT({ autoConfirmAddress: true })`
 * does; a mapping to a globally public IP is left to AutoNAT v2 as usual.
 * Without configured ranges the device uses libp2p's `uPnPNAT` (libp2p-options.ts).
 */
import { isPrivateIp, getNetConfig, isLoopback } from '@libp2p/utils'
import { upnpNat, type Gateway, type UPnPNAT } from '@achingbrain/nat-port-mapper'
import { logger } from '@libp2p/logger'
import { multiaddr } from '@multiformats/multiaddr'
import { TCP } from '@multiformats/multiaddr-matcher'
import { LOG_SCOPE } from './constants.js'
import type { IsPublicAddress } from './address-ranges.js'
import type { Libp2pEvents, PeerId, Startable, TypedEventTarget } from '@libp2p/interface'
import type { AddressManager } from '@libp2p/interface-internal'

const log = logger(`${LOG_SCOPE}:upnp`)

/** Timing of the UPnP service (D8). */
export const UPNP_RANGES = Object.freeze({
  /** One SSDP search for the gateway (M-SEARCH repeated every second meanwhile). */
  searchTimeoutMs: 10_000,
  /** Period of the check: external address, new listeners (and the gateway search, when due). */
  checkIntervalMs: 30_000,
  /** A search that found no gateway is repeated this much later (SSDP is multicast on the LAN). */
  searchIntervalMs: 5 * 60_000,
  /** Bound on one gateway request (external address, map). */
  requestTimeoutMs: 10_000,
  /** Lease asked of the gateway; the client renews it before it ends. */
  leaseMs: 60 * 60_000,
  /** Most mappings held (one per private TCP listening address). */
  maxMappings: 8
})

export interface UpnpRangesInit {
  isPublic: IsPublicAddress
  /** The UPnP client; `upnpNat()` by default. */
  client?: UPnPNAT
}

export interface UpnpRangesComponents {
  peerId: PeerId
  addressManager: Pick<AddressManager, 'getAddressesWithMetadata' | 'addPublicAddressMapping' | 'removePublicAddressMapping' | 'confirmObservedAddr'>
  events: TypedEventTarget<Libp2pEvents>
}

interface Mapping {
  internalHost: string
  internalPort: number
  externalHost: string
  externalPort: number
}

export interface UpnpRangesService extends Startable {
  /** Mappings in force, as `external host:port` → `internal host:port`. */
  mappings(): Array<{ external: string, internal: string }>
  /** Checks finished so far (gateway search, external address, mapping), failed ones included. */
  checks(): number
}

/** The service factory for `libp2p.services` (replaces `uPnPNAT()` when public ranges are configured). */
export function upnpRanges (init: UpnpRangesInit) {
  return (components: UpnpRangesComponents): UpnpRangesService => new UpnpRanges(components, init)
}

class UpnpRanges implements UpnpRangesService {
  private readonly client: UPnPNAT
  private readonly mapped = new Map<string, Mapping>()
  private gateway?: Gateway
  private controller?: AbortController
  private timer?: ReturnType<typeof setInterval>
  /** One check at a time; a check asked for meanwhile runs once after it. */
  private running?: Promise<void>
  private again = false
  private finished = 0
  private lastSearch = -Infinity

  constructor (private readonly components: UpnpRangesComponents, private readonly init: UpnpRangesInit) {
    this.client = init.client ?? upnpNat({
      description: `homecloud ${components.peerId.toString()}`,
      ttl: UPNP_RANGES.leaseMs,
      autoRefresh: true
    })
  }

  readonly [Symbol.toStringTag] = '@homecloud/upnp-ranges'

  isStarted (): boolean {
    return this.controller != null
  }

  start (): void {
    if (this.controller != null) return
    this.controller = new AbortController()
    this.components.events.addEventListener('transport:listening', this.check)
    this.timer = setInterval(this.check, UPNP_RANGES.checkIntervalMs)
    this.timer.unref?.()
    this.check()
  }

  async stop (): Promise<void> {
    if (this.controller == null) return
    this.controller.abort()
    this.controller = undefined
    clearInterval(this.timer)
    this.components.events.removeEventListener('transport:listening', this.check)
    await this.running?.catch(() => {})
    // unmaps what this device mapped
    await this.gateway?.stop({ signal: AbortSignal.timeout(UPNP_RANGES.requestTimeoutMs) }).catch((err: unknown) => { log('could not unmap at stop - %e', err) })
    this.gateway = undefined
    this.mapped.clear()
  }

  checks (): number {
    return this.finished
  }

  mappings (): Array<{ external: string, internal: string }> {
    return [...this.mapped.values()].map(m => ({ external: `${m.externalHost}:${m.externalPort}`, internal: `${m.internalHost}:${m.internalPort}` }))
  }

  private readonly check = (): void => {
    if (this.running != null) {
      this.again = true
      return
    }
    this.running = this.checkOnce()
      .catch((err: unknown) => { log('UPnP check failed - %e', err) })
      .finally(() => {
        this.finished++
        this.running = undefined
        if (this.again && this.controller != null) {
          this.again = false
          this.check()
        }
      })
  }

  private async checkOnce (): Promise<void> {
    const run = this.controller?.signal
    if (run == null) return
    const signal = (): AbortSignal => AbortSignal.any([run, AbortSignal.timeout(UPNP_RANGES.requestTimeoutMs)])
    if (this.gateway == null && performance.now() - this.lastSearch >= UPNP_RANGES.searchIntervalMs) {
      this.lastSearch = performance.now()
      this.gateway = await this.findGateway(run)
    }
    const gateway = this.gateway
    if (gateway == null) return

    const externalHost = await gateway.externalIp({ signal: signal() })
    if (isPrivateIp(externalHost) !== false && !this.init.isPublic(multiaddr(`/ip4/${externalHost}/tcp/1`))) {
      log('the gateway\'s external address %s is private and not in a public range: double NAT, nothing mapped', externalHost)
      return
    }
    // the WAN address changed: the old external addresses are gone
    for (const [key, m] of this.mapped) {
      if (m.externalHost !== externalHost) {
        this.components.addressManager.removePublicAddressMapping(m.internalHost, m.internalPort, m.externalHost, m.externalPort, 'tcp')
        this.mapped.delete(key)
      }
    }

    for (const { host, port } of this.unmapped()) {
      const mapping = await gateway.map(port, host, { protocol: 'TCP', signal: signal() })
      const m: Mapping = { internalHost: mapping.internalHost, internalPort: mapping.internalPort, externalHost: mapping.externalHost, externalPort: mapping.externalPort }
      this.mapped.set(`${host}:${port}`, m)
      this.components.addressManager.addPublicAddressMapping(m.internalHost, m.internalPort, m.externalHost, m.externalPort, 'tcp')
      log('mapped %s:%d to %s:%d', m.internalHost, m.internalPort, m.externalHost, m.externalPort)
    }

    for (const m of this.mapped.values()) {
      // public only by a configured range: AutoNAT v2 cannot check it, the gateway's word stands (see the top of this file)
      if (isPrivateIp(m.externalHost) === true) {
        this.components.addressManager.confirmObservedAddr(multiaddr(`/ip4/${m.externalHost}/tcp/${m.externalPort}`), {
          type: 'ip-mapping',
          ttl: 2 * UPNP_RANGES.checkIntervalMs
        })
      }
    }
  }

  /** Private IPv4 TCP listening addresses (not loopback) without a mapping yet. */
  private unmapped (): Array<{ host: string, port: number }> {
    const out: Array<{ host: string, port: number }> = []
    for (const { multiaddr: ma, type } of this.components.addressManager.getAddressesWithMetadata()) {
      if (type !== 'transport' || !TCP.exactMatch(ma) || isLoopback(ma)) continue
      const config = getNetConfig(ma)
      if (config.type !== 'ip4' || config.port == null || isPrivateIp(config.host) !== true) continue
      const key = `${config.host}:${config.port}`
      if (this.mapped.has(key) || out.some(a => `${a.host}:${a.port}` === key)) continue
      if (this.mapped.size + out.length >= UPNP_RANGES.maxMappings) break
      out.push({ host: config.host, port: config.port })
    }
    return out
  }

  private async findGateway (run: AbortSignal): Promise<Gateway | undefined> {
    const signal = AbortSignal.any([run, AbortSignal.timeout(UPNP_RANGES.searchTimeoutMs)])
    try {
      for await (const gateway of this.client.findGateways({ signal, searchInterval: 1_000 })) {
        if (gateway.family === 'IPv4') {
          log('found UPnP gateway %s', gateway.id)
          return gateway
        }
      }
    } catch (err) {
      if (!run.aborted) log('no UPnP gateway found - %e', err)
    }
    return undefined
  }
}
