// A throwaway network lab for benchmarks: one namespace per node, all joined by a
// bridge that lives in a namespace of its own (the "LAN/internet"), addresses in
// 10.77.<subnet>.0/24 only, optional tbf caps on a node's uplink. Nothing touches the
// root namespace: veth pairs are created inside the node's namespace with their peer
// end moved straight into the bridge namespace.
//
// Cleanup always runs — finally, SIGINT/SIGTERM/SIGHUP, process exit (uncaught errors
// included) — and is synchronous so it can run from an 'exit' handler: processes we
// started in the lab are killed by pid, then every namespace we created is deleted.
// Namespaces left by an earlier run that died hard (SIGKILL) are swept at start: their
// names carry the pid of the run that made them, and that pid no longer exists.
//
//   const lab = createLab({ nodes: [{ name: 'p1', uplink: { rate: '8mbit' } }, { name: 'f' }] })
//   try { const child = lab.spawn('p1', process.execPath, ['x.mjs']) ... } finally { lab.cleanup() }
import { execFileSync, spawn } from 'node:child_process'

const PREFIX_RE = /^hcb(\d+)-/
const MAX_NODES = 200

/**
 * tbf defaults for a capped uplink, and why:
 * - burst 16kb (16 KiB, ~11 full frames, 16 ms of tokens at 8 Mbit/s): at least one MTU is
 *   needed, and the slack lets tbf keep its rate when its dequeue timer fires late on a busy
 *   2-core host; a much bigger bucket would only let short bursts exceed the cap. (4 KB, the
 *   usual "32kbit", also held the rate here; GSO packets bigger than the bucket are segmented.)
 * - latency 50ms (a queue of ~50 KB + burst at 8 Mbit/s): the veth RTT is far below a
 *   millisecond, so this is ample for TCP to keep the bucket busy (a plain TCP push reaches
 *   ~30.6 of 32 Mbit/s, the rest being headers), while a yamux window update or ping waits at
 *   most ~50 ms in the qdisc instead of a bloated router's 400 ms (the sender's own socket
 *   buffer is outside tc's reach). With 400ms the queue never overflows (no tbf drops) and the
 *   fetch rate was the same; with 50ms TCP sees a few hundred local drops per 16 MiB, which
 *   cost no bottleneck capacity (they happen before the bucket).
 */
export const TBF_DEFAULTS = Object.freeze({ burst: '16kb', latency: '50ms' })

export class NotRootError extends Error {
  constructor () {
    super('network namespaces need root: run this benchmark as root (e.g. sudo env PATH="$PATH" node ...)')
    this.name = 'NotRootError'
    this.code = 'ERR_NOT_ROOT'
  }
}

/** Throws NotRootError unless we run as root. */
export function requireRoot () {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    throw new NotRootError()
  }
}

