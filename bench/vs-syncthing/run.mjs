// Home Cloud vs Syncthing (issue 5): the same folder on two devices of each system, on
// loopback, the same changes, measured in the same run. As root (apt-get, nftables):
//
//   /work/main/node_modules/.bin/node bench/vs-syncthing/run.mjs [--size 1G] [--st-defaults]
//
// See README.md in this folder for what is measured and how.
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, rmSync, rmdirSync } from 'node:fs'
import { mkdir, readFile, statfs, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { MiB, parseSize } from '../util.mjs'
import { makePool, mbText, scenarios } from './scenarios.mjs'
import { ensureSyncthing, startSyncthingPair } from './syncthing.mjs'
import { homecloudReady, startHomecloudPair } from './homecloud.mjs'
import { treeHasher, watchTree } from './tree.mjs'
import { createWireCounters } from './wire.mjs'

const USAGE = `usage: node bench/vs-syncthing/run.mjs [flags]
  --size SIZE        the big file (default 1G, as the issue says; e.g. 256M to iterate)
  --small N          small files in scenario a (default 2000)
  --tiny N           tiny files in scenario e (default 10000)
  --rename-size SIZE the renamed file of scenario d (default 100M, at most --size)
  --st-defaults      also run a Syncthing pair at its default 10 s watcher delay
  --only WHICH       syncthing | homecloud | both (default both)
  --scenarios LIST   run only these scenarios, e.g. a,e (d needs d0; b and c need a)
  --idle-s N         length of the idle measurement (default 120: Home Cloud trims after 60 s quiet)
  --timeout-min N    bound on the whole run (default 150)
  --no-trace         do not poll each system's status during a change (the A/B timeline)
  --hc-debug SCOPES  DEBUG scopes for the Home Cloud daemons (e.g. 'homecloud:sync*'), logged to
                     the scratch folder's hc/hc-a.log and hc/hc-b.log (use with --keep)
  --mem-trace        the Home Cloud daemons log their memory (RSS, V8 heap, external, ArrayBuffers) every
                     100 ms (mem-trace.mjs); each scenario prints its peak of each
  --snapshot-mib N   with --mem-trace: a heap snapshot of a daemon the first time its RSS passes N MiB,
                     in the scratch folder (use with --keep)
  --heap-prof LIST   with --mem-trace: a sampling heap profile of each daemon during these scenarios
                     (e.g. e), counting what major GCs collect, in the scratch folder (use with --keep)
  --hc-node-options=OPTS  NODE_OPTIONS of the Home Cloud daemons (V8 flags to compare, e.g.
                     --hc-node-options=--max-old-space-size=512)
  --keep             keep the scratch folder (bench/.work/vs-syncthing/PID)`

const SETTLE_MS = 2000
const IDLE_WAIT_MS = 10 * 60_000

const { values: opts } = parseArgs({
  options: {
    size: { type: 'string' },
    small: { type: 'string' },
    tiny: { type: 'string' },
    'rename-size': { type: 'string' },
    'st-defaults': { type: 'boolean' },
    only: { type: 'string' },
    scenarios: { type: 'string' },
    'idle-s': { type: 'string' },
    'timeout-min': { type: 'string' },
    keep: { type: 'boolean' },
    'no-trace': { type: 'boolean' },
    'hc-debug': { type: 'string' },
    'mem-trace': { type: 'boolean' },
    'snapshot-mib': { type: 'string' },
    'heap-prof': { type: 'string' },
    'hc-node-options': { type: 'string' },
    help: { type: 'boolean', short: 'h' }
  }
})
if (opts.help) {
  console.log(USAGE)
  process.exit(0)
}
const size = parseSize(opts.size, 1024 * MiB)
const smallCount = Number(opts.small ?? 2000)
const tinyCount = Number(opts.tiny ?? 10_000)
const renameSize = Math.min(parseSize(opts['rename-size'], 100 * MiB), size)
const only = opts.only ?? 'both'
// longer than the daemon's idle trim waits (60 s of quiet, apps/homecloud/src/idle-trim.ts): an idle device is measured idle
const idleS = Number(opts['idle-s'] ?? 120)
const timeoutMin = Number(opts['timeout-min'] ?? 150)
if (!['both', 'syncthing', 'homecloud'].includes(only)) throw new Error(`--only ${only}: syncthing, homecloud or both`)
for (const [name, n] of [['--small', smallCount], ['--tiny', tinyCount], ['--idle-s', idleS], ['--timeout-min', timeoutMin]]) {
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive whole number`)
}
if (typeof process.getuid === 'function' && process.getuid() !== 0) throw new Error('run as root: it installs syncthing and counts bytes with nftables')

// ---- everything we start is undone at exit, whatever the exit ----
const root = join(dirname(dirname(fileURLToPath(import.meta.url))), '.work', 'vs-syncthing')
const work = join(root, String(process.pid))
const children = new Set()
let wire = null
function cleanup () {
  for (const child of children) {
    if (child.exitCode == null && child.signalCode == null) {
      try { process.kill(child.pid, 'SIGKILL') } catch {}
    }
  }
  wire?.remove()
  if (!opts.keep) {
    rmSync(work, { recursive: true, force: true })
    try { rmdirSync(root) } catch {} // only when no other run's folder is left
  }
}
process.on('exit', cleanup)
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => { console.error(`\n${signal}: stopping`); process.exit(130) })
setTimeout(() => { console.error(`\nthe run passed its bound (--timeout-min ${timeoutMin}): stopping`); process.exit(1) }, timeoutMin * 60_000).unref()
const track = (child) => { children.add(child); child.once('exit', () => children.delete(child)) }

/** Folders and nft tables left by runs that died hard (their pid is gone). */
function sweepStale () {
  const alive = (pid) => { try { process.kill(pid, 0); return true } catch (err) { return err.code === 'EPERM' } }
  if (existsSync(root)) {
    for (const name of readdirSync(root)) {
      if (/^\d+$/.test(name) && !alive(Number(name))) rmSync(join(root, name), { recursive: true, force: true })
    }
  }
  const tables = execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' })
  for (const m of tables.matchAll(/^table inet (hcbench_vs_st_(\d+))$/gm)) {
    if (!alive(Number(m[2]))) execFileSync('nft', ['delete', 'table', 'inet', m[1]])
  }
}

// ---- measuring helpers ----
const sleep = (ms) => new Promise(resolve => setTimeout(resolve, ms))

async function procField (pid, field) {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(await readFile(`/proc/${pid}/status`, 'utf8'))
  return m == null ? NaN : Number(m[1]) * 1024
}

/** Resets the kernel's peak-RSS mark (VmHWM) so the next read is the peak since now (proc(5) clear_refs). */
async function resetPeak (pids) {
  for (const pid of pids) await writeFile(`/proc/${pid}/clear_refs`, '5').catch(() => {})
}

async function cpuSeconds (pid) {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8')
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

async function cpuOf (pids) {
  let sum = 0
  for (const pid of pids) sum += await cpuSeconds(pid)
  return sum
}

function du (path) {
  return Number(execFileSync('du', ['-sb', path], { encoding: 'utf8' }).split('\t')[0])
}

function bytesText (n) {
  if (!Number.isFinite(n)) return '—'
  if (n < 10 * 1024) return `${n} B`
  if (n < 10 * MiB) return `${(n / 1024).toFixed(0)} KiB`
  if (n < 10 * 1024 * MiB) return `${(n / MiB).toFixed(1)} MiB`
  return `${(n / 1024 / MiB).toFixed(2)} GiB`
}

/**
 * Samples `sys.phase()` (both sides' state) every TRACE_MS until stopped: the timeline that
 * says which phase a slow change spent its time in (A scanning, B syncing, ...). An entry
 * at each change of state, and every TRACE_EVERY_MS in a long one; each with the seconds
 * since the change and the bytes on the wire so far.
 */
function tracePhases (sys, t0, wireSoFar) {
  const entries = []
  let lastKey = null
  let lastAt = 0
  let stopped = false
  const loop = (async () => {
    while (!stopped) {
      const t = performance.now()
      const phase = await sys.phase().catch(err => ({ key: 'error', text: `(${err.message})` }))
      if (phase.key !== lastKey || t - lastAt >= TRACE_EVERY_MS) {
        entries.push(`${((t - t0) / 1000).toFixed(1)}s ${phase.text} [${bytesText(wireSoFar())}]`)
        lastKey = phase.key
        lastAt = t
      }
      await sleep(TRACE_MS)
    }
  })()
  return async () => { stopped = true; await loop; return entries.join(' → ') }
}
const TRACE_MS = 200
const TRACE_EVERY_MS = 5000

/** Per pid, the largest of each memory figure the daemon logged between `from` and `to` (mem-trace.mjs). */
async function memPeaks (sys, from, to) {
  if (sys.memTrace == null) return null
  const peaks = []
  for (const pid of sys.pids()) {
    const peak = { rss: 0, heapUsed: 0, heapTotal: 0, external: 0, arrayBuffers: 0 }
    const text = await readFile(`${sys.memTrace}.${pid}`, 'utf8').catch(() => '')
    for (const line of text.split('\n')) {
      if (line === '') continue
      const m = JSON.parse(line)
      if (m.t < from || m.t > to) continue
      for (const k of Object.keys(peak)) peak[k] = Math.max(peak[k], m[k])
    }
    peaks.push(peak)
  }
  return peaks
}
/** Starts or stops (and writes) each daemon's sampling heap profile (mem-trace.mjs: SIGUSR2). */
async function toggleHeapProfiles (sys) {
  for (const pid of sys.pids()) process.kill(pid, 'SIGUSR2')
  await sleep(500) // the profiler starts (or the profile is written) on the daemon's own time
}
const memText = (peaks) => peaks.map(p => `rss ${bytesText(p.rss)} heap ${bytesText(p.heapUsed)}/${bytesText(p.heapTotal)} ext ${bytesText(p.external)} ab ${bytesText(p.arrayBuffers)}`).join(' | ')

const secText = (ms) => ms == null ? 'timeout' : `${(ms / 1000).toFixed(2)} s`

// ---- the run ----
console.log(`vs-syncthing: --size ${mbText(size)}, ${smallCount} small, ${tinyCount} tiny, rename ${mbText(renameSize)}, only=${only}`)
sweepStale()
await mkdir(work, { recursive: true })
const dataBytes = size + smallCount * 33 * 1024 + renameSize + tinyCount * 520
const copies = 1 /* pool */ + 1 /* master */ + 2 * (only === 'homecloud' ? 0 : opts['st-defaults'] ? 2 : 1) + 2 * (only === 'syncthing' ? 0 : 2 /* share + blocks */)
const need = dataBytes * (copies + 1 /* stage */) * 1.1
const fs = await statfs(work)
console.log(`disk: ${bytesText(fs.bavail * fs.bsize)} free under ${work}, this run needs ~${bytesText(need)}`)
if (fs.bavail * fs.bsize < need) throw new Error('not enough disk space; try a smaller --size')

const systems = []
if (only !== 'homecloud') {
  console.log(ensureSyncthing())
  systems.push(await startSyncthingPair({ dir: join(work, 'st1'), label: 'st1', delayS: 1, track }))
  if (opts['st-defaults']) systems.push(await startSyncthingPair({ dir: join(work, 'st10'), label: 'st10', delayS: 10, track }))
}
if (only !== 'syncthing') {
  const ready = await homecloudReady()
  if (ready !== true) {
    console.log(`Home Cloud side skipped: ${ready}`)
  } else {
    const memTrace = opts['mem-trace'] ? join(work, 'hc', 'memtrace') : undefined
    systems.push(await startHomecloudPair({ dir: join(work, 'hc'), track, debug: opts['hc-debug'], memTrace, snapshotMib: opts['snapshot-mib'], nodeOptions: opts['hc-node-options'] }))
  }
}
if (systems.length === 0) throw new Error('nothing to measure')
wire = createWireCounters()
for (const sys of systems) wire.add(sys.name, sys.ports)
console.log(`systems: ${systems.map(s => `${s.describe()} pids ${s.pids().join('/')}`).join('; ')}`)

let t = performance.now()
const pool = join(work, 'pool')
await makePool(pool, { size, smallCount, renameSize, tinyCount })
console.log(`pool generated in ${secText(performance.now() - t)}`)
const master = { share: join(work, 'master', 'share'), stage: join(work, 'master', 'stage') }
await mkdir(master.share, { recursive: true })
await mkdir(master.stage, { recursive: true })
const hashMaster = treeHasher(master.share)

const results = new Map() // scenario id → system name → result
// each scenario resets the kernel's peak mark: the whole run's peak is the largest of theirs
const runPeak = new Map() // system name → peak RSS per pid
const notePeak = (name, peaks) => runPeak.set(name, peaks.map((p, i) => Math.max(p, runPeak.get(name)?.[i] ?? 0)))
const picked = opts.scenarios?.split(',').map(id => id.trim())
const list = scenarios({ pool, size, smallCount, renameSize, tinyCount }).filter(sc => picked == null || picked.includes(sc.id))
if (list.length === 0) throw new Error(`--scenarios ${opts.scenarios}: none of a, b, c, d0, d, e`)
for (const sc of list) {
  await sc.prepare(master)
  await sc.apply(master)
  const expected = await hashMaster()
  const total = [...expected.values()].reduce((sum, f) => sum + f.size, 0)
  const timeoutMs = 180_000 + total / (2 * MiB) * 1000 // ≥ 2 MB/s or it is a failure anyway
  const row = new Map()
  results.set(sc.id, row)
  console.log(`\n${sc.id}) ${sc.title}`)
  for (const sys of systems) {
    await sys.waitIdle(IDLE_WAIT_MS)
    await sc.prepare(sys.a)
    execFileSync('sync') // the staged copy's writeback must not land inside the measurement
    await sleep(SETTLE_MS)
    await sys.waitIdle(IDLE_WAIT_MS)
    sys.watch ??= watchTree(sys.b.share)
    await sys.watch.refresh()
    const w0 = wire.bytes(sys.name)
    const app0 = await sys.appBytes?.()
    const c0 = await cpuOf(sys.pids())
    await resetPeak(sys.pids())
    const profiling = sys.memTrace != null && (opts['heap-prof']?.split(',').includes(sc.id) ?? false)
    if (profiling) await toggleHeapProfiles(sys)
    const t0 = performance.now()
    const wall0 = Date.now()
    const trace = opts['no-trace'] || sys.phase == null ? null : tracePhases(sys, t0, () => wire.bytes(sys.name) - w0)
    await sc.apply(sys.a)
    const r = await sys.watch.wait(expected, { t0, timeoutMs })
    const timeline = await trace?.()
    if (profiling) await toggleHeapProfiles(sys)
    // everything the change caused (index/head updates after the data) counts on the wire
    await sys.waitIdle(IDLE_WAIT_MS).catch(err => console.log(`  ${sys.name}: ${err.message}`))
    await sleep(SETTLE_MS)
    const result = {
      ms: r.ms,
      wire: wire.bytes(sys.name) - w0,
      app: app0 == null ? undefined : (await sys.appBytes()) - app0,
      cpu: (await cpuOf(sys.pids())) - c0,
      peak: await Promise.all(sys.pids().map(pid => procField(pid, 'VmHWM')))
    }
    row.set(sys.name, result)
    notePeak(sys.name, result.peak)
    if (r.timedOut) console.log(`  ${sys.describe()}: TIMEOUT after ${secText(timeoutMs)}: ${r.missingCount} files not identical (${r.missing.join(', ')}), extra: ${r.extra.join(', ')}`)
    else console.log(`  ${sys.describe()}: ${secText(r.ms)}, ${bytesText(result.wire)} on the wire${result.app == null ? '' : ` (its own count ${bytesText(result.app)})`}, ${result.cpu.toFixed(1)} CPU-s (A+B), peak RSS ${result.peak.map(bytesText).join(' / ')}`)
    if (timeline != null) console.log(`    states A / B: ${timeline}`)
    const mem = await memPeaks(sys, wall0, Date.now())
    if (mem != null) console.log(`    memory peaks A / B: ${memText(mem)}`)
  }
}

// f) idle
console.log(`\nf) idle: ${idleS} s with nothing changing`)
for (const sys of systems) await sys.waitIdle(IDLE_WAIT_MS)
await sleep(5000)
const idle = new Map()
const c0 = new Map()
for (const sys of systems) c0.set(sys.name, await Promise.all(sys.pids().map(cpuSeconds)))
t = performance.now()
await sleep(idleS * 1000)
const elapsed = (performance.now() - t) / 1000
const dataTotal = [...(await hashMaster()).values()].reduce((sum, f) => sum + f.size, 0)
for (const sys of systems) {
  const pids = sys.pids()
  const cpu = await Promise.all(pids.map(cpuSeconds))
  const info = {
    cpuPct: cpu.map((c, i) => 100 * (c - c0.get(sys.name)[i]) / elapsed),
    rss: await Promise.all(pids.map(pid => procField(pid, 'VmRSS'))),
    // RSS = anonymous (the process's own memory) + file (pages of the program and libraries)
    rssAnon: await Promise.all(pids.map(pid => procField(pid, 'RssAnon'))),
    rssFile: await Promise.all(pids.map(pid => procField(pid, 'RssFile'))),
    hwm: notePeak(sys.name, await Promise.all(pids.map(pid => procField(pid, 'VmHWM')))).get(sys.name),
    index: sys.indexDirs().map(du),
    extra: sys.storeDirs?.().map(du)
  }
  idle.set(sys.name, info)
  console.log(`  ${sys.describe()}: CPU ${info.cpuPct.map(p => p.toFixed(2) + ' %').join(' / ')}, RSS ${info.rss.map(bytesText).join(' / ')} (anon ${info.rssAnon.map(bytesText).join(' / ')}, file ${info.rssFile.map(bytesText).join(' / ')}), peak ${info.hwm.map(bytesText).join(' / ')}, index ${info.index.map(bytesText).join(' / ')}${info.extra == null ? '' : `, chunk store ${info.extra.map(bytesText).join(' / ')}`}`)
}

for (const sys of systems) await sys.stop()

// ---- the table ----
const st = systems.find(s => s.name === 'st1')
const st10 = systems.find(s => s.name === 'st10')
const hc = systems.find(s => s.name === 'hc')
const cols = ['scenario', 'goal (Home Cloud)', 'Syncthing 1 s', ...(st10 ? ['Syncthing 10 s'] : []), 'Home Cloud', 'ratio ST/HC', 'verdict']
const rows = []
const ratio = (x, y) => (x != null && y != null && y > 0) ? `${(x / y).toFixed(2)}×` : '—'
const verdict = (ok) => ok == null ? '' : ok ? 'PASS' : 'FAIL'
for (const sc of list) {
  const row = results.get(sc.id)
  const r = (sys) => sys == null ? undefined : row.get(sys.name)
  const [a, a10, h] = [r(st), r(st10), r(hc)]
  const g = sc.goal ?? {}
  let timeGoal = ''
  let timeOk = null
  if (g.speedup != null) {
    timeGoal = `≥ ${g.speedup}× Syncthing's speed`
    if (h != null && a != null) timeOk = h.ms != null && a.ms != null && a.ms / h.ms >= g.speedup
  } else if (g.seconds != null) {
    timeGoal = `≤ ${g.seconds} s`
    if (h != null) timeOk = h.ms != null && h.ms <= g.seconds * 1000
  }
  const cell = (x, f) => x == null ? '—' : f(x)
  rows.push([`${sc.id}) ${sc.title}: time`, timeGoal, cell(a, x => secText(x.ms)), ...(st10 ? [cell(a10, x => secText(x.ms))] : []), cell(h, x => secText(x.ms)), ratio(a?.ms, h?.ms), verdict(timeOk)])
  const wireOk = g.wireBytes == null || h == null ? null : h.wire <= g.wireBytes
  rows.push(['   on the wire', g.wireBytes == null ? '' : `≤ ${bytesText(g.wireBytes)}`, cell(a, x => bytesText(x.wire)), ...(st10 ? [cell(a10, x => bytesText(x.wire))] : []), cell(h, x => bytesText(x.wire)), ratio(a?.wire, h?.wire), verdict(wireOk)])
  rows.push(['   CPU (A+B)', '', cell(a, x => `${x.cpu.toFixed(1)} s`), ...(st10 ? [cell(a10, x => `${x.cpu.toFixed(1)} s`)] : []), cell(h, x => `${x.cpu.toFixed(1)} s`), ratio(a?.cpu, h?.cpu), ''])
  const peakText = (x) => x.peak.map(bytesText).join(' / ')
  rows.push(['   peak RSS A / B', '', cell(a, peakText), ...(st10 ? [cell(a10, peakText)] : []), cell(h, peakText), '', ''])
}
const iv = (sys, f) => sys == null ? '—' : f(idle.get(sys.name))
const both = (xs, f) => xs.map(f).join(' / ')
const hcIdle = hc == null ? null : idle.get(hc.name)
rows.push([`f) idle ${idleS} s: CPU A / B`, '', iv(st, i => both(i.cpuPct, p => p.toFixed(2) + ' %')), ...(st10 ? [iv(st10, i => both(i.cpuPct, p => p.toFixed(2) + ' %'))] : []), iv(hc, i => both(i.cpuPct, p => p.toFixed(2) + ' %')), '', ''])
rows.push(['   RSS A / B (idle)', '≤ 100 MiB', iv(st, i => both(i.rss, bytesText)), ...(st10 ? [iv(st10, i => both(i.rss, bytesText))] : []), iv(hc, i => both(i.rss, bytesText)), '', verdict(hcIdle == null ? null : hcIdle.rss.every(x => x <= 100 * MiB))])
rows.push(['   of it anonymous A / B', '', iv(st, i => both(i.rssAnon, bytesText)), ...(st10 ? [iv(st10, i => both(i.rssAnon, bytesText))] : []), iv(hc, i => both(i.rssAnon, bytesText)), '', ''])
rows.push(['   peak RSS A / B (whole run)', '', iv(st, i => both(i.hwm, bytesText)), ...(st10 ? [iv(st10, i => both(i.hwm, bytesText))] : []), iv(hc, i => both(i.hwm, bytesText)), '', ''])
rows.push([`   index A / B (data ${bytesText(dataTotal)})`, '', iv(st, i => both(i.index, bytesText)), ...(st10 ? [iv(st10, i => both(i.index, bytesText))] : []), iv(hc, i => both(i.index, bytesText)), '', ''])
if (hcIdle?.extra != null) rows.push(['   chunk store A / B (history)', '', '—', ...(st10 ? ['—'] : []), both(hcIdle.extra, bytesText), '', ''])

const widths = cols.map((c, i) => Math.max(c.length, ...rows.map(r => String(r[i]).length)))
const line = (cells) => '| ' + cells.map((c, i) => String(c).padEnd(widths[i])).join(' | ') + ' |'
console.log(`\nHome Cloud vs Syncthing, same run, loopback, --size ${mbText(size)} (ratio = Syncthing 1 s ÷ Home Cloud: > 1 means Home Cloud is faster / sends less / uses less CPU)\n`)
console.log(line(cols))
console.log('|' + widths.map(w => '-'.repeat(w + 2)).join('|') + '|')
for (const r of rows) console.log(line(r))
process.exit(0)
