// The sending side of a share in a real daemon (issue 5): one `homecloud start` with one
// share, changes made the way bench/vs-syncthing makes them (prepared outside the share,
// then one rename or a one-byte write), and for each change the time from the change
// until the daemon published its new head, split with the daemon's own log lines
// (DEBUG=homecloud:sync*): watcher debounce → scan (walk + hashing) → head.
//   tiny:  a folder of COUNT files of 1 B–1 KiB (100 to a folder) moved in;
//   big:   a SIZE random file moved in beside them, one byte flipped in its middle (issue 5 b
//          on the sending side: the rescan walks the tiny files too), 10 bytes inserted at its
//          start (c: a new version written beside it, renamed over it), then renamed;
//   touch: one tiny file rewritten: the rescan walks the whole tree.
// After the flip, the same file through `homecloud add` (the same daemon), node's sha256 and
// `sha256sum`, for the hashing speed of the scan against add's in the same run.
// Usage: node bench/share-scan.mjs [size=256M] [count=10000] [rounds=1] [--tree DIR]... [--cpu-prof DIR] [--timeline]
//   --timeline: print the daemon's sync and store log lines of each change, in ms after the change.
//   --flips N: flip the byte N times per daemon (default 1); a summary per tree (best and median) at the end.
//   --poll-status MS: ask the daemon for the share's status every MS ms meanwhile, as
//   bench/vs-syncthing does (its A/B timeline: every 200 ms, both devices).
//   --tree DIR: run the daemon of another built checkout (its apps/homecloud/dist), e.g. a
//   copy of HEAD, to compare trees in one run on the same data; repeatable, default this one.
import { createHash, randomBytes, randomInt } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { cp, mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { pathToFileURL } from 'node:url'
import { MiB, flipMiddleByte, parseSize, removeDir, workDir, writeRandomFile } from './util.mjs'

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: { 'cpu-prof': { type: 'string' }, tree: { type: 'string', multiple: true }, timeline: { type: 'boolean' }, flips: { type: 'string' }, 'poll-status': { type: 'string' } }
})
const trees = opts.tree ?? [join(import.meta.dirname, '..')]
const size = parseSize(positionals[0], 256 * MiB)
const count = Number(positionals[1] ?? 10_000)
const rounds = Number(positionals[2] ?? 1)
const DAEMON_ARGS = ['--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0', '--no-mdns', '--no-upnp', '--dht', 'off']

const dir = await workDir('share-scan')
let daemon
/** The status poll (--poll-status), ended when `daemon` is unset. */
let polling
const lines = []
let waiters = []
function onLine (line) {
  lines.push({ at: performance.now(), line })
  for (const w of waiters) w()
}

/** Waits (bounded) for a log line matching `re` after index `from`. */
async function logLine (re, from, timeoutMs = 600_000) {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const hit = lines.slice(from).find(l => re.test(l.line))
    if (hit != null) return hit
    if (performance.now() > deadline) throw new Error(`no log line ${re} within ${timeoutMs} ms`)
    await new Promise(resolve => {
      waiters.push(resolve)
      setTimeout(resolve, 1000)
    })
    waiters = []
  }
}

