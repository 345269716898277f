// Live V8 heap per indexed file of a share (issue 5 f: an idle daemon ≤ 100 MiB RSS while it
// holds a share of ~12,000 files). No daemon: the share's local index in a real LevelDB,
// shaped like bench/vs-syncthing's share (TINY files of ≤ 1 KiB, SMALL files of 1–64 KiB,
// one BIG file of ~300 KiB chunks). Measured after a forced GC, three ways:
//   loaded:  LocalIndex.load of the stored entries (a restarted daemon), then every chunk
//            asked for with hasChunk (the serve policy) and one snapshot encoded (a head)
//   pulled:  a fresh index filled from the snapshot as a receiver reads it (readSnapshot,
//            then index.set: what a daemon that pulled the share holds)
// `--top N` also writes a heap snapshot of the pulled state and prints the N largest
// constructors by self size (what dominates).
//
// Usage: node --expose-gc bench/share-heap.mjs [--tiny N=10000] [--small N=2000] [--big-mib N=1024] [--top N]
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import v8 from 'node:v8'
import { readFileSync } from 'node:fs'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { LevelShareKv, encodeSnapshot, readSnapshot } from '../packages/sync/dist/src/index.js'
import { LocalIndex } from '../packages/sync/dist/src/local-index.js'
import { ShareRecords, encodeEntry, shareKeys } from '../packages/sync/dist/src/share-state.js'

if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc')
const { values } = parseArgs({ options: { tiny: { type: 'string' }, small: { type: 'string' }, 'big-mib': { type: 'string' }, top: { type: 'string' } } })
const tinyCount = Number(values.tiny ?? 10_000)
const smallCount = Number(values.small ?? 2000)
const bigMiB = Number(values['big-mib'] ?? 1024)
const KiB = 1024
const AVG_CHUNK = 300 * KiB
const SHARE = 'bench-share'

const devices = await Promise.all([0, 1].map(async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()))
let n = 0
const chunk = async length => ({ cid: CID.createV1(raw.code, await sha256.digest(new TextEncoder().encode(`chunk ${n++}`))), length })
const vv = i => ({ [devices[i % 2]]: 1 + (i % 3) })
const dir = (path, i) => ({ path, type: 'dir', size: 0, mtime: 1_764_000_000_123 + i, mode: 0o755, version: vv(i), modifiedBy: devices[i % 2], local: { ino: 1000 + i, mtimeMs: 1_764_000_000_123.25 + i } })
async function file (path, size, i) {
  const chunks = []
  for (let left = size; left > 0; left -= AVG_CHUNK) chunks.push(await chunk(Math.min(left, AVG_CHUNK)))
  return { ...dir(path, i), type: 'file', size, mode: 0o644, chunks }
}

async function generate () {
  const entries = [dir('a', 0), dir('a/small', 1), dir('e', 2), await file('a/big.bin', bigMiB * 1024 * KiB, 3)]
  for (let i = 0; i < smallCount; i++) {
    const folder = `a/small/d${String(Math.floor(i / 100)).padStart(3, '0')}`
    if (i % 100 === 0) entries.push(dir(folder, i))
    entries.push(await file(`${folder}/f${String(i).padStart(5, '0')}.bin`, KiB + ((i * 7919) % (63 * KiB)), i))
  }
  for (let i = 0; i < tinyCount; i++) {
    const folder = `e/d${String(Math.floor(i / 100)).padStart(3, '0')}`
    if (i % 100 === 0) entries.push(dir(folder, i))
    entries.push(await file(`${folder}/f${String(i).padStart(5, '0')}.bin`, 1 + (i % KiB), i))
  }
  return entries
}

