// Issue 5, "every change flows both ways within seconds", against the size of the share:
// two real Home Cloud daemons on loopback (the vs-syncthing pair: CLI setup, private
// swarm, share add/accept), N tiny files moved into A's share in one rename, then R
// rounds that each rewrite ONE file on A and time until B's copy holds the new bytes.
// Per round it prints B's pull phases from B's debug log ("pull from ...: snapshot, plan,
// apply, publish"), B's scans of its share after the pull, and B's CPU: does a receiver's
// work per change grow with the number of files in the share? (Syncthing sends index
// deltas: its cost per change does not.)
//
//   node bench/share-change.mjs [--files 50000] [--rounds 7] [--keep]
import { createHash } from 'node:crypto'
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { cpuSeconds } from './lib/devices.mjs'
import { removeDir, until, workDir } from './util.mjs'
import { homecloudReady, startHomecloudPair } from './vs-syncthing/homecloud.mjs'

const { values: opts } = parseArgs({
  options: {
    files: { type: 'string' },
    rounds: { type: 'string' },
    keep: { type: 'boolean' }
  }
})
const fileCount = Number(opts.files ?? 50_000)
const rounds = Number(opts.rounds ?? 7)
if (!Number.isInteger(fileCount) || fileCount < 1) throw new Error(`bad --files ${opts.files}: a whole number ≥ 1`)
if (!Number.isInteger(rounds) || rounds < 1 || rounds > fileCount) throw new Error(`bad --rounds ${opts.rounds}: a whole number from 1 to --files`)

const PER_FOLDER = 500
const TOP = 'tree' // the folder moved into A's share
const POLL_MS = 20
const CHANGE_TIMEOUT_MS = 120_000
const SYNC_TIMEOUT_MS = 30 * 60_000
const DEBUG = 'homecloud:sync*'

const ready = await homecloudReady()
if (ready !== true) throw new Error(ready)

/** Relative path (inside the share) of file `i`. */
function filePath (i) {
  return `${TOP}/d${String(Math.floor(i / PER_FOLDER)).padStart(3, '0')}/f${String(i).padStart(6, '0')}.txt`
}

/** 1–200 deterministic bytes for `seed` (the same run after run; different seeds, different bytes). */
function content (seed) {
  const digest = createHash('sha256').update(seed).digest()
  const size = 1 + (digest.readUInt32BE(0) % 200)
  const out = Buffer.alloc(size)
  for (let pos = 0; pos < size; pos += digest.length) digest.copy(out, pos, 0, Math.min(digest.length, size - pos))
  return out
}

/** The new bytes of file `i` in round `r`: never its current ones. */
function changed (i, r, current) {
  for (let k = 0; ; k++) {
    const next = content(`round ${r} file ${i} try ${k}`)
    if (!next.equals(current)) return next
  }
}

/** Writes files 0..count-1 under `root`, a folder per PER_FOLDER files, a bounded number at a time. */
async function writeTree (root, count) {
  const inFlight = 64
  for (let start = 0; start < count; start += inFlight) {
    const batch = []
    for (let i = start; i < Math.min(count, start + inFlight); i++) {
      if (i % PER_FOLDER === 0) await mkdir(join(root, filePath(i), '..'), { recursive: true })
      batch.push(writeFile(join(root, filePath(i)), content(`file ${i}`)))
    }
    await Promise.all(batch)
  }
}

