/**
 * The NAT lab: network namespaces joined by veth pairs, built per test.
 *
 *   internet (bridge br0, 10.77.0.0/24) ── public hosts 10.77.0.10, .11, …
 *        ├── router of home 1: WAN 10.77.0.101 ── LAN bridge 10.77.1.1/24 ── devices 10.77.1.10, …
 *        └── router of home 2: WAN 10.77.0.102 ── LAN bridge 10.77.2.1/24 ── devices 10.77.2.10, …
 *
 * Routers NAT with nftables (`nat.ts`) and may cap their uplink with `tc tbf`. Nothing touches
 * the root namespace: every veth is created inside a lab namespace and its peer moved straight
 * into another. Addresses repeat between labs (each lab is its own set of namespaces); names
 * carry a prefix `hcl<pid>-<n>-` so several labs run side by side, and so that a later run can
 * sweep the namespaces of a run that died (its pid is gone).
 *
 * Cleanup always runs: `cleanup()` in a finally, SIGINT/SIGTERM/SIGHUP and process exit
 * (synchronous, so it works from an 'exit' handler): processes started in the lab are killed,
 * every namespace deleted, the lab's temporary folder removed.
 */
import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LabCommandError, LabConfigError, LabUnavailableError } from './errors.js'
import { LAN_IF, LAN_PORT_PREFIX, natRuleset, NAT_PRESETS, NAT_TABLE, WAN_IF, type NatPreset, type PortForward } from './nat.js'

/** The lab's "internet"; devices are told that it counts as public (`--public-range`). */
export const INTERNET_RANGE = '10.77.0.0/24'

const PREFIX_RE = /^hcl(\d+)-/
const TMP_PREFIX = 'homecloud-lab-'
const TMP_RE = /^homecloud-lab-(\d+)-/
const NAME_RE = /^[a-z][a-z0-9]{0,7}$/
const MAX_HOMES = 50
const MAX_HOSTS = 100
/** Bound on one lab command (ip, nft, tc). */
const COMMAND_TIMEOUT_MS = 10_000
/** The internet's nftables table of a network cut (`Lab.cut`), family `bridge`. */
export const CUT_TABLE = 'hclcut'

/**
 * tbf for a capped uplink (the values bench/lib/netns.mjs measured): burst 16 KiB keeps the rate
 * on a busy 2-core host, latency 50 ms keeps a ping or window update from waiting behind a
 * bloated queue.
 */
export const TBF_DEFAULTS = Object.freeze({ burst: '16kb', latency: '50ms' })

export interface Uplink {
  rate: string
  burst?: string
  latency?: string
}

/** One namespace with one interface into the lab. */
export interface Host {
  readonly name: string
  readonly ns: string
  /** Its address (no prefix length). */
  readonly ip: string
}

export interface HomeInit {
  nat: NatPreset
  /** Cap on what the home sends to the internet (tbf on the router's WAN side). */
  uplink?: Uplink
}

/** Why the lab cannot run here, or undefined when it can (root, `ip`, `nft`, `tc`). */
export function labSkipReason (): string | undefined {
  if (process.platform !== 'linux') {
    return 'the NAT lab needs Linux network namespaces'
  }
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    return 'the NAT lab needs root (network namespaces, nftables); run the tests as root (CI does)'
  }
  for (const [tool, args] of [['ip', ['-V']], ['nft', ['--version']], ['tc', ['-V']]] as const) {
    try {
      execFileSync(tool, args, { stdio: 'ignore', timeout: COMMAND_TIMEOUT_MS })
    } catch {
      return `the NAT lab needs \`${tool}\` (${tool === 'nft' ? 'apt-get install nftables' : 'iproute2'})`
    }
  }
  return undefined
}

function run (command: string, args: readonly string[], input?: string): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'], timeout: COMMAND_TIMEOUT_MS })
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim()
    throw new LabCommandError(`${command} ${args.join(' ')} failed: ${stderr === '' ? (err as Error).message : stderr}`, { cause: err })
  }
}

function ip (...args: string[]): string {
  return run('ip', args)
}

function pidAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function listNamespaces (): string[] {
  // lines look like "name (id: 3)" or just "name"
  return ip('netns', 'list').split('\n').map(line => line.trim().split(/\s+/)[0]).filter(Boolean)
}

