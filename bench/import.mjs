// Import benchmark (issue 3): store.addPath() on random data vs plain streaming
// sha256 (node:crypto) of the same file, in the same run. Goal: ratio ≥ 0.7.
// Usage: node bench/import.mjs [size=1G] [rounds=2]
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { join } from 'node:path'
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

const dir = await workDir('import')
try {
  const file = join(dir, 'data.bin')
  await writeRandomFile(file, size)
  console.log(`import benchmark: ${mb(size)} of random data, ${rounds} rounds (file in page cache)`)
  let bestSha = Infinity
  let bestAdd = Infinity
  for (let round = 1; round <= rounds; round++) {
    const sha = await timed(() => plainSha256(file))
    const storeDir = join(dir, `store-${round}`)
    const store = await createLevelStore({ path: storeDir })
    let chunks = 0
    const add = await timed(() => store.addPath(file, {
      onProgress: (evt) => { if (evt.type === 'store:add:progress') chunks++ }
    }))
    const stat = await store.stat()
    await store.close()
    await removeDir(storeDir)
    bestSha = Math.min(bestSha, sha.seconds)
    bestAdd = Math.min(bestAdd, add.seconds)
    console.log(`round ${round}: sha256 ${sha.seconds.toFixed(3)} s (${(size / MiB / sha.seconds).toFixed(0)} MiB/s, ${sha.cpu.toFixed(2)} CPU-s)` +
      ` | addPath ${add.seconds.toFixed(3)} s (${(size / MiB / add.seconds).toFixed(0)} MiB/s, ${add.cpu.toFixed(2)} CPU-s, ${stat.fileChunks} chunks, root ${add.value.toString().slice(0, 16)}…)`)
  }
  const ratio = bestSha / bestAdd
  console.log(`ratio addPath/sha256 throughput (best of ${rounds}): ${ratio.toFixed(3)} (goal ≥ ${GOAL}) ${ratio >= GOAL ? 'PASS' : 'FAIL'}`)
  process.exitCode = ratio >= GOAL ? 0 : 1
} finally {
  await removeDir(dir)
}
