// `homecloud get` between two real daemons on loopback (issue 3), in the same run:
//   (a) a plain libp2p stream pushing N bytes between two processes (bench/fetch.mjs's
//       baseline: tcp+noise+yamux, nothing else);
//   (b) device A (`homecloud start`) has `add`ed N bytes of random data; device B, a fresh
//       daemon each round, runs `homecloud get CID OUT --from A`: DAG nodes, then every
//       chunk read from A's file (re-hashed there), sent, hashed on B, written to the
//       partial output, fsynced, renamed, indexed. Wall time of the CLI command.
// Prints both throughputs, the ratio b/a (goal >= 0.8) and the fetching daemon's peak
// RSS (VmHWM from /proc/<pid>/status; the memory goal is <= 250 MiB, see memory.mjs).
//
// Usage: node bench/get.mjs [SIZE=1G] [--rounds N=2] [--no-baseline] [--cpu-prof DIR]
//        [--node-options "OPTIONS"] [--daemon-flags "FLAGS"]
//        --cpu-prof DIR: V8 CPU profiles of the daemons into DIR (written when they exit).
//        --node-options: NODE_OPTIONS of both daemons (e.g. "--max-semi-space-size=1"); flags on
//          the daemon's command line (DAEMON_NODE_FLAGS) win over these.
//        --daemon-flags: Node/V8 flags of both daemons instead of the app's DAEMON_NODE_FLAGS
//          (printed first; the baseline always runs at V8 defaults).
//        --no-baseline: only (b) (memory.mjs uses this); the output is checked by sha256.
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { DAEMON_NODE_FLAGS } from '../apps/homecloud/dist/src/child.js'
import { plainStreamRates } from './fetch.mjs'
import { add, cpuSeconds, ensureSpace, get, mib, rssCurve, rssSampler, startDevice, threadCpu } from './lib/devices.mjs'
import { MiB, parseSize, removeDir, workDir, writeRandomFile } from './util.mjs'

export const RATIO_GOAL = 0.8
export const RSS_GOAL = 250 * MiB

async function sha256File (path) {
  const hash = createHash('sha256')
  for await (const piece of createReadStream(path, { highWaterMark: 4 * MiB })) hash.update(piece)
  return hash.digest('hex')
}

/** CPU used per thread name between two `threadCpu` readings, per GB moved. */
function threadLine (before, after, gb) {
  return Object.entries(after)
    .map(([name, cpu]) => [name, cpu - (before[name] ?? 0)])
    .filter(([, cpu]) => cpu >= 0.05)
    .sort((x, y) => y[1] - x[1])
    .map(([name, cpu]) => `${name} ${(cpu / gb).toFixed(2)}`).join(', ')
}

const rate = (bytes, seconds) => `${(bytes / seconds / 1e6).toFixed(1)} MB/s`

/**
 * Runs the benchmark; returns { plain: [bytes/s], get: [{ rate, hwm, maxRss }] }.
 * `baseline: false` skips (a).
 */