/** SIGKILLs every process still inside `ns`: all of them were started by the lab that made it. */
function killInside (ns: string): void {
  let pids: number[]
  try {
    pids = ip('netns', 'pids', ns).split('\n').map(Number).filter(n => Number.isInteger(n) && n > 0)
  } catch {
    return
  }
  for (const pid of pids) killQuietly(pid)
}

/** SIGKILL, ignoring a process that is already gone. */
function killQuietly (pid: number | undefined): void {
  if (pid === undefined) return
  try {
    process.kill(pid, 'SIGKILL')
  } catch {
    // gone already
  }
}

function deleteNamespace (ns: string): boolean {
  killInside(ns)
  try {
    ip('netns', 'del', ns)
    return true
  } catch {
    return false
  }
}

/** Deletes namespaces and temporary folders of earlier runs whose process is gone; returns what it removed. */
export function sweepStaleLabs (): string[] {
  const swept: string[] = []
  for (const ns of listNamespaces()) {
    const m = PREFIX_RE.exec(ns)
    if (m !== null && Number(m[1]) !== process.pid && !pidAlive(Number(m[1])) && deleteNamespace(ns)) {
      swept.push(ns)
    }
  }
  for (const entry of readdirSync(tmpdir())) {
    const m = TMP_RE.exec(entry)
    if (m !== null && Number(m[1]) !== process.pid && !pidAlive(Number(m[1]))) {
      rmSync(join(tmpdir(), entry), { recursive: true, force: true })
      swept.push(entry)
    }
  }
  return swept
}

/** Labs of this process not yet cleaned up: one set of signal handlers cleans them all. */
const liveLabs = new Set<Lab>()
let labSeq = 0

function cleanupAll (): void {
  for (const lab of [...liveLabs]) lab.cleanup()
}

function onSignal (signal: NodeJS.Signals): void {
  cleanupAll()
  process.exit(signal === 'SIGINT' ? 130 : signal === 'SIGHUP' ? 129 : 143)
}

function track (lab: Lab): void {
  if (liveLabs.size === 0) {
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal)
    process.on('exit', cleanupAll)
  }
  liveLabs.add(lab)
}

function untrack (lab: Lab): void {
  liveLabs.delete(lab)
  if (liveLabs.size === 0) {
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(signal, onSignal)
    process.off('exit', cleanupAll)
  }
}

export interface CreateLabOptions {
  log?(line: string): void
}

/**
 * Builds an empty lab: the internet bridge. Sweeps what dead runs left first.
 *
 * @throws {LabUnavailableError} when not root or a tool is missing
 */
export function createLab (options: CreateLabOptions = {}): Lab {
  const reason = labSkipReason()
  if (reason !== undefined) {
    throw new LabUnavailableError(reason)
  }
  const swept = sweepStaleLabs()
  if (swept.length > 0) options.log?.(`netlab: swept leftovers of dead runs: ${swept.join(' ')}`)
  const lab = new Lab(`hcl${process.pid}-${++labSeq}-`)
  try {
    lab.build()
  } catch (err) {
    lab.cleanup()
    throw err
  }
  return lab
}

export class Home {
  readonly routerNs: string
  /** The router's current WAN address (its "public IP"). */
  wanIp: string
  /** `10.77.<n>` */
  readonly subnet: string
  readonly devices: Host[] = []
  private readonly forwards: PortForward[] = []

  constructor (private readonly lab: Lab, readonly name: string, readonly index: number, readonly nat: NatPreset) {
    this.routerNs = `${lab.prefix}r-${name}`
    this.subnet = `10.77.${index}`
    this.wanIp = `10.77.0.${100 + index}`
  }

  get gateway (): string {
    return `${this.subnet}.1`
  }

