// The sending side of a share in a real daemon (issue 5): one `homecloud start` with one
// share, changes made the way bench/vs-syncthing makes them (prepared outside the share,
// then one rename or a one-byte write), and for each change the time from the change
// until the daemon published its new head, split with the daemon's own log lines
// (DEBUG=homecloud:sync*): watcher debounce → scan (walk + hashing) → head.
//   big:   a SIZE random file moved in, one byte flipped in its middle, then renamed;
//   tiny:  a folder of COUNT files of 1 B–1 KiB (100 to a folder) moved in;
//   touch: one tiny file rewritten: the rescan walks the whole tree.
// Usage: node bench/share-scan.mjs [size=256M] [count=10000] [rounds=1] [--tree DIR]... [--cpu-prof DIR]
//   --tree DIR: run the daemon of another built checkout (its apps/homecloud/dist), e.g. a
//   copy of HEAD, to compare trees in one run on the same data; repeatable, default this one.
import { randomBytes, randomInt } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { cp, mkdir, open, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { pathToFileURL } from 'node:url'
import { MiB, parseSize, removeDir, workDir, writeRandomFile } from './util.mjs'

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: { 'cpu-prof': { type: 'string' }, tree: { type: 'string', multiple: true } }
})
const trees = opts.tree ?? [join(import.meta.dirname, '..')]
const size = parseSize(positionals[0], 256 * MiB)
const count = Number(positionals[1] ?? 10_000)
const rounds = Number(positionals[2] ?? 1)
const DAEMON_ARGS = ['--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0', '--no-mdns', '--no-upnp', '--dht', 'off']

const dir = await workDir('share-scan')
let daemon
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
  const head = await logLine(/homecloud:sync:share share data: head/, from)
  const used = await daemonCpu() - cpu
  const m = /in (\d+) ms/.exec(scanned.line)
  const stats = /\{ (.*) \}/.exec(scanned.line)?.[1] ?? ''
  const scanMs = Number(m?.[1] ?? NaN)
  const hashed = lines.slice(from).map(l => /hashed (\S+) \((\d+) bytes\) in (\d+) ms/.exec(l.line)).filter(Boolean).map(x => `${x[1]} ${x[3]} ms`)
  console.log(`${name}: change → head ${((head.at - start) / 1000).toFixed(3)} s, daemon ${used.toFixed(2)} CPU-s | scan ${(scanMs / 1000).toFixed(3)} s (${stats})` +
    ` | scan end → head ${((head.at - scanned.at) / 1000).toFixed(3)} s${hashed.length > 0 ? ` | hashed ${hashed.join(', ')}` : ''}`)
}

/** One daemon of `tree` with one empty share; the changes of the benchmark, measured. */
async function runTree (tree, pool, n) {
  const { runCli, spawnDaemon } = await import(pathToFileURL(join(tree, 'apps/homecloud/dist/src/child.js')).href)
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
  const env = { DEBUG: 'homecloud:sync*' }
  if (opts['cpu-prof'] != null) env.NODE_OPTIONS = `--cpu-prof --cpu-prof-dir=${join(opts['cpu-prof'], String(n))}`
  lines.length = 0
  daemon = await spawnDaemon(repo, DAEMON_ARGS, { timeoutMs: 60_000, env, onLine })
  try {
    await cli(repo, ['swarm', 'create', 'fam'])
    await cli(repo, ['share', 'add', share, '--swarm', 'fam', '--name', 'data'])
    await logLine(/homecloud:sync:share share data: head/, 0)
    console.log(`${tree}:`)
    await measure('  big file moved in', async () => { await rename(join(stage, 'big'), join(share, 'big')) })
    await measure('  one byte flipped in its middle', async () => {
      const file = await open(join(share, 'big', 'big.bin'), 'r+')
      try {
        const b = Buffer.alloc(1)
        await file.read(b, 0, 1, Math.floor(size / 2))
        b[0] ^= 0xff
        await file.write(b, 0, 1, Math.floor(size / 2))
      } finally {
        await file.close()
      }
    })
    await measure('  the big file renamed', async () => { await rename(join(share, 'big', 'big.bin'), join(share, 'big', 'renamed.bin')) })
    await measure(`  ${count} tiny files moved in`, async () => { await rename(join(stage, 'tiny'), join(share, 'tiny')) })
    await measure('  one tiny file rewritten (a full walk)', async () => { await writeFile(join(share, 'tiny', 'd000', 'f00000.bin'), randomBytes(100)) })
  } finally {
    await daemon.stop('SIGTERM', 60_000)
    daemon = undefined
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
} finally {
  await daemon?.stop('SIGKILL')
  await removeDir(dir)
}