function ip (...args) {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

function tc (...args) {
  return execFileSync('tc', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

function listNamespaces () {
  // lines look like "name (id: 3)" or just "name"
  return ip('netns', 'list').split('\n').map(line => line.trim().split(/\s+/)[0]).filter(Boolean)
}

function pidAlive (pid) {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return err.code === 'EPERM'
  }
}

/** SIGKILLs every process still inside `ns` (all of them were started by the lab that made it). */
function killInside (ns) {
  let pids
  try {
    pids = ip('netns', 'pids', ns).split('\n').map(Number).filter(n => Number.isInteger(n) && n > 0)
  } catch {
    return
  }
  for (const pid of pids) {
    try { process.kill(pid, 'SIGKILL') } catch {}
  }
}

function deleteNamespace (ns) {
  killInside(ns)
  try {
    ip('netns', 'del', ns)
    return true
  } catch {
    return false
  }
}

/** Deletes namespaces of earlier runs whose process is gone; returns their names. */
export function sweepStale () {
  const swept = []
  for (const ns of listNamespaces()) {
    const m = PREFIX_RE.exec(ns)
    if (m !== null && Number(m[1]) !== process.pid && !pidAlive(Number(m[1])) && deleteNamespace(ns)) {
      swept.push(ns)
    }
  }
  return swept
}

/**
 * Builds the lab. `nodes`: [{ name, uplink?: { rate, burst?, latency? } }], names of
 * letters/digits (≤ 8 chars). Node i gets 10.77.<subnet>.<10 + i>/24.
 */
export function createLab ({ nodes, subnet = 1, log = () => {} }) {
  requireRoot()
  if (!Number.isInteger(subnet) || subnet < 0 || subnet > 255) {
    throw new RangeError(`subnet must be an integer 0..255 (10.77.<subnet>.0/24), got ${subnet}`)
  }
  if (!Array.isArray(nodes) || nodes.length === 0 || nodes.length > MAX_NODES) {
    throw new RangeError(`a lab takes 1..${MAX_NODES} nodes`)
  }
  const names = new Set()
  for (const node of nodes) {
    if (!/^[a-z0-9]{1,8}$/i.test(node.name ?? '') || names.has(node.name) || node.name === 'lan') {
      throw new RangeError(`bad or duplicate node name ${node.name}: letters/digits, 1-8 chars, unique, not "lan"`)
    }
    names.add(node.name)
  }
  const swept = sweepStale()
  if (swept.length > 0) log(`swept ${swept.length} leftover namespaces: ${swept.join(' ')}`)
  const lab = new Lab(`hcb${process.pid}-`, subnet)
  try {
    lab.build(nodes)
  } catch (err) {
    lab.cleanup()
    throw err
  }
  return lab
}

class Lab {
  constructor (prefix, subnet) {
    this.prefix = prefix
    this.subnet = subnet
    this.lan = `${prefix}lan`
    /** name → { ns, addr } */
    this.nodes = new Map()
    this.created = []
    this.children = new Set()
    this.cleaned = false
    this.onSignal = (signal) => {
      this.cleanup()
      process.exit(signal === 'SIGINT' ? 130 : signal === 'SIGHUP' ? 129 : 143)
    }
    this.onExit = () => { this.cleanup() }
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, this.onSignal)
    process.on('exit', this.onExit)
  }

  build (nodes) {
    this.addNamespace(this.lan)
    ip('-n', this.lan, 'link', 'add', 'br0', 'type', 'bridge')
    ip('-n', this.lan, 'link', 'set', 'br0', 'up')
    nodes.forEach((node, i) => {
      const ns = `${this.prefix}${node.name}`
      const addr = `10.77.${this.subnet}.${10 + i}`
      this.addNamespace(ns)
      const port = `v-${node.name}`
      ip('-n', ns, 'link', 'set', 'lo', 'up')
      ip('-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', port, 'netns', this.lan)
      ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0')
      ip('-n', ns, 'link', 'set', 'eth0', 'up')
      ip('-n', this.lan, 'link', 'set', port, 'master', 'br0')
      ip('-n', this.lan, 'link', 'set', port, 'up')
      if (node.uplink != null) {
        const { rate, burst, latency } = { ...TBF_DEFAULTS, ...node.uplink }
        // egress of the node's own interface: what it sends is capped, what it receives is not
        tc('-n', ns, 'qdisc', 'add', 'dev', 'eth0', 'root', 'tbf', 'rate', rate, 'burst', burst, 'latency', latency)
      }
      this.nodes.set(node.name, { ns, addr })
    })
  }

  addNamespace (ns) {
    ip('netns', 'add', ns)
    this.created.push(ns)
  }

  node (name) {
    const node = this.nodes.get(name)
    if (node === undefined) throw new RangeError(`no node ${name} in this lab`)
    return node
  }

  addr (name) {
    return this.node(name).addr
  }

  /** `tc -s qdisc` of a node's uplink (sent bytes, drops, overlimits), for reports. */
  qdiscStats (name) {
    return tc('-n', this.node(name).ns, '-s', 'qdisc', 'show', 'dev', 'eth0')
  }

  /**
   * Spawns `command args` inside a node's namespace (`ip netns exec` execs in place, so
   * the child's pid is the command's). The child is SIGKILLed at cleanup if still alive.
   */
  spawn (name, command, args = [], options = {}) {
    if (this.cleaned) throw new Error('the lab is cleaned up')
    const child = spawn('ip', ['netns', 'exec', this.node(name).ns, command, ...args], options)
    this.children.add(child)
    child.once('exit', () => { this.children.delete(child) })
    return child
  }

  /** Kills what we started, deletes every namespace we created; safe to call many times. */
  cleanup () {
    if (this.cleaned) return
    this.cleaned = true
    for (const child of this.children) {
      try { if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL') } catch {}
    }
    this.children.clear()
    const failed = []
    // nodes first, the bridge namespace last
    for (const ns of [...this.created].reverse()) {
      if (!deleteNamespace(ns)) failed.push(ns)
    }
    this.created = []
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.off(signal, this.onSignal)
    process.off('exit', this.onExit)
    if (failed.length > 0) {
      process.stderr.write(`netns: could not delete ${failed.join(' ')}; delete by hand with "ip netns del NAME"\n`)
    }
  }
}