  /** A device namespace on the home's LAN, with a default route through the router. */
  addDevice (name: string): Host {
    this.lab.checkName(name)
    const host: Host = { name, ns: `${this.lab.prefix}d-${name}`, ip: `${this.subnet}.${10 + this.devices.length}` }
    this.lab.addNamespace(host.ns)
    const port = `${LAN_PORT_PREFIX}${this.devices.length}`
    ip('-n', host.ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', port, 'netns', this.routerNs)
    ip('-n', host.ns, 'addr', 'add', `${host.ip}/24`, 'dev', 'eth0')
    ip('-n', host.ns, 'link', 'set', 'eth0', 'up')
    ip('-n', host.ns, 'route', 'add', 'default', 'via', this.gateway)
    ip('-n', this.routerNs, 'link', 'set', port, 'master', LAN_IF)
    ip('-n', this.routerNs, 'link', 'set', port, 'up')
    this.devices.push(host)
    this.lab.hosts.set(name, host)
    return host
  }

  /** Forward `port` on the router's WAN address to `device` (the `forward` preset). */
  forwardPort (device: Host, port: number, protocol: 'tcp' | 'udp' = 'tcp'): void {
    if (this.nat !== 'forward') {
      throw new LabConfigError(`home ${this.name} uses the ${this.nat} preset; port forwards need the forward preset`)
    }
    if (!this.devices.includes(device) || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw new LabConfigError(`bad port forward ${protocol}/${port} to ${device.name} in home ${this.name}`)
    }
    this.forwards.push({ protocol, port, to: device.ip })
    this.loadRules()
  }

  /**
   * Gives the router a new WAN address, the way an ISP does it (the PPP or DHCP link drops and
   * comes back with another address): the WAN link goes down, which makes the kernel forget the
   * NAT mappings of every flow through it, and comes up with the new address. Only re-addressing
   * a live link keeps the stale mappings: flows then leave with a source address the router no
   * longer has, and hang until TCP gives up.
   */
  changeWanAddress (newIp: string): void {
    if (!/^10\.77\.0\.(\d{1,3})$/.test(newIp) || newIp === this.wanIp) {
      throw new LabConfigError(`a new WAN address must be another 10.77.0.x, got ${newIp}`)
    }
    ip('-n', this.routerNs, 'link', 'set', WAN_IF, 'down')
    ip('-n', this.routerNs, 'addr', 'del', `${this.wanIp}/24`, 'dev', WAN_IF)
    ip('-n', this.routerNs, 'addr', 'add', `${newIp}/24`, 'dev', WAN_IF)
    ip('-n', this.routerNs, 'link', 'set', WAN_IF, 'up')
    this.wanIp = newIp
  }

  /** `tc -s qdisc` of the uplink (bytes sent, drops), for reports. */
  uplinkStats (): string {
    return run('tc', ['-n', this.routerNs, '-s', 'qdisc', 'show', 'dev', WAN_IF])
  }

  build (uplink?: Uplink): void {
    const lab = this.lab
    lab.addNamespace(this.routerNs)
    run('ip', ['netns', 'exec', this.routerNs, 'sysctl', '-qw', 'net.ipv4.ip_forward=1'])
    lab.plugIntoInternet(this.routerNs, WAN_IF, this.wanIp)
    ip('-n', this.routerNs, 'link', 'add', LAN_IF, 'type', 'bridge')
    ip('-n', this.routerNs, 'addr', 'add', `${this.gateway}/24`, 'dev', LAN_IF)
    ip('-n', this.routerNs, 'link', 'set', LAN_IF, 'up')
    this.bypassBridgeNetfilter()
    this.loadRules()
    if (uplink !== undefined) {
      const { rate, burst, latency } = { ...TBF_DEFAULTS, ...uplink }
      // egress of the WAN side: what the home sends is capped, what it receives is not
      run('tc', ['-n', this.routerNs, 'qdisc', 'add', 'dev', WAN_IF, 'root', 'tbf', 'rate', rate, 'burst', burst, 'latency', latency])
    }
  }

  /**
   * With br_netfilter loaded (as on these hosts) frames bridged between two LAN ports would pass
   * the router's forward chain and be dropped (mDNS between devices of one home, for one). A home
   * switch does not filter: turn that off in this namespace, where it is per namespace.
   */
  private bypassBridgeNetfilter (): void {
    for (const key of ['bridge-nf-call-iptables', 'bridge-nf-call-ip6tables', 'bridge-nf-call-arptables']) {
      try {
        run('ip', ['netns', 'exec', this.routerNs, 'sysctl', '-qw', `net.bridge.${key}=0`])
      } catch {
        // no br_netfilter: bridged frames are not filtered anyway
      }
    }
  }

  private loadRules (): void {
    // create-then-delete makes the load replace the table whether or not it existed
    const ruleset = `table inet ${NAT_TABLE}\ndelete table inet ${NAT_TABLE}\n${natRuleset(this.nat, this.forwards)}`
    run('ip', ['netns', 'exec', this.routerNs, 'nft', '-f', '-'], ruleset)
  }
}

export interface ExecResult {
  code: number | null
  stdout: string
  stderr: string
}

export class Lab {
  readonly prefix: string
  readonly internetNs: string
  /** Temporary folder of this lab (repos, files); removed by cleanup. */
  readonly dir: string
  readonly hosts = new Map<string, Host>()
  readonly homes = new Map<string, Home>()
  private readonly created: string[] = []
  private readonly children = new Set<ChildProcess>()
  private ports = 0
  private publicHosts = 0
  private cleaned = false

