// Two real `homecloud` daemons on loopback for the transfer benchmarks (get.mjs,
// memory.mjs): temp repos under bench/.work, `homecloud start` processes
// (process.execPath + apps/homecloud/dist/src/bin.js, through the app's own
// child helpers), `add` on one, `get --from` it on the other, and the peak RSS
// of a daemon read from /proc/<pid>/status (VmHWM: the kernel's own high-water
// mark, so no sample is missed).
import { readdir, readFile, statfs } from 'node:fs/promises'
import { runCli, spawnDaemon } from '../../apps/homecloud/dist/src/child.js'
import { MiB } from '../util.mjs'

/** Loopback only, no LAN discovery, no router, no DHT. */
export const DAEMON_ARGS = ['--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0', '--no-mdns', '--no-upnp', '--dht', 'off']

const HOUR = 3_600_000

async function cli (repo, args) {
  const { code, stdout, stderr } = await runCli(['--repo', repo, ...args], { timeoutMs: HOUR })
  if (code !== 0) throw new Error(`homecloud ${args.join(' ')} failed (${code}): ${stderr}`)
  return stdout
}

/**
 * `homecloud init` + `homecloud start` in `repo`; the daemon child, with its dialable address.
 * `nodeFlags` replaces the app's DAEMON_NODE_FLAGS (to compare V8 settings); by default
 * the daemon runs exactly as `homecloud start` does.
 */
export async function startDevice (repo, name, { env, nodeFlags } = {}) {
  await cli(repo, ['init', '--name', name])
  const daemon = await spawnDaemon(repo, DAEMON_ARGS, { env, nodeFlags, timeoutMs: 60_000 })
  const id = JSON.parse(await cli(repo, ['id', '--json']))
  const first = id.addresses[0]
  const address = first.includes('/p2p/') ? first : `${first}/p2p/${id.peerId}`
  return { repo, daemon, pid: daemon.child.pid, address }
}

/** `homecloud add PATH --json` on a device; the parsed answer (cid, bytes, ...). */
export async function add (device, path) {
  return JSON.parse(await cli(device.repo, ['add', path, '--json']))
}

/** `homecloud get CID OUTPUT --from ADDRESS --json` on `device`; the answer and the wall time in seconds. */
export async function get (device, cid, output, from) {
  const start = performance.now()
  const answer = JSON.parse(await cli(device.repo, ['get', cid, output, '--from', from.address, '--json']))
  return { answer, seconds: (performance.now() - start) / 1000 }
}

/** A field of /proc/<pid>/status in bytes (VmHWM: peak RSS, VmRSS: now). */
export async function procStatus (pid, field) {
  const text = await readFile(`/proc/${pid}/status`, 'utf8')
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(text)
  if (m == null) throw new Error(`no ${field} in /proc/${pid}/status`)
  return Number(m[1]) * 1024
}

/**
 * Samples a process's RSS every `everyMs` (for a curve of the run); `stop()`
 * returns the highest sample and the kernel's VmHWM, both in bytes.
 */
export function rssSampler (pid, everyMs = 250) {
  let maxRss = 0
  const samples = []
  const started = performance.now()
  const timer = setInterval(() => {
    procStatus(pid, 'VmRSS').then(rss => {
      maxRss = Math.max(maxRss, rss)
      samples.push([(performance.now() - started) / 1000, rss])
    }, () => {})
  }, everyMs)
  return {
    async stop () {
      clearInterval(timer)
      return { maxRss, hwm: await procStatus(pid, 'VmHWM'), samples }
    }
  }
}

/** "123 MiB" */
export function mib (bytes) {
  return `${(bytes / MiB).toFixed(0)} MiB`
}

/** The RSS curve as "t=..s ..MiB" points, at most `points` of them. */
export function rssCurve (samples, points = 12) {
  if (samples.length === 0) return '(no samples)'
  const step = Math.max(1, Math.floor(samples.length / points))
  return samples.filter((_, i) => i % step === 0).map(([t, rss]) => `${t.toFixed(0)}s:${(rss / MiB).toFixed(0)}`).join(' ')
}


/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
export async function cpuSeconds (pid) {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8')
  // fields after the command name (which may hold spaces) start at field 3
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/** Throws unless the filesystem holding `dir` has `bytes` available. */
export async function ensureSpace (dir, bytes) {
  const st = await statfs(dir)
  const free = st.bavail * st.bsize
  if (free < bytes) throw new Error(`${dir} has ${mib(free)} free; this run needs ${mib(bytes)}`)
  return free
}

/** CPU seconds per thread name of a process (main thread, libuv pool, V8 helpers...), from /proc/<pid>/task. */
export async function threadCpu (pid) {
  const out = {}
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    const text = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').catch(() => '')
    if (text === '') continue
    const name = text.slice(text.indexOf('(') + 1, text.lastIndexOf(')'))
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
    out[name] = (out[name] ?? 0) + (Number(fields[11]) + Number(fields[12])) / 100
  }
  return out
}
