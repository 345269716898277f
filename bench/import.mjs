// Import benchmark (issue 3), in the same run on the same file of random data:
//   (a) plain streaming sha256 (node:crypto), the baseline;
//   (b) store.addPath() in this process (the engine alone);
//   (c) `homecloud add FILE` through a running daemon (`homecloud start`, DHT off):
//       what a user runs, CLI process start and control API included.
// Goal (issue 3): ratio (c) / (a) ≥ 0.7 (throughput; best of the rounds).
// Usage: node bench/import.mjs [size=1G] [rounds=2]
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { join } from 'node:path'
import { runCli, spawnDaemon } from '../apps/homecloud/dist/src/child.js'
import { createLevelStore } from '@homecloud/store'
import { MiB, mb, parseSize, removeDir, workDir, writeRandomFile } from './util.mjs'

const size = parseSize(process.argv[2], 1024 * MiB)
const rounds = Number(process.argv[3] ?? 2)
const GOAL = 0.7

async function plainSha256 (path) {
  const hash = createHash('sha256')
  // the same 1 MiB reads the store makes
  for await (const piece of createReadStream(path, { highWaterMark: MiB })) hash.update(piece)
  return hash.digest('hex')
}

async function timed (fn) {
  const cpu = process.cpuUsage()
  const start = performance.now()
  const value = await fn()
  const seconds = (performance.now() - start) / 1000
  const used = process.cpuUsage(cpu)
  return { value, seconds, cpu: (used.user + used.system) / 1e6 }
}

/** `homecloud add` of `file` through the daemon of `repo`: wall time, the daemon's CPU not included. */
async function cliAdd (repo, file) {
  const start = performance.now()
  const { code, stdout, stderr } = await runCli(['--repo', repo, 'add', file, '--json'], { timeoutMs: 3_600_000 })
  if (code !== 0) throw new Error(`homecloud add failed: ${stderr}`)
  return { value: JSON.parse(stdout), seconds: (performance.now() - start) / 1000 }
}

const dir = await workDir('import')
let daemon
try {
  const file = join(dir, 'data.bin')
  await writeRandomFile(file, size)
  const repo = join(dir, 'repo')
  const init = await runCli(['--repo', repo, 'init', '--name', 'bench'])
  if (init.code !== 0) throw new Error(init.stderr)
  daemon = await spawnDaemon(repo, ['--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0', '--no-mdns', '--no-upnp', '--dht', 'off'])
  console.log(`import benchmark: ${mb(size)} of random data, ${rounds} rounds (file in page cache)`)
  let bestSha = Infinity
  let bestAdd = Infinity
  let bestCli = Infinity
  for (let round = 1; round <= rounds; round++) {
    const sha = await timed(() => plainSha256(file))
    const storeDir = join(dir, `store-${round}`)
    const store = await createLevelStore({ path: storeDir })
    const add = await timed(() => store.addPath(file))
    const stat = await store.stat()
    await store.close()
    await removeDir(storeDir)
    const cli = await cliAdd(repo, file)
    if (cli.value.cid !== add.value.toString()) throw new Error(`homecloud add gave ${cli.value.cid}, addPath ${add.value}`)
    bestSha = Math.min(bestSha, sha.seconds)
    bestAdd = Math.min(bestAdd, add.seconds)
    bestCli = Math.min(bestCli, cli.seconds)
    console.log(`round ${round}: sha256 ${sha.seconds.toFixed(3)} s (${(size / MiB / sha.seconds).toFixed(0)} MiB/s, ${sha.cpu.toFixed(2)} CPU-s)` +
      ` | addPath ${add.seconds.toFixed(3)} s (${(size / MiB / add.seconds).toFixed(0)} MiB/s, ${add.cpu.toFixed(2)} CPU-s, ${stat.fileChunks} chunks, root ${add.value.toString().slice(0, 16)}…)` +
      ` | homecloud add ${cli.seconds.toFixed(3)} s (${(size / MiB / cli.seconds).toFixed(0)} MiB/s)`)
  }
  const engine = bestSha / bestAdd
  const ratio = bestSha / bestCli
  console.log(`ratio addPath/sha256 throughput (best of ${rounds}): ${engine.toFixed(3)}`)
  console.log(`ratio homecloud add/sha256 throughput (best of ${rounds}): ${ratio.toFixed(3)} (goal ≥ ${GOAL}) ${ratio >= GOAL ? 'PASS' : 'FAIL'}`)
  process.exitCode = ratio >= GOAL ? 0 : 1
} finally {
  await daemon?.stop('SIGTERM')
  await removeDir(dir)
}
