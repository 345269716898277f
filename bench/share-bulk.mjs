// Scenario a of issue 5 in isolation: two real Home Cloud daemons on loopback (the
// vs-syncthing pair: CLI setup, private swarm, share add/accept), a big random file plus
// N small files moved into A's share in one rename, and the time until B's tree is
// byte-identical. Prints the phases read from the daemons' debug logs (scan, head,
// pull: snapshot, plan, apply batches) and each daemon's CPU seconds. No root needed.
//
//   node bench/share-bulk.mjs [--size 256M] [--small 2000] [--keep] [--debug SCOPES] [--cpu-prof DIR]
import { cp, readFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { MiB, parseSize, workDir } from './util.mjs'
import { makePool } from './vs-syncthing/scenarios.mjs'
import { startHomecloudPair } from './vs-syncthing/homecloud.mjs'
import { treeHasher, watchTree } from './vs-syncthing/tree.mjs'

const { values: opts } = parseArgs({
  options: {
    size: { type: 'string' },
    small: { type: 'string' },
    keep: { type: 'boolean' },
    debug: { type: 'string' },
    'cpu-prof': { type: 'string' }
  }
})
const size = parseSize(opts.size, 256 * MiB)
const smallCount = Number(opts.small ?? 2000)
const debug = opts.debug ?? 'homecloud:sync*,homecloud:exchange*'

const dir = await workDir('share-bulk')
// V8 CPU profiles of every node process started from here (the daemons write theirs when they exit)
if (opts['cpu-prof'] != null) process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --cpu-prof --cpu-prof-dir=${opts['cpu-prof']}`
const children = new Set()
process.on('exit', () => {
  for (const c of children) if (c.exitCode == null) try { process.kill(c.pid, 'SIGKILL') } catch {}
})

/** utime + stime of a process in seconds, from /proc/<pid>/stat. */
async function cpuSeconds (pid) {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100 // USER_HZ is 100 on Linux
}

let system
try {
  const pool = join(dir, 'pool')
  console.log(`making ${size / MiB} MiB + ${smallCount} small files...`)
  await makePool(pool, { size, smallCount, renameSize: 1, tinyCount: 1 })
  system = await startHomecloudPair({ dir, track: c => children.add(c), debug })
  const { a, b } = system
  await cp(join(pool, 'a'), join(a.stage, 'a'), { recursive: true })
  const expected = new Map()
  for (const [path, v] of await treeHasher(join(a.stage))()) expected.set(path, v)
  const watch = watchTree(b.share)
  await watch.refresh()
  const cpu0 = [await cpuSeconds(a.pid), await cpuSeconds(b.pid)]
  const t0 = performance.now()
  const wall0 = Date.now()
  await rename(join(a.stage, 'a'), join(a.share, 'a'))
  const res = await watch.wait(expected, { t0, timeoutMs: 30 * 60_000 })
  const cpu1 = [await cpuSeconds(a.pid), await cpuSeconds(b.pid)]
  if (res.timedOut) throw new Error(`B not identical: missing ${res.missing?.length}, extra ${res.extra?.length}`)
  console.log(`B identical after ${(res.ms / 1000).toFixed(2)} s`)
  console.log(`CPU-s during the change: A ${(cpu1[0] - cpu0[0]).toFixed(2)}, B ${(cpu1[1] - cpu0[1]).toFixed(2)} (pids ${a.pid}, ${b.pid})`)
  await system.stop()
  system = null
  for (const dev of ['hc-a', 'hc-b']) {
    console.log(`--- ${dev} (ms since the rename)`)
    const text = await readFile(join(dir, `${dev}.log`), 'utf8')
    for (const line of text.split('\n')) {
      const m = /^(\d{4}-\d\d-\d\dT[\d:.]+Z) (\S+) (.*)$/.exec(line)
      if (m == null) continue
      const t = Date.parse(m[1]) - wall0
      if (t < -50) continue
      if (/fetched|dropping|stalled|scanned|hashed|head|pull|batch|fetch|renamed|failed/.test(m[3])) console.log(`${String(t).padStart(7)} ${m[2]} ${m[3].slice(0, 200)}`)
    }
  }
} finally {
  if (system != null) await system.stop().catch(() => {})
  if (opts.keep) console.log(`kept ${dir}`)
  else await rm(dir, { recursive: true, force: true })
}
