/**
 * The UPnP router of the lab: Debian's miniupnpd (`miniupnpd-nftables`) in a home router's
 * namespace (a home built with the `upnp` preset), and the STUN server it needs.
 *
 * Facts that shape it (FACTS.md): miniupnpd refuses a private WAN address (the lab's internet is
 * 10.77.0.0/24) unless `ext_perform_stun=yes` names a STUN server: a public device's own
 * (`homecloud start --stun-server`, `LabDevice` option `stunServer`), which answers miniupnpd's
 * four Binding requests from the address it asked, with the router's own ports, so miniupnpd
 * rules "not restrictive"; and it needs its nftables tables in family `inet`, which the router
 * creates before starting it (the tables of its `nft_init.sh`). Everything lives
 * in the lab: its config, pid and lease files in the lab's folder, the daemon a child of the lab
 * (killed at cleanup), its tables inside the router namespace (deleted with it).
 */
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { LabCommandError, LabConfigError } from './errors.js'
import { labSkipReason, type Home, type Host, type Lab } from './lab.js'
import { LAN_IF, WAN_IF } from './nat.js'
import type { ChildProcess } from 'node:child_process'

/** Where Debian's `miniupnpd-nftables` puts the daemon. */
export const MINIUPNPD = '/usr/sbin/miniupnpd'
/** miniupnpd's table and chains in each UPnP router (family inet). */
export const UPNP_TABLE = 'miniupnpd'
const UPNP_CHAINS = { forward: 'miniupnpd', prerouting: 'prerouting_miniupnpd', postrouting: 'postrouting_miniupnpd' } as const

/** Bound on miniupnpd's start (its STUN check alone waits up to 3 s per round, 3 rounds). */
const START_TIMEOUT_MS = 15_000
const MAX_LOG_CHARS = 64 * 1024

/** Why the UPnP scenario cannot run here, or undefined when it can. */
export function upnpSkipReason (): string | undefined {
  const reason = labSkipReason()
  if (reason !== undefined) return reason
  if (!existsSync(MINIUPNPD)) {
    return `the UPnP scenario needs miniupnpd (${MINIUPNPD}): apt-get install miniupnpd-nftables (.ci/run does it as root)`
  }
  return undefined
}

/** miniupnpd as a lab child, its output kept (bounded) and watched for a line. */
class Watched {
  private output = ''
  private readonly exited: Promise<number | null>

  constructor (readonly name: string, readonly child: ChildProcess) {
    const keep = (chunk: Buffer): void => { this.output = (this.output + chunk.toString('utf8')).slice(-MAX_LOG_CHARS) }
    child.stdout?.on('data', keep)
    child.stderr?.on('data', keep)
    this.exited = new Promise(resolve => child.once('exit', code => { resolve(code) }))
  }

  log (): string {
    return this.output
  }

  /** Resolves with the first match of `re` in the output; throws if the process exits or the bound passes first. */
  async waitFor (re: RegExp, what: string, timeoutMs = START_TIMEOUT_MS): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs
    let exited = false
    void this.exited.then(() => { exited = true })
    while (Date.now() < deadline) {
      const match = re.exec(this.output)
      if (match !== null) return match
      if (exited) break
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    throw new LabCommandError(`${this.name}: ${exited ? 'exited' : `no ${what} within ${timeoutMs / 1000} s`}:\n${this.output}`)
  }

  stop (): void {
    this.child.kill('SIGTERM')
  }
}

/** A STUN server in the lab's internet (a public device's, `--stun-server`). */
export interface StunEndpoint {
  ip: string
  port: number
}

/** miniupnpd running in a home's router. */
export class Miniupnpd {
  private readonly router: Host

  constructor (private readonly lab: Lab, readonly home: Home, private readonly daemon: Watched) {
    this.router = routerHost(home)
  }

  /** What miniupnpd printed (bounded), for failure messages. */
  log (): string {
    return this.daemon.log()
  }

  /** The port mappings miniupnpd holds now: its DNAT rules, `{ externalPort, to }` (to = `ip:port`). */
  async mappings (): Promise<Array<{ externalPort: number, to: string }>> {
    const result = await this.lab.exec(this.router, 'nft', ['list', 'chain', 'inet', UPNP_TABLE, UPNP_CHAINS.prerouting], 10_000)
    if (result.code !== 0) throw new LabCommandError(`nft list chain failed: ${result.stderr}`)
    return [...result.stdout.matchAll(/dport (\d+) dnat ip to ([\d.]+:\d+)/g)].map(m => ({ externalPort: Number(m[1]), to: m[2] }))
  }