export async function runGetBenchmark ({ size, rounds = 2, baseline = true, label = 'get', env, nodeFlags }) {
  const dir = await workDir(label)
  const devices = []
  try {
    // A's file, B's output (one round at a time) and slack for the repos
    const free = await ensureSpace(dir, 2 * size + 512 * MiB)
    console.log(`${label}: ${mib(size)} of random data, ${rounds} round(s); ${mib(free)} free in ${dir}`)
    console.log(`daemon flags: ${(nodeFlags ?? DAEMON_NODE_FLAGS).join(' ') || '(none)'}${env?.NODE_OPTIONS != null ? `, NODE_OPTIONS ${env.NODE_OPTIONS}` : ''}`)
    const file = join(dir, 'data.bin')
    await writeRandomFile(file, size)
    const want = await sha256File(file)
    const a = await startDevice(join(dir, 'a'), 'bench-a', { env, nodeFlags })
    devices.push(a)
    let t = performance.now()
    const added = await add(a, file)
    console.log(`A added ${added.cid} in ${((performance.now() - t) / 1000).toFixed(1)} s`)

    const perGB = cpu => (cpu / (size / 1e9)).toFixed(2)
    const result = { plain: [], get: [] }
    for (let round = 1; round <= rounds; round++) {
      let line = `round ${round}:`
      if (baseline) {
        const [plain] = await plainStreamRates(size, 1)
        result.plain.push(plain.rate)
        line += ` (a) plain stream ${(plain.rate / 1e6).toFixed(1)} MB/s (CPU-s/GB sender ${perGB(plain.senderCpu)}, receiver ${perGB(plain.receiverCpu)}) |`
      }
      const b = await startDevice(join(dir, `b${round}`), `bench-b${round}`, { env, nodeFlags })
      devices.push(b)
      const output = join(dir, `out${round}.bin`)
      const sampler = rssSampler(b.pid)
      const cpuA = await cpuSeconds(a.pid)
      const cpuB = await cpuSeconds(b.pid)
      const threadsA = await threadCpu(a.pid)
      const threadsB = await threadCpu(b.pid)
      t = performance.now()
      const { answer, seconds } = await get(b, added.cid, output, a)
      const usedA = await cpuSeconds(a.pid) - cpuA
      const usedB = await cpuSeconds(b.pid) - cpuB
      const { hwm, maxRss, samples } = await sampler.stop()
      if (answer.bytes !== size || answer.receivedBytes !== size) throw new Error(`get moved ${answer.receivedBytes} of ${size} bytes`)
      if (await sha256File(output) !== want) throw new Error('the output differs from the input')
      result.get.push({ rate: size / seconds, hwm, maxRss })
      line += ` (b) homecloud get ${rate(size, seconds)} (${seconds.toFixed(1)} s; CPU-s/GB A ${perGB(usedA)}, B ${perGB(usedB)})` +
        ` | B peak RSS ${mib(hwm)} (VmHWM), highest sample ${mib(maxRss)}`
      console.log(line)
      console.log(`  B RSS (s:MiB): ${rssCurve(samples)}`)
      console.log(`  CPU-s/GB by thread: A ${threadLine(threadsA, await threadCpu(a.pid), size / 1e9)}; B ${threadLine(threadsB, await threadCpu(b.pid), size / 1e9)}`)
      await b.daemon.stop('SIGTERM')
      devices.pop()
      await removeDir(b.repo)
      await removeDir(output)
    }

    const best = xs => Math.max(...xs)
    const bestGet = best(result.get.map(g => g.rate))
    const peak = best(result.get.map(g => g.hwm))
    console.log(`\n${mib(size)}, two daemons on loopback (tcp+noise+yamux), best of ${rounds}`)
    if (baseline) {
      const bestPlain = best(result.plain)
      const ratio = bestGet / bestPlain
      console.log(`(a) plain libp2p stream: ${(bestPlain / 1e6).toFixed(1)} MB/s`)
      console.log(`(b) homecloud get:       ${(bestGet / 1e6).toFixed(1)} MB/s`)
      console.log(`ratio b/a: ${ratio.toFixed(2)} (goal >= ${RATIO_GOAL}) ${ratio >= RATIO_GOAL ? 'PASS' : 'FAIL'}`)
      result.ratio = ratio
    } else {
      console.log(`homecloud get: ${(bestGet / 1e6).toFixed(1)} MB/s`)
    }
    console.log(`fetching daemon peak RSS (VmHWM): ${mib(peak)} (goal <= ${mib(RSS_GOAL)}) ${peak <= RSS_GOAL ? 'PASS' : 'FAIL'}`)
    result.peak = peak
    return result
  } finally {
    for (const device of devices) await device.daemon.stop('SIGTERM')
    await removeDir(dir)
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2)
  const roundsAt = args.indexOf('--rounds')
  const profAt = args.indexOf('--cpu-prof')
  const nodeOptionsAt = args.indexOf('--node-options')
  const flagsAt = args.indexOf('--daemon-flags')
  const values = new Set([roundsAt, profAt, nodeOptionsAt, flagsAt].filter(i => i >= 0).map(i => i + 1))
  const nodeOptions = [
    ...(profAt >= 0 ? [`--cpu-prof --cpu-prof-dir=${args[profAt + 1]}`] : []),
    ...(nodeOptionsAt >= 0 ? [args[nodeOptionsAt + 1]] : [])
  ]
  const sizeArg = args.find((arg, i) => !arg.startsWith('--') && !values.has(i))
  const result = await runGetBenchmark({
    size: parseSize(sizeArg, 1024 * MiB),
    rounds: roundsAt >= 0 ? Number(args[roundsAt + 1]) : 2,
    baseline: !args.includes('--no-baseline'),
    env: nodeOptions.length > 0 ? { NODE_OPTIONS: nodeOptions.join(' ') } : undefined,
    nodeFlags: flagsAt >= 0 ? args[flagsAt + 1].split(' ').filter(flag => flag !== '') : undefined
  })
  process.exitCode = (result.ratio ?? 1) >= RATIO_GOAL && result.peak <= RSS_GOAL ? 0 : 1
}
