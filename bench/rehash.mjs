// Re-hash benchmark (issue 5 b, the sending side without a daemon): one file, one run,
// interleaved rounds, best of each at the end (a shared machine is noisy: compare within a run):
//   sha256sum; plain sha256 in node (1 MiB reads); the store's chunker alone (ChunkReader, no
//   index) with this thread's hashing share fixed at 0.25 (as before) and balanced; addPath;
//   store.chunkFile (what the share scanner calls: chunker + index write) of the file indexed
//   by add, after one byte flipped in its middle.
// Usage: node --max-semi-space-size=2 bench/rehash.mjs [size=1G] [rounds=3]
// (the daemon runs with --max-semi-space-size=2: run the script under it too)
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { open } from 'node:fs/promises'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { ChunkReader, MAIN_THREAD_HASH_SHARE, createLevelStore } from '@homecloud/store'
import { MiB, flipMiddleByte, parseSize, removeDir, workDir, writeRandomFile } from './util.mjs'

const size = parseSize(process.argv[2], 1024 * MiB)
const rounds = Number(process.argv[3] ?? 3)
const best = new Map()

async function timed (name, fn) {
  const cpu = process.cpuUsage()
  const start = performance.now()
  await fn()
  const seconds = (performance.now() - start) / 1000
  const used = (process.cpuUsage(cpu).user + process.cpuUsage(cpu).system) / 1e6
  const b = best.get(name)
  if (b === undefined || seconds < b.seconds) best.set(name, { seconds, cpu: used })
  console.log(`  ${name.padEnd(40)} ${seconds.toFixed(3)} s  ${(size / MiB / seconds).toFixed(0).padStart(5)} MiB/s  ${used.toFixed(2)} CPU-s (this process)`)
}

async function plainSha256 (path) {
  const hash = createHash('sha256')
  for await (const piece of createReadStream(path, { highWaterMark: MiB })) hash.update(piece)
  return hash.digest('hex')
}

async function chunkerOnly (reader, path) {
  const handle = await open(path, 'r')
  try {
    for await (const _ of reader.chunks(handle)) { /* drained */ }
  } finally {
    await handle.close()
  }
}

const dir = await workDir('rehash')
try {
  const file = join(dir, 'big.bin')
  await writeRandomFile(file, size)
  execFileSync('sync')
  console.log(`rehash benchmark: ${(size / MiB).toFixed(0)} MiB random file (in page cache), ${rounds} rounds`)
  const fixed = new ChunkReader({ balanceHashShare: false })
  const balanced = new ChunkReader()
  for (let round = 1; round <= rounds; round++) {
    console.log(`round ${round}:`)
    await timed('sha256sum', async () => { execFileSync('sha256sum', [file]) })
    await timed('plain sha256 (node)', () => plainSha256(file))
    await timed(`chunker alone, share ${MAIN_THREAD_HASH_SHARE} fixed`, () => chunkerOnly(fixed, file))
    await timed('chunker alone, balanced', () => chunkerOnly(balanced, file))
    console.log(`    (balanced share now ${balanced.hashShare.toFixed(2)})`)
    const store = await createLevelStore({ path: join(dir, `store-${round}`) })
    try {
      await timed('addPath', () => store.addPath(file))
      await flipMiddleByte(file, size)
      await timed('chunkFile (one byte flipped)', () => store.chunkFile(file))
    } finally {
      await store.close()
      await removeDir(join(dir, `store-${round}`))
    }
  }
  console.log(`best of ${rounds}:`)
  for (const [name, { seconds, cpu }] of best) console.log(`  ${name.padEnd(40)} ${seconds.toFixed(3)} s  ${(size / MiB / seconds).toFixed(0).padStart(5)} MiB/s  ${cpu.toFixed(2)} CPU-s`)
} finally {
  await removeDir(dir)
}