/** CPU seconds (user + system, all threads) the daemon used so far. */
async function daemonCpu () {
  const stat = await readFile(`/proc/${daemon.child.pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/** Makes a change and reports change → scan start/end → head from the daemon's log. */
async function measure (name, apply) {
  const from = lines.length
  const cpu = await daemonCpu()
  const start = performance.now()
  await apply()
  const scanned = await logLine(/homecloud:sync:scan scanned/, from)
  // the scan's final head, after its end; none when a partial head (a scan running ≥ 300 ms) already had every change: that one
  const at = lines.indexOf(scanned)
  const head = await logLine(/homecloud:sync:share share data: head/, at, 3000).catch(() => {
    const partial = lines.slice(from, at).findLast(l => /homecloud:sync:share share data: head/.test(l.line))
    if (partial === undefined) throw new Error('no head for this change')
    return partial
  })
  const used = await daemonCpu() - cpu
  const m = /in (\d+) ms/.exec(scanned.line)
  const stats = /\{ (.*) \}/.exec(scanned.line)?.[1] ?? ''
  const scanMs = Number(m?.[1] ?? NaN)
  const hashed = lines.slice(from).map(l => /hashed (\S+) \((\d+) bytes\) in (\d+) ms/.exec(l.line)).filter(Boolean).map(x => `${x[1]} ${x[3]} ms`)
  console.log(`${name}: change → head ${((head.at - start) / 1000).toFixed(3)} s, daemon ${used.toFixed(2)} CPU-s | scan ${(scanMs / 1000).toFixed(3)} s (${stats})` +
    ` | scan end → head ${((head.at - scanned.at) / 1000).toFixed(3)} s${hashed.length > 0 ? ` | hashed ${hashed.join(', ')}` : ''}`)
  if (opts.timeline === true) {
    for (const l of lines.slice(from)) {
      if (l.at > head.at) break
      // the debug module's own time suffix (+Nms) and colours dropped
      // eslint-disable-next-line no-control-regex -- ESC starts the colour codes
      console.log(`    +${String(Math.round(l.at - start)).padStart(5)} ms ${l.line.replace(/\x1b\[[0-9;]*m/g, '').replace(/ \+\d+m?s$/, '').trim()}`)
    }
  }
  const hashMs = lines.slice(from).map(l => /hashed \S+ \(\d+ bytes\) in (\d+) ms/.exec(l.line)).find(Boolean)?.[1]
  return { seconds: (head.at - start) / 1000, hashSeconds: hashMs === undefined ? NaN : Number(hashMs) / 1000, cpu: used }
}

/** Flip results per tree, for the summary. */
const flipped = new Map()

/** The file through `add` (homecloud add), node's sha256 and sha256sum: wall seconds each. */
async function sameFile (file, add) {
  const timed = async (fn) => {
    const start = performance.now()
    await fn()
    return ((performance.now() - start) / 1000).toFixed(3)
  }
  const added = await timed(() => add(file))
  const node = await timed(async () => {
    const hash = createHash('sha256')
    for await (const piece of createReadStream(file, { highWaterMark: MiB })) hash.update(piece)
  })
  const sum = await timed(async () => { execFileSync('sha256sum', [file]) })
  console.log(`  the same file: homecloud add ${added} s (CLI start included) | node sha256 ${node} s | sha256sum ${sum} s`)
}

/** One daemon of `tree` with one empty share; the changes of the benchmark, measured. */
async function runTree (tree, pool, n) {
  const { runCli, spawnDaemon } = await import(pathToFileURL(join(tree, 'apps/homecloud/dist/src/child.js')).href)
  const { connectToDaemon } = await import(pathToFileURL(join(tree, 'apps/homecloud/dist/src/api-client.js')).href)
  const { repoPaths } = await import(pathToFileURL(join(tree, 'apps/homecloud/dist/src/repo.js')).href)
  const cli = async (repo, args) => {
    const { code, stdout, stderr } = await runCli(['--repo', repo, ...args], { timeoutMs: 600_000 })
    if (code !== 0) throw new Error(`homecloud ${args.join(' ')} failed: ${stderr}`)
    return stdout
  }
  const base = join(dir, `run-${n}`)
  const repo = join(base, 'repo')
  const share = join(base, 'share')
  const stage = join(base, 'stage')
  await mkdir(share, { recursive: true })
  await cp(pool, stage, { recursive: true })
  execFileSync('sync')
  await cli(repo, ['init', '--name', 'scan-bench'])
  const env = { DEBUG: opts.timeline === true ? 'homecloud:sync*,homecloud:store*' : 'homecloud:sync*' }
  if (opts['cpu-prof'] != null) env.NODE_OPTIONS = `--cpu-prof --cpu-prof-dir=${join(opts['cpu-prof'], String(n))}`
  lines.length = 0
  daemon = await spawnDaemon(repo, DAEMON_ARGS, { timeoutMs: 60_000, env, onLine })
  try {
    await cli(repo, ['swarm', 'create', 'fam'])
    await cli(repo, ['share', 'add', share, '--swarm', 'fam', '--name', 'data'])
    await logLine(/homecloud:sync:share share data: head/, 0)
    if (opts['poll-status'] != null) {
      const api = await connectToDaemon(repoPaths(repo))
      const every = Number(opts['poll-status'])
      polling = (async () => {
        while (daemon != null) {
          await api.get('share/status?share=data').catch(() => {})
          await new Promise(resolve => setTimeout(resolve, every))
        }
      })()
    }
    console.log(`${tree}:`)
    await measure(`  ${count} tiny files moved in`, async () => { await rename(join(stage, 'tiny'), join(share, 'tiny')) })
    await measure('  big file moved in', async () => { await rename(join(stage, 'big'), join(share, 'big')) })
    for (let flip = 0; flip < Number(opts.flips ?? 1); flip++) {
      const r = await measure('  one byte flipped in its middle', async () => {
        await flipMiddleByte(join(share, 'big', 'big.bin'), size)
      })
      flipped.set(tree, [...(flipped.get(tree) ?? []), r])
    }
    await sameFile(join(share, 'big', 'big.bin'), async (file) => {
      const { code, stderr } = await runCli(['--repo', repo, 'add', file, '--json'], { timeoutMs: 600_000 })
      if (code !== 0) throw new Error(`homecloud add failed: ${stderr}`)
    })
    // issue 5 c: the file with 10 bytes inserted at its start, written beside the share, renamed over it
    await writeRandomFile(join(stage, 'inserted.bin'), 0, { prefix: Buffer.from('0123456789'), seedFrom: join(share, 'big', 'big.bin') })
    execFileSync('sync')
    await measure('  10 bytes inserted at its start (renamed over it)', async () => { await rename(join(stage, 'inserted.bin'), join(share, 'big', 'big.bin')) })
    await measure('  the big file renamed', async () => { await rename(join(share, 'big', 'big.bin'), join(share, 'big', 'renamed.bin')) })
    await measure('  one tiny file rewritten (a full walk)', async () => { await writeFile(join(share, 'tiny', 'd000', 'f00000.bin'), randomBytes(100)) })
  } finally {
    const d = daemon
    daemon = undefined
    await polling
    await d.stop('SIGTERM', 60_000)
    await removeDir(base)
  }
}

try {
  const pool = join(dir, 'pool')
  await mkdir(join(pool, 'big'), { recursive: true })
  await writeRandomFile(join(pool, 'big', 'big.bin'), size)
  for (let i = 0; i < count; i++) {
    const d = join(pool, 'tiny', `d${String(Math.floor(i / 100)).padStart(3, '0')}`)
    if (i % 100 === 0) await mkdir(d, { recursive: true })
    await writeFile(join(d, `f${String(i).padStart(5, '0')}.bin`), randomBytes(randomInt(1, 1025)))
  }
  console.log(`share-scan benchmark: one daemon per tree, ${(size / MiB).toFixed(0)} MiB file, ${count} tiny files (data in page cache), ${rounds} rounds`)
  let n = 0
  for (let round = 1; round <= rounds; round++) {
    for (const tree of trees) await runTree(tree, pool, n++)
  }
  const stat = (xs) => {
    const sorted = [...xs].sort((a, b) => a - b)
    return `best ${sorted[0].toFixed(3)} s, median ${sorted[Math.floor(sorted.length / 2)].toFixed(3)} s`
  }
  console.log('one byte flipped, per tree:')
  for (const [tree, rs] of flipped) {
    console.log(`  ${tree} (${rs.length} flips): change → head ${stat(rs.map(r => r.seconds))} | hashing ${stat(rs.map(r => r.hashSeconds))} | daemon CPU ${stat(rs.map(r => r.cpu)).replaceAll(' s', ' CPU-s')}`)
  }
} finally {
  await daemon?.stop('SIGKILL')
  await removeDir(dir)
}