  constructor (prefix: string) {
    this.prefix = prefix
    this.internetNs = `${prefix}net`
    this.dir = mkdtempSync(join(tmpdir(), `${TMP_PREFIX}${process.pid}-`))
    track(this)
  }

  build (): void {
    this.addNamespace(this.internetNs)
    ip('-n', this.internetNs, 'link', 'add', 'br0', 'type', 'bridge')
    ip('-n', this.internetNs, 'link', 'set', 'br0', 'up')
  }

  checkName (name: string): void {
    if (!NAME_RE.test(name) || this.hosts.has(name) || this.homes.has(name)) {
      throw new LabConfigError(`bad or duplicate name ${JSON.stringify(name)}: a lowercase letter then letters/digits, at most 8, unique in the lab`)
    }
    if (this.hosts.size >= MAX_HOSTS) {
      throw new LabConfigError(`a lab holds at most ${MAX_HOSTS} hosts`)
    }
  }

  /** A host directly on the internet (a public device): 10.77.0.10, .11, … */
  addPublicHost (name: string): Host {
    this.checkName(name)
    const host: Host = { name, ns: `${this.prefix}p-${name}`, ip: `10.77.0.${10 + this.publicHosts++}` }
    this.addNamespace(host.ns)
    this.plugIntoInternet(host.ns, 'eth0', host.ip)
    this.hosts.set(name, host)
    return host
  }

  /** A home: a router namespace doing NAT (`init.nat`) in front of an empty LAN. */
  addHome (name: string, init: HomeInit): Home {
    this.checkName(name)
    if (!NAT_PRESETS.includes(init.nat)) {
      throw new LabConfigError(`unknown NAT preset ${String(init.nat)}: one of ${NAT_PRESETS.join(', ')}`)
    }
    if (this.homes.size >= MAX_HOMES) {
      throw new LabConfigError(`a lab holds at most ${MAX_HOMES} homes`)
    }
    const home = new Home(this, name, this.homes.size + 1, init.nat)
    this.homes.set(name, home)
    home.build(init.uplink)
    return home
  }

  host (name: string): Host {
    const host = this.hosts.get(name)
    if (host === undefined) throw new LabConfigError(`no host ${name} in this lab`)
    return host
  }

  /** @internal a namespace whose deletion cleanup owes */
  addNamespace (ns: string): void {
    if (this.cleaned) throw new LabConfigError('the lab is cleaned up')
    ip('netns', 'add', ns)
    this.created.push(ns)
    ip('-n', ns, 'link', 'set', 'lo', 'up')
  }

  /** @internal a veth from `ns` (named `ifname`, address `addr`/24) into the internet bridge */
  plugIntoInternet (ns: string, ifname: string, addr: string): void {
    const port = `p${this.ports++}`
    ip('-n', ns, 'link', 'add', ifname, 'type', 'veth', 'peer', 'name', port, 'netns', this.internetNs)
    ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', ifname)
    ip('-n', ns, 'link', 'set', ifname, 'up')
    ip('-n', this.internetNs, 'link', 'set', port, 'master', 'br0')
    ip('-n', this.internetNs, 'link', 'set', port, 'up')
  }

  /**
   * Spawns `command args` inside `host`'s namespace (`ip netns exec` execs in place, so the
   * child's pid is the command's); SIGKILLed at cleanup if still alive.
   */
  spawn (host: Host, command: string, args: readonly string[] = [], options: SpawnOptions = {}): ChildProcess {
    if (this.cleaned) throw new LabConfigError('the lab is cleaned up')
    const child = spawn('ip', ['netns', 'exec', host.ns, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...options })
    this.children.add(child)
    child.once('exit', () => { this.children.delete(child) })
    return child
  }

  /** Runs a command to its end inside `host`'s namespace, bounded by `timeoutMs`. */
  async exec (host: Host, command: string, args: readonly string[], timeoutMs = 30_000): Promise<ExecResult> {
    if (this.cleaned) throw new LabConfigError('the lab is cleaned up')
    return new Promise((resolve) => {
      const child = execFile('ip', ['netns', 'exec', host.ns, command, ...args], { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 8 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
        this.children.delete(child)
        const code = err == null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null
        resolve({ code, stdout, stderr: err != null && code === null ? `${stderr}${err.message}` : stderr })
      })
      this.children.add(child)
    })
  }

