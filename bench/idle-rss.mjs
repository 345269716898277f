// Idle memory of a daemon (issue 5, scenario f: RSS ≤ 100 MiB): two real daemons on
// loopback; RSS of both when fresh and idle, then after A has `add`ed SIZE bytes and B has
// `get` them, after IDLE seconds of nothing. Prints VmRSS (now), VmHWM (peak) and the
// anonymous/file split of /proc/<pid>/smaps_rollup, so a change to the daemon's flags or
// environment can be compared within one run.
//
// The daemons preload bench/lib/memory-report.mjs, so V8's own numbers are printed beside.
// A daemon trims its memory once it has been quiet for 60 s (apps/homecloud/src/idle-trim.ts),
// so IDLE should be more than ~62 s to see it; `--compare-trim` runs the same pair again with
// HOMECLOUD_IDLE_TRIM=off first, so both are measured in one run.
//
// `--share` replaces add + get by a share (issue 5's pattern, cheaper than bench/vs-syncthing and
// without root): A shares a folder with B (bench/vs-syncthing/homecloud.mjs of the tree), then
// writes a SIZE file and --small files of 1–64 KiB, then --tiny files of 1 B–1 KiB, each step
// waited for until B holds every file and both are idle.
//
// Usage: node bench/idle-rss.mjs [SIZE=256M] [--idle-s N=70] [--env NAME=VALUE]... [--node-flags "FLAGS"]
//          [--compare-trim] [--tree DIR]... [--share [--small N=2000] [--tiny N=10000]]
//        --env: extra environment of both daemons (e.g. MALLOC_ARENA_MAX=2), repeatable;
//        NODE_OPTIONS given here is added to the preload.
//        --node-flags: the daemons' Node/V8 flags instead of DAEMON_NODE_FLAGS (apps/homecloud/src/child.ts);
//        with --expose-gc among them, a last reading follows a full GC in each daemon (SIGUSR2).
//        --share: --node-flags does not apply (the pair runs with DAEMON_NODE_FLAGS).
//        --tree DIR: the daemons of another built checkout (its apps/homecloud/dist), e.g. a copy of
//        HEAD, one pair after the other on the same data; repeatable, default this one.
import { randomBytes, randomInt } from 'node:crypto'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { DAEMON_NODE_FLAGS } from '../apps/homecloud/dist/src/child.js'
import { cpuSeconds, DAEMON_ARGS, mib, procStatus } from './lib/devices.mjs'
import { MiB, parseSize, removeDir, until, workDir, writeRandomFile } from './util.mjs'