/** After full GCs with a pause between them (sweeping finishes off the main thread; heapUsed counts unswept garbage). */
async function heap () {
  for (let i = 0; i < 4; i++) {
    globalThis.gc()
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  const m = process.memoryUsage()
  return { used: m.heapUsed, external: m.external + m.arrayBuffers }
}

const dirPath = await mkdtemp(join(tmpdir(), 'share-heap-'))
const MiB = 1024 * 1024
const rows = []
try {
  const kv = await LevelShareKv.open(join(dirPath, 'db'))
  const records = new ShareRecords(kv)
  let entries = await generate()
  const fileCount = entries.length
  for (let i = 0; i < entries.length; i += 1000) {
    await kv.batch(entries.slice(i, i + 1000).map(e => ({ type: 'put', key: shareKeys.entry(SHARE, e.path), value: encodeEntry(e) })))
  }
  const snapshot = await encodeSnapshot(entries)
  const held = new Map(snapshot.blocks.map(b => [b.cid.toString(), b.bytes]))
  const blocks = { get: async cid => held.get(cid.toString()) }
  const chunkCids = entries.flatMap(e => e.chunks?.map(c => c.cid) ?? [])
  entries = undefined

  const measure = async (label, build) => {
    const before = await heap()
    const keep = await build()
    const after = await heap()
    rows.push({ label, heap: after.used - before.used, external: after.external - before.external })
    return keep
  }
  // each state is built twice and the second measured: the first also compiles code
  const loaded = () => measure('loaded', async () => {
    const index = await LocalIndex.load(SHARE, records)
    for (const cid of chunkCids) if (!index.hasChunk(cid)) throw new Error('chunk missing')
    await encodeSnapshot(index.shareEntries())
    return index
  })
  let pulls = 0
  const pulled = () => measure('pulled', async () => {
    const fresh = await LocalIndex.load(`${SHARE}-pulled${pulls++}`, records)
    const batch = []
    for await (const e of readSnapshot(snapshot.root, blocks)) {
      batch.push({ ...e, local: { ino: 1, mtimeMs: e.mtime + 0.25 } })
      if (batch.length >= 256) await fresh.set(batch.splice(0))
    }
    await fresh.set(batch)
    for (const cid of chunkCids) if (!fresh.hasChunk(cid)) throw new Error('chunk missing')
    return fresh
  })
  let index = await loaded()
  index = undefined
  index = await loaded()
  index = undefined
  index = await pulled()
  index = undefined
  index = await pulled()
  rows.splice(0, rows.length, rows[1], rows[3])
  console.log(`share of ${fileCount} entries (${tinyCount} tiny, ${smallCount} small, one of ${bigMiB} MiB), ${chunkCids.length} chunks`)
  console.log('state    heap MiB  heap B/entry  external MiB')
  for (const r of rows) {
    console.log(`${r.label.padEnd(8)} ${(r.heap / MiB).toFixed(2).padStart(8)}  ${Math.round(r.heap / fileCount).toString().padStart(12)}  ${(r.external / MiB).toFixed(2).padStart(12)}`)
  }
  if (values.top != null) {
    const file = v8.writeHeapSnapshot(join(dirPath, 'pulled.heapsnapshot'))
    printTop(file, Number(values.top))
  }
  if (index.size !== fileCount) throw new Error('index size')
  await kv.close()
} finally {
  await rm(dirPath, { recursive: true, force: true })
}

/** The largest constructors (or node types) by self size in a heap snapshot. */
function printTop (file, count) {
  const snap = JSON.parse(readFileSync(file, 'utf8'))
  const fields = snap.snapshot.meta.node_fields
  const types = snap.snapshot.meta.node_types[0]
  const width = fields.length
  const [iType, iName, iSize] = ['type', 'name', 'self_size'].map(f => fields.indexOf(f))
  const totals = new Map()
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + iType]]
    const key = type === 'object' || type === 'closure' ? snap.strings[snap.nodes[i + iName]] : `(${type})`
    const t = totals.get(key) ?? { size: 0, count: 0 }
    t.size += snap.nodes[i + iSize]
    t.count++
    totals.set(key, t)
  }
  console.log('top by self size (whole heap):')
  for (const [key, t] of [...totals].sort((a, b) => b[1].size - a[1].size).slice(0, count)) {
    console.log(`  ${(t.size / MiB).toFixed(2).padStart(7)} MiB ${String(t.count).padStart(8)}  ${key.slice(0, 60)}`)
  }
}
