// Chunking benchmark (issue 3): insert 10 bytes at the start of a large file and
// count the bytes of chunks that are new. Goal: ≤ 2 MiB of new chunks for 1 GiB.
// Also compares candidate min/avg/max on the first 256 MiB to justify the defaults.
// Usage: node bench/chunking.mjs [size=1G] [--no-compare]
import { randomBytes } from 'node:crypto'
import { open } from 'node:fs/promises'
import { join } from 'node:path'
import { ChunkReader, DEFAULT_CHUNKING } from '@homecloud/store'
import { MiB, mb, parseSize, removeDir, workDir, writeRandomFile } from './util.mjs'

const size = parseSize(process.argv.find((a, i) => i > 1 && !a.startsWith('--')), 1024 * MiB)
const compare = !process.argv.includes('--no-compare')
const GOAL = 2 * MiB

async function chunksOf (path, chunking, limit = Infinity) {
  const reader = new ChunkReader({ chunking })
  const handle = await open(path)
  const chunks = []
  const start = performance.now()
  const cpu = process.threadCpuUsage()
  try {
    for await (const c of reader.chunks(handle)) {
      chunks.push({ cid: c.cid.toString(), length: c.length })
      if (c.offset + c.length >= limit) break
    }
  } finally {
    await handle.close()
  }
  const used = process.threadCpuUsage(cpu)
  const bytes = chunks.reduce((n, c) => n + c.length, 0)
  // main-thread CPU (the Gear loop; hashing runs on the worker): robust on a busy machine
  return { chunks, bytes, seconds: (performance.now() - start) / 1000, mainCpu: (used.user + used.system) / 1e6 }
}

function newBytes (before, after) {
  const known = new Set(before.chunks.map(c => c.cid))
  const fresh = after.chunks.filter(c => !known.has(c.cid))
  return { count: fresh.length, bytes: fresh.reduce((n, c) => n + c.length, 0) }
}

/** Copies the first `limit` bytes of `src` to `dst` with `count` 10-byte inserts at evenly spread offsets. */
async function writeWithInserts (src, dst, limit, count) {
  const input = await open(src)
  const output = await open(dst, 'w')
  try {
    const step = Math.floor(limit / count)
    const piece = Buffer.allocUnsafe(step)
    for (let i = 0; i < count; i++) {
      const { bytesRead } = await input.read(piece, 0, step, i * step)
      const cut = Math.floor(step / 3)
      await output.write(piece.subarray(0, cut))
      await output.write(randomBytes(10))
      await output.write(piece.subarray(cut, bytesRead))
    }
  } finally {
    await input.close()
    await output.close()
  }
  return count
}

function describeParams (p) {
  return `${p.min / 1024}K/${p.avg / 1024}K/${p.max / 1024}K`
}

const dir = await workDir('chunking')
try {
  const original = join(dir, 'original.bin')
  const edited = join(dir, 'edited.bin')
  await writeRandomFile(original, size)
  await writeRandomFile(edited, size, { prefix: randomBytes(10), seedFrom: original })

  const before = await chunksOf(original, DEFAULT_CHUNKING)
  const after = await chunksOf(edited, DEFAULT_CHUNKING)
  const fresh = newBytes(before, after)
  const mean = before.bytes / before.chunks.length
  console.log(`chunking benchmark: ${mb(size)} random file, 10 bytes inserted at the start, defaults ${describeParams(DEFAULT_CHUNKING)}`)
  console.log(`chunks: ${before.chunks.length} (mean ${(mean / 1024).toFixed(0)} KiB), chunk+hash ${(size / MiB / before.seconds).toFixed(0)} MiB/s`)
  console.log(`new chunks after the insert: ${fresh.count}, new-chunk bytes: ${fresh.bytes} (${mb(fresh.bytes)}) (goal ≤ ${mb(GOAL)}) ${fresh.bytes <= GOAL ? 'PASS' : 'FAIL'}`)
  process.exitCode = fresh.bytes <= GOAL ? 0 : 1

  if (compare) {
    const sample = Math.min(size, 256 * MiB)
    const scattered = join(dir, 'scattered.bin')
    const inserts = await writeWithInserts(original, scattered, sample, 32)
    console.log(`\ncandidates on the first ${mb(sample)}: new bytes after 10 bytes inserted at the start, and after ${inserts} inserts of 10 bytes scattered` +
      ' (the ideal is one chunk each); chunks/GiB = index entries; main-thread CPU per GiB = the Gear loop; * = default:')
    const candidates = [
      { min: 16 * 1024, avg: 64 * 1024, max: 256 * 1024 },
      { min: 32 * 1024, avg: 128 * 1024, max: 512 * 1024 },
      { min: 64 * 1024, avg: 256 * 1024, max: 1024 * 1024 },
      { min: 96 * 1024, avg: 256 * 1024, max: 1024 * 1024 },
      DEFAULT_CHUNKING,
      { min: 128 * 1024, avg: 512 * 1024, max: 2048 * 1024 }
    ]
    for (const p of candidates) {
      const a = await chunksOf(original, p, sample)
      const b = await chunksOf(edited, p, sample)
      const c = await chunksOf(scattered, p, sample + inserts * 10)
      const f = newBytes(a, b)
      const g = newBytes(a, c)
      const perGiB = Math.round(a.chunks.length * (1024 * MiB) / a.bytes)
      const cpuPerGiB = a.mainCpu * (1024 * MiB) / a.bytes
      const name = describeParams(p) + (p === DEFAULT_CHUNKING ? '*' : '')
      console.log(`  ${name.padEnd(16)} mean ${(a.bytes / a.chunks.length / 1024).toFixed(0).padStart(4)} KiB, ` +
        `${String(perGiB).padStart(6)} chunks/GiB, new: start insert ${mb(f.bytes).padStart(9)}, scattered ${mb(g.bytes).padStart(10)}` +
        ` (${(g.bytes / inserts / 1024).toFixed(0)} KiB/insert), main CPU ${cpuPerGiB.toFixed(2)} s/GiB, ${(a.bytes / MiB / a.seconds).toFixed(0)} MiB/s`)
    }
  }
} finally {
  await removeDir(dir)
}