const args = process.argv.slice(2)
const env = {}
let idleS = 70
let sizeArg
let nodeFlags = DAEMON_NODE_FLAGS
let compareTrim = false
let share = false
let smallCount = 2000
let tinyCount = 10_000
const trees = []
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--idle-s') idleS = Number(args[++i])
  else if (args[i] === '--compare-trim') compareTrim = true
  else if (args[i] === '--share') share = true
  else if (args[i] === '--small') smallCount = Number(args[++i])
  else if (args[i] === '--tiny') tinyCount = Number(args[++i])
  else if (args[i] === '--tree') trees.push(args[++i])
  else if (args[i] === '--node-flags') nodeFlags = args[++i].split(' ').filter(f => f !== '')
  else if (args[i] === '--env') {
    const [name, ...value] = args[++i].split('=')
    env[name] = value.join('=')
  } else sizeArg = args[i]
}
const size = parseSize(sizeArg, 256 * MiB)
for (const [name, n] of [['--small', smallCount], ['--tiny', tinyCount], ['--idle-s', idleS]]) {
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number`)
}
if (trees.length === 0) trees.push(join(import.meta.dirname, '..'))
const memlog = join(await workDir('idle-rss-memlog'), 'memlog')
env.HOMECLOUD_BENCH_MEMLOG = memlog
env.NODE_OPTIONS = `--import ${fileURLToPath(new URL('./lib/memory-report.mjs', import.meta.url))} ${env.NODE_OPTIONS ?? ''}`.trim()

async function rollup (pid) {
  const text = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8')
  const field = name => Number(new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(text)?.[1] ?? 0) * 1024
  return { anon: field('Anonymous'), file: field('Rss') - field('Anonymous') }
}

/** The largest anonymous mappings by RSS ("RSS/size MiB"), to tell malloc arenas, V8 pages and WASM memories apart. */
async function topMappings (pid, count = 10) {
  const text = await readFile(`/proc/${pid}/smaps`, 'utf8')
  const maps = []
  let current
  for (const l of text.split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ (\d+)\s*(.*)$/.exec(l)
    if (head != null) {
      current = { size: parseInt(head[2], 16) - parseInt(head[1], 16), name: head[4] === '0' ? '' : head[5] || head[4], anon: 0 }
      maps.push(current)
    } else if (current != null && l.startsWith('Anonymous:')) current.anon = Number(l.split(/\s+/)[1]) * 1024
  }
  return maps.filter(m => m.anon > 0).sort((x, y) => y.anon - x.anon).slice(0, count)
    .map(m => `${(m.anon / MiB).toFixed(1)}/${(m.size / MiB).toFixed(0)}${m.name === '' ? '' : ' ' + m.name}`).join(', ')
}

async function line (label, device) {
  const [rss, hwm, { anon, file }] = await Promise.all([procStatus(device.pid, 'VmRSS'), procStatus(device.pid, 'VmHWM'), rollup(device.pid)])
  const v8 = JSON.parse(await readFile(`${memlog}.${device.pid}`, 'utf8').catch(() => '{}'))
  const heap = v8.heapTotal == null ? '' : `; V8 heap ${mib(v8.heapUsed)} used of ${mib(v8.heapTotal)}, external ${mib(v8.external)} (ArrayBuffers ${mib(v8.arrayBuffers)}), V8 malloced ${mib(v8.malloced)}${v8.mallocUsed == null ? '' : `; malloc in use ${mib(v8.mallocUsed)}, free in its arenas ${mib(v8.mallocFree)}`}`
  console.log(`${label}: VmRSS ${mib(rss)} (anon ${mib(anon)}, file ${mib(file)}), VmHWM ${mib(hwm)}${heap}`)
  console.log(`  largest anonymous mappings (RSS/size MiB): ${await topMappings(device.pid)}`)
  return rss
}

/** The CLI helpers of `tree`'s build: each tree runs its own daemons. */
async function treeCli (tree) {
  const { runCli, spawnDaemon } = await import(pathToFileURL(join(tree, 'apps/homecloud/dist/src/child.js')).href)
  const cli = async (repo, cliArgs) => {
    const { code, stdout, stderr } = await runCli(['--repo', repo, ...cliArgs], { timeoutMs: 600_000 })
    if (code !== 0) throw new Error(`homecloud ${cliArgs.join(' ')} failed (${code}): ${stderr}`)
    return stdout
  }
  return { cli, spawnDaemon }
}

/** bench/lib/devices.mjs's startDevice, with the daemon's node flags and environment chosen here. */
async function startDevice ({ cli, spawnDaemon }, repo, name, daemonEnv) {
  await cli(repo, ['init', '--name', name])
  const daemon = await spawnDaemon(repo, DAEMON_ARGS, { env: daemonEnv, nodeFlags, timeoutMs: 60_000 })
  const id = JSON.parse(await cli(repo, ['id', '--json']))
  const first = id.addresses[0]
  return { repo, daemon, pid: daemon.child.pid, address: first.includes('/p2p/') ? first : `${first}/p2p/${id.peerId}` }
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
const dir = await workDir('idle-rss')
const devices = []
const summary = []

/** One pair of daemons of `tree`: fresh, then after add + get of `file`. */
async function runPair (tree, label, daemonEnv, file) {
  const tools = await treeCli(tree)
  const pairDir = join(dir, `pair-${summary.length}`)
  console.log(`\n${label}: ${tree}, env ${JSON.stringify(daemonEnv)}`)
  const a = await startDevice(tools, join(pairDir, 'a'), 'idle-a', daemonEnv)
  devices.push(a)
  const b = await startDevice(tools, join(pairDir, 'b'), 'idle-b', daemonEnv)
  devices.push(b)
  await sleep(idleS * 1000)
  const row = { label, fresh: [await line('fresh A', a), await line('fresh B', b)] }
  const added = JSON.parse(await tools.cli(a.repo, ['add', file, '--json']))
  const [cpuA, cpuB] = [await cpuSeconds(a.pid), await cpuSeconds(b.pid)]
  const started = performance.now()
  await tools.cli(b.repo, ['get', added.cid, join(pairDir, 'out.bin'), '--from', a.address, '--json'])
  const seconds = (performance.now() - started) / 1000
  const perGB = async device => ((await cpuSeconds(device.pid) - (device === a ? cpuA : cpuB)) / (size / 1e9)).toFixed(2)
  console.log(`get: ${(size / seconds / 1e6).toFixed(1)} MB/s, CPU-s/GB A ${await perGB(a)}, B ${await perGB(b)}`)
  await sleep(idleS * 1000)
  row.after = [await line(`A after add, idle ${idleS} s`, a), await line(`B after get, idle ${idleS} s`, b)]
  if (nodeFlags.includes('--expose-gc')) {
    for (const device of [a, b]) process.kill(device.pid, 'SIGUSR2')
    await sleep(2000)
    await line('A after a full GC', a)
    await line('B after a full GC', b)
  }
  for (const device of [a, b]) {
    await device.daemon.stop('SIGTERM')
    devices.splice(devices.indexOf(device), 1)
  }
  await removeDir(pairDir)
  summary.push(row)
}

/** Files under `root` (recursive), temp files of an apply included. */
async function countFiles (root) {
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => [])
  return entries.filter(e => e.isFile()).length
}

/** `count` random files of sizes in [min, max] bytes, 100 to a folder. */
async function writeSmallFiles (root, folder, count, min, max) {
  for (let i = 0; i < count; i++) {
    if (i % 100 === 0) await mkdir(join(root, folder, String(i / 100)), { recursive: true })
    await writeFile(join(root, folder, String(Math.floor(i / 100)), `f${i}`), randomBytes(randomInt(min, max + 1)))
  }
}

/** One share pair of `tree`: fresh, then after the share's big file, small files and tiny files reached B. */
async function runSharePair (tree, label, daemonEnv) {
  const { startHomecloudPair } = await import(pathToFileURL(join(tree, 'bench/vs-syncthing/homecloud.mjs')).href)
  const pairDir = join(dir, `pair-${summary.length}`)
  console.log(`\n${label} (share): ${tree}, env ${JSON.stringify(daemonEnv)}`)
  // the pair's daemons (and CLI calls) take this process's environment
  const saved = { ...process.env }
  Object.assign(process.env, daemonEnv)
  let sys
  try {
    sys = await startHomecloudPair({ dir: pairDir, track: () => {} })
  } finally {
    for (const name of Object.keys(daemonEnv)) {
      if (saved[name] === undefined) delete process.env[name]
      else process.env[name] = saved[name]
    }
  }
  const pair = [sys.a, sys.b]
  devices.push(...pair)
  await sleep(idleS * 1000)
  const row = { label, fresh: [await line('fresh A', sys.a), await line('fresh B', sys.b)] }
  const reached = async (what, expected) => {
    const started = performance.now()
    await until(`B holds ${what}`, async () => await countFiles(sys.b.share) === expected, 30 * 60_000)
    await sys.waitIdle(30 * 60_000)
    console.log(`${what}: on B after ${((performance.now() - started) / 1000).toFixed(1)} s`)
  }
  await writeRandomFile(join(sys.a.share, 'big.bin'), size)
  await writeSmallFiles(sys.a.share, 'small', smallCount, 1024, 64 * 1024)
  await reached(`the ${mib(size)} file and ${smallCount} small files`, 1 + smallCount)
  await writeSmallFiles(sys.a.share, 'tiny', tinyCount, 1, 1024)
  await reached(`${tinyCount} tiny files`, 1 + smallCount + tinyCount)
  await sleep(idleS * 1000)
  row.after = [await line(`A after sharing, idle ${idleS} s`, sys.a), await line(`B after sharing, idle ${idleS} s`, sys.b)]
  await sys.stop()
  for (const device of pair) devices.splice(devices.indexOf(device), 1)
  await removeDir(pairDir)
  summary.push(row)
}

try {
  console.log(`idle-rss: ${mib(size)}, idle ${idleS} s, node flags ${nodeFlags.join(' ')}, env ${JSON.stringify(env)}`)
  const file = join(dir, 'data.bin')
  if (!share) await writeRandomFile(file, size)
  for (const [t, tree] of trees.entries()) {
    const name = trees.length > 1 ? `tree ${t + 1}` : 'this tree'
    const run = share ? async (label, runEnv) => runSharePair(tree, label, runEnv) : async (label, runEnv) => runPair(tree, label, runEnv, file)
    if (compareTrim) await run(`${name}, trim off`, { ...env, HOMECLOUD_IDLE_TRIM: 'off' })
    await run(compareTrim ? `${name}, trim on` : name, env)
  }
  console.log(`\nVmRSS after ${idleS} s idle (goal ≤ 100 MiB)`)
  console.log('run'.padEnd(28) + 'fresh A / B'.padEnd(22) + (share ? 'after sharing A / B' : 'after add / get'))
  for (const row of summary) {
    console.log(row.label.padEnd(28) + row.fresh.map(mib).join(' / ').padEnd(22) + row.after.map(mib).join(' / '))
  }
} finally {
  for (const device of devices) await device.daemon.stop('SIGTERM')
  await removeDir(dir)
  await removeDir(dirname(memlog))
}