/** Like util's `until` but every `everyMs` (a change takes well under a second: 200 ms polls would hide it). */
async function pollUntil (what, fn, { everyMs, timeoutMs }) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await fn()) return
    if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs} ms`)
    await new Promise(resolve => setTimeout(resolve, everyMs))
  }
}

// "(N entries differ from ours)" after the snapshot time is optional: older builds do not log it
const PULL_LINE = /^(\d{4}-\d\d-\d\dT[\d:.]+Z) \S+ share \S+: pull from \S+: snapshot (\d+) ms(?: \((\d+) entries differ from ours\))?, plan (\d+) ms \((\d+) steps, (\d+) chunks to fetch, (\d+) entries left for later\), apply (\d+) ms, publish (\d+) ms/

const SCAN_LINE = /^(\d{4}-\d\d-\d\dT[\d:.]+Z) \S+ scanned .*entries: (\d+),.* in (\d+) ms$/

/** B's "pull from" lines and its scans of the share ("scanned ...") logged at or after `since` (ms since the epoch). */
async function logSince (logPath, since) {
  const pulls = []
  const scans = []
  for (const line of (await readFile(logPath, 'utf8')).split('\n')) {
    const scan = SCAN_LINE.exec(line)
    if (scan != null && Date.parse(scan[1]) >= since) scans.push({ entries: Number(scan[2]), ms: Number(scan[3]) })
    const m = PULL_LINE.exec(line)
    if (m == null) {
      // a changed log format shows in the error rather than as a silent timeout
      if (line.includes(': pull from ') && Date.parse(line.slice(0, line.indexOf(' '))) >= since) throw new Error(`unparsed pull line: ${line}`)
      continue
    }
    if (Date.parse(m[1]) < since) continue
    const [snapshot, differ, plan, steps, chunks, later, apply, publish] = m.slice(2).map(x => x == null ? undefined : Number(x))
    pulls.push({ snapshot, differ, plan, steps, chunks, later, apply, publish })
  }
  return { pulls, scans }
}

/** Waits until `pid` used no more than one clock tick (10 ms) of CPU in 250 ms: work that follows the idle state (a rescan) is counted. */
async function cpuQuiet (pid, timeoutMs) {
  const deadline = Date.now() + timeoutMs
  for (let before = await cpuSeconds(pid); Date.now() < deadline;) {
    await new Promise(resolve => setTimeout(resolve, 250))
    const now = await cpuSeconds(pid)
    if (now - before <= 0.01) return
    before = now
  }
  throw new Error(`process ${pid} still busy after ${timeoutMs} ms`)
}

function median (xs) {
  const s = [...xs].sort((x, y) => x - y)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

const sum = (pulls, key) => pulls.reduce((total, p) => total + p[key], 0)

const dir = await workDir('share-change')
const children = new Set()
process.on('exit', () => {
  for (const c of children) if (c.exitCode == null) try { process.kill(c.pid, 'SIGKILL') } catch { /* already gone */ }
})

let system
try {
  const pool = join(dir, 'pool')
  const folders = Math.ceil(fileCount / PER_FOLDER)
  let t = performance.now()
  await writeTree(pool, fileCount)
  console.log(`wrote ${fileCount} files of 1–200 bytes in ${folders} folders in ${((performance.now() - t) / 1000).toFixed(1)} s`)

  system = await startHomecloudPair({ dir, track: c => children.add(c), debug: DEBUG })
  const { a, b } = system
  const aLog = join(dir, `${a.name}.log`)
  const bLog = join(dir, `${b.name}.log`)

  t = performance.now()
  await rename(join(pool, TOP), join(a.share, TOP))
  await until(`B holds ${fileCount} files and both are idle`, async () => {
    const [sa, sb] = await Promise.all([system.status(a), system.status(b)])
    return sa.files === fileCount && sb.files === fileCount && await system.idle()
  }, SYNC_TIMEOUT_MS)
  console.log(`initial sync of ${fileCount} files (rename into A → B holds them all, both idle): ${((performance.now() - t) / 1000).toFixed(1)} s`)
  for (const i of [0, fileCount - 1]) { // the ends of the tree arrived whole
    const got = await readFile(join(b.share, filePath(i)))
    if (!got.equals(content(`file ${i}`))) throw new Error(`B's ${filePath(i)} differs from A's after the initial sync`)
  }

  const results = []
  for (let r = 0; r < rounds; r++) {
    const i = Math.floor(((r + 0.5) / rounds) * fileCount) // a different file (and folder) each round
    const path = filePath(i)
    const next = changed(i, r, await readFile(join(a.share, path)))
    const cpu0 = await cpuSeconds(b.pid)
    const wall0 = Date.now()
    const t0 = performance.now()
    await writeFile(join(a.share, path), next)
    await pollUntil(`B has round ${r + 1}'s ${path}`, async () => {
      const got = await readFile(join(b.share, path)).catch(() => undefined)
      return got?.equals(next) === true
    }, { everyMs: POLL_MS, timeoutMs: CHANGE_TIMEOUT_MS })
    const ms = performance.now() - t0
    // the round ends when both are idle again (B's head published, A in sync with it) and B's CPU is quiet (its rescan done)
    await system.waitIdle(CHANGE_TIMEOUT_MS)
    await cpuQuiet(b.pid, CHANGE_TIMEOUT_MS)
    const cpuMs = (await cpuSeconds(b.pid) - cpu0) * 1000
    // the log line follows the apply through B's stderr and our write stream: wait for it
    let pulls = []
    let scans = []
    await until(`B's log shows the pull of round ${r + 1}`, async () => {
      ({ pulls, scans } = await logSince(bLog, wall0))
      return pulls.length > 0
    }, 10_000)
    const aScans = (await logSince(aLog, wall0)).scans // the sender's side of the latency
    const round = { ms, cpuMs, snapshot: sum(pulls, 'snapshot'), plan: sum(pulls, 'plan'), apply: sum(pulls, 'apply'), publish: sum(pulls, 'publish'), scan: sum(scans, 'ms') }
    results.push(round)
    const each = pulls.map(p => `snapshot ${p.snapshot}${p.differ == null ? '' : ` (${p.differ} entries differ)`}, plan ${p.plan} (${p.steps} steps, ${p.chunks} chunks, ${p.later} later), apply ${p.apply}, publish ${p.publish}`).join(' | ')
    const scanText = list => list.length === 0 ? 'none' : list.map(x => `${x.ms} ms (${x.entries} entries)`).join(', ')
    console.log(`round ${r + 1}: ${path} (${next.length} B) → B ${ms.toFixed(0)} ms; A scans ${scanText(aScans)}; B CPU ${cpuMs.toFixed(0)} ms; B ${pulls.length} pull(s) ms: ${each}; B scans after it: ${scanText(scans)}`)
  }

  const m = key => median(results.map(x => x[key])).toFixed(0)
  const cpuPerChange = results.reduce((total, x) => total + x.cpuMs, 0) / rounds
  console.log(`B CPU over the ${rounds} rounds (each from the write until B is idle and its CPU quiet): ${(cpuPerChange * rounds / 1000).toFixed(2)} s (pid ${b.pid}); B's own scans ${m('scan')} ms median per round`)
  console.log(`files ${fileCount}: change → B median ${m('ms')} ms (snapshot ${m('snapshot')} ms, plan ${m('plan')} ms, apply ${m('apply')} ms median), B CPU per change ${cpuPerChange.toFixed(0)} ms`)
} finally {
  if (system != null) await system.stop().catch(err => { console.error(`stopping the daemons: ${err.message}`) })
  if (opts.keep) console.log(`kept ${dir}`)
  else await removeDir(dir)
}
