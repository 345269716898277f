// Snapshot encoding cost per head (issue 5: every head re-encoded the whole share).
// 1) A full encoding: a share of COUNT small files and one SIZE file, encoded ROUNDS times;
//    this tree against other built checkouts in the same process (--tree DIR, e.g. a copy of HEAD).
// 2) Heads as files arrive (--arrive N tiny files in bursts of --burst B, after the share above):
//    a head after each burst, built the old way (a full encoding of `shareEntries()`, every
//    block returned) and by `LocalIndex.encodeSnapshot` (pages reused, only new blocks
//    returned), interleaved on two indexes of the same entries: time and bytes allocated
//    per head (v8 GC profiler: heap growth between collections).
// Usage: node --max-semi-space-size=2 bench/snapshot-encode.mjs [count=2000] [size=1G] [rounds=8] [--tree DIR] [--arrive 10000] [--burst 100]
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { pathToFileURL } from 'node:url'
import { GCProfiler, getHeapStatistics } from 'node:v8'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { mb, parseSize } from './util.mjs'

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: { tree: { type: 'string', multiple: true }, arrive: { type: 'string', default: '10000' }, burst: { type: 'string', default: '100' } }
})
const count = Number(positionals[0] ?? 2000)
const size = parseSize(positionals[1], 1024 * 1024 * 1024)
const rounds = Number(positionals[2] ?? 8)
const arrive = Number(opts.arrive)
const burst = Number(opts.burst)
const trees = [join(import.meta.dirname, '..'), ...(opts.tree ?? [])]
const cid = async () => CID.createV1(raw.code, await sha256.digest(randomBytes(32)))
const DEV = '12D3KooWDeviceDeviceDeviceDeviceDeviceDeviceDeviceDevi'
const entries = []
for (let i = 0; i < count; i++) {
  entries.push({ path: `a/small/d${String(Math.floor(i / 100)).padStart(3, '0')}/f${String(i).padStart(5, '0')}.bin`, type: 'file', size: 30_000, mtime: 1_700_000_000_000 + i, mode: 0o644, version: { [DEV]: 3 }, modifiedBy: DEV, chunks: [{ cid: await cid(), length: 30_000 }] })
}
const chunks = []
for (let left = size; left > 0; left -= 311_000) chunks.push({ cid: await cid(), length: Math.min(left, 311_000) })
entries.push({ path: 'a/big.bin', type: 'file', size, mtime: 1_700_000_000_000, mode: 0o644, version: { [DEV]: 3 }, modifiedBy: DEV, chunks })
const encoders = await Promise.all(trees.map(async t => (await import(pathToFileURL(join(t, 'packages/sync/dist/src/snapshot.js')).href)).encodeSnapshot))
console.log(`snapshot encoding: ${count} small files + one file of ${chunks.length} chunks, ${rounds} rounds (interleaved, best and median)`)
const times = trees.map(() => [])
let root
for (let r = 0; r < rounds; r++) {
  for (const [i, encode] of encoders.entries()) {
    const t = performance.now()
    const s = await encode(entries)
    times[i].push(performance.now() - t)
    if (root !== undefined && !s.root.equals(root)) throw new Error(`${trees[i]} encodes another root`)
    root = s.root
  }
}
const stats = (t) => {
  const s = [...t].sort((a, b) => a - b)
  return { best: s[0], median: s[Math.floor(s.length / 2)], total: s.reduce((a, b) => a + b, 0) }
}
for (const [i, t] of times.entries()) {
  const s = stats(t)
  console.log(`  ${trees[i]}: best ${s.best.toFixed(1)} ms, median ${s.median.toFixed(1)} ms`)
}

if (arrive > 0) {
  const dist = join(trees[0], 'packages/sync/dist/src')
  const { LocalIndex } = await import(pathToFileURL(join(dist, 'local-index.js')).href)
  const { ShareRecords } = await import(pathToFileURL(join(dist, 'share-state.js')).href)
  const { MemoryShareKv } = await import(pathToFileURL(join(dist, 'share-kv.js')).href)
  const { encodeSnapshot } = await import(pathToFileURL(join(dist, 'snapshot.js')).href)
  const full = await LocalIndex.load('s', new ShareRecords(new MemoryShareKv()))
  const incremental = await LocalIndex.load('s', new ShareRecords(new MemoryShareKv()))
  await full.set(entries)
  await incremental.set(entries)
  const stored = new Set()
  await incremental.encodeSnapshot(() => false).then(s => { for (const c of s.cids) stored.add(c.toString()) })

  /** Runs `fn`, giving its time and the bytes it allocated (heap growth between collections). */
  const measured = async (fn) => {
    const profiler = new GCProfiler()
    profiler.start()
    let last = getHeapStatistics().used_heap_size
    const t = performance.now()
    const value = await fn()
    const ms = performance.now() - t
    const end = getHeapStatistics().used_heap_size
    let allocated = 0
    for (const gc of profiler.stop()?.statistics ?? []) {
      allocated += gc.beforeGC.heapStatistics.usedHeapSize - last
      last = gc.afterGC.heapStatistics.usedHeapSize
    }
    return { value, ms, allocated: allocated + end - last }
  }
  const sums = { full: { ms: [], allocated: 0, blocks: 0 }, incremental: { ms: [], allocated: 0, blocks: 0 } }
  for (let done = 0; done < arrive; done += burst) {
    const batch = []
    for (let i = done; i < Math.min(arrive, done + burst); i++) {
      batch.push({ path: `b/tiny/d${String(Math.floor(i / 200)).padStart(3, '0')}/t${String(i).padStart(5, '0')}.txt`, type: 'file', size: 10, mtime: 1_700_000_100_000 + i, mode: 0o644, version: { [DEV]: 1 }, modifiedBy: DEV, chunks: [{ cid: await cid(), length: 10 }] })
    }
    await full.set(batch)
    await incremental.set(batch)
    const a = await measured(async () => encodeSnapshot(full.shareEntries()))
    const b = await measured(async () => incremental.encodeSnapshot(c => stored.has(c.toString())))
    if (!a.value.root.equals(b.value.root)) throw new Error('the incremental encoding gives another root')
    for (const c of b.value.cids) stored.add(c.toString())
    for (const [name, m, blocks] of [['full', a, a.value.blocks.length], ['incremental', b, b.value.blocks.length]]) {
      sums[name].ms.push(m.ms)
      sums[name].allocated += m.allocated
      sums[name].blocks += blocks
    }
  }
  const heads = Math.ceil(arrive / burst)
  console.log(`heads as ${arrive} tiny files arrive in bursts of ${burst} (${heads} heads, share of ${count + 1} files before, interleaved):`)
  for (const [name, s] of Object.entries(sums)) {
    const t = stats(s.ms)
    console.log(`  ${name.padEnd(11)}: total ${t.total.toFixed(0)} ms, median ${t.median.toFixed(1)} ms/head, allocated ${mb(s.allocated)} (${mb(s.allocated / heads)}/head), blocks returned ${s.blocks}`)
  }
}