  stop (): void {
    this.daemon.stop()
  }
}

/**
 * Starts miniupnpd in `home`'s router (a home with the `upnp` preset), WAN `wan0`, LAN `lan0`,
 * external address found by STUN against `stun`; UPnP IGD and NAT-PMP for the home's LAN only,
 * secure mode (a device maps ports to itself only). Resolves once it serves, having checked its
 * STUN verdict: a "restrictive NAT" verdict would disable port forwarding.
 */
export async function startMiniupnpd (lab: Lab, home: Home, stun: StunEndpoint): Promise<Miniupnpd> {
  if (home.nat !== 'upnp') {
    throw new LabConfigError(`home ${home.name} uses the ${home.nat} preset; miniupnpd needs the upnp preset`)
  }
  const router = routerHost(home)
  const dir = join(lab.dir, `miniupnpd-${home.name}`)
  const rules = join(lab.dir, `miniupnpd-${home.name}.nft`)
  writeFileSync(rules, [
    `table inet ${UPNP_TABLE} {`,
    '  chain forward {',
    '    type filter hook forward priority filter; policy accept;',
    `    jump ${UPNP_CHAINS.forward}`,
    '  }',
    `  chain ${UPNP_CHAINS.forward} {`,
    '  }',
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    `    jump ${UPNP_CHAINS.prerouting}`,
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    jump ${UPNP_CHAINS.postrouting}`,
    '  }',
    `  chain ${UPNP_CHAINS.prerouting} {`,
    '  }',
    `  chain ${UPNP_CHAINS.postrouting} {`,
    '  }',
    '}',
    ''
  ].join('\n'))
  const loaded = await lab.exec(router, 'nft', ['-f', rules], 10_000)
  if (loaded.code !== 0) throw new LabCommandError(`loading miniupnpd's tables in ${home.routerNs} failed: ${loaded.stderr}`)

  const conf = `${dir}.conf`
  writeFileSync(conf, [
    `ext_ifname=${WAN_IF}`,
    `listening_ip=${LAN_IF}`,
    'http_port=0',
    'enable_upnp=yes',
    'enable_natpmp=yes',
    'secure_mode=yes',
    'system_uptime=yes',
    'notify_interval=30',
    'clean_ruleset_interval=600',
    `lease_file=${dir}.leases`,
    'ext_perform_stun=yes',
    `ext_stun_host=${stun.ip}`,
    `ext_stun_port=${stun.port}`,
    `upnp_table_name=${UPNP_TABLE}`,
    `upnp_nat_table_name=${UPNP_TABLE}`,
    `upnp_forward_chain=${UPNP_CHAINS.forward}`,
    `upnp_nat_chain=${UPNP_CHAINS.prerouting}`,
    `upnp_nat_postrouting_chain=${UPNP_CHAINS.postrouting}`,
    // a fixed uuid is fine: one gateway per home LAN
    'uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b',
    `allow 1024-65535 ${home.subnet}.0/24 1024-65535`,
    'deny 0-65535 0.0.0.0/0 0-65535',
    ''
  ].join('\n'))
  // -d: foreground, logs on stderr; -P: a pid file of this lab's (the default one is shared by every namespace)
  const daemon = new Watched(`miniupnpd in ${home.routerNs}`, lab.spawn(router, MINIUPNPD, ['-d', '-f', conf, '-P', `${dir}.pid`]))
  const verdict = await daemon.waitFor(/STUN: ext interface .*$/m, 'STUN verdict')
  if (/restrictive|filters incoming/.test(verdict[0])) {
    daemon.stop()
    throw new LabCommandError(`miniupnpd in ${home.routerNs} refuses to forward ports: ${verdict[0]}`)
  }
  await daemon.waitFor(/HTTP listening on port \d+/, 'HTTP listener')
  return new Miniupnpd(lab, home, daemon)
}

/** The router of `home` as a lab host (its LAN side), to run commands in its namespace. */
function routerHost (home: Home): Host {
  return { name: `r-${home.name}`, ns: home.routerNs, ip: home.gateway }
}