  /**
   * Cuts the internet between two groups of hosts, both ways, while everything keeps running: the
   * internet bridge drops every IPv4 packet from one group to the other, the way a broken link
   * does (no RST, no ICMP: packets vanish, connections go silent). A group member is a public host
   * or a home (its router's current WAN address). One cut at a time: a new cut replaces the last.
   * Family `bridge`, so the rules see bridged frames whether or not br_netfilter is loaded.
   *
   * @throws {LabConfigError} when a group is empty, a host is not on the internet, or both groups share one
   */
  cut (side: ReadonlyArray<Host | Home>, others: ReadonlyArray<Host | Home>): void {
    const left = side.map(x => this.internetAddress(x))
    const right = others.map(x => this.internetAddress(x))
    if (left.length === 0 || right.length === 0 || left.some(a => right.includes(a))) {
      throw new LabConfigError(`a cut needs two non-empty, disjoint groups, got ${left.join(',')} / ${right.join(',')}`)
    }
    const ruleset = [
      // create-then-delete makes the load replace an earlier cut
      `table bridge ${CUT_TABLE}`,
      `delete table bridge ${CUT_TABLE}`,
      `table bridge ${CUT_TABLE} {`,
      '  counter dropped {}',
      `  set left { type ipv4_addr; elements = { ${left.join(', ')} } }`,
      `  set right { type ipv4_addr; elements = { ${right.join(', ')} } }`,
      '  chain forward {',
      '    type filter hook forward priority filter; policy accept;',
      '    ip saddr @left ip daddr @right counter name "dropped" drop',
      '    ip saddr @right ip daddr @left counter name "dropped" drop',
      '  }',
      '}',
      ''
    ].join('\n')
    run('ip', ['netns', 'exec', this.internetNs, 'nft', '-f', '-'], ruleset)
  }

  /** Packets the current cut has dropped so far (0 when there is no cut). */
  cutDrops (): number {
    let listing: string
    try {
      listing = run('ip', ['netns', 'exec', this.internetNs, 'nft', '-j', 'list', 'counter', 'bridge', CUT_TABLE, 'dropped'])
    } catch {
      return 0
    }
    const items = (JSON.parse(listing) as { nftables?: Array<{ counter?: { packets?: number } }> }).nftables ?? []
    return items.reduce((sum, item) => sum + (item.counter?.packets ?? 0), 0)
  }

  /** Removes the cut (if any): the groups reach each other again. Returns the packets it dropped. */
  heal (): number {
    const dropped = this.cutDrops()
    run('ip', ['netns', 'exec', this.internetNs, 'nft', '-f', '-'], `table bridge ${CUT_TABLE}\ndelete table bridge ${CUT_TABLE}\n`)
    return dropped
  }

  /** The address `x` has on the internet bridge: a public host's own, a home's WAN address. */
  private internetAddress (x: Host | Home): string {
    if (x instanceof Home) {
      if (this.homes.get(x.name) !== x) throw new LabConfigError(`home ${x.name} is not in this lab`)
      return x.wanIp
    }
    if (this.hosts.get(x.name) !== x || !x.ns.startsWith(`${this.prefix}p-`)) {
      throw new LabConfigError(`${x.name} is not a public host of this lab: cut its home instead`)
    }
    return x.ip
  }

  /** Kills what we started, deletes every namespace we created and the lab's folder; safe to call many times. */
  cleanup (): void {
    if (this.cleaned) return
    this.cleaned = true
    for (const child of this.children) killQuietly(child.pid)
    this.children.clear()
    const failed: string[] = []
    // devices and routers first, the internet last
    for (const ns of this.created.splice(0).reverse()) {
      if (!deleteNamespace(ns)) failed.push(ns)
    }
    rmSync(this.dir, { recursive: true, force: true })
    untrack(this)
    if (failed.length > 0) {
      process.stderr.write(`netlab: could not delete ${failed.join(' ')}; delete by hand with "ip netns del NAME"\n`)
    }
  }

  /** Namespaces this lab still owns (empty after cleanup). */
  namespaces (): string[] {
    return [...this.created]
  }
}
