// Snapshot encoding cost per head (issue 5: every scan's head re-encodes the whole share):
// a share of COUNT small files and one SIZE file, encoded ROUNDS times; this tree against
// another built checkout in the same process (--tree DIR, e.g. a copy of HEAD).
// Usage: node --max-semi-space-size=2 bench/snapshot-encode.mjs [count=2000] [size=1G] [rounds=8] [--tree DIR]
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { pathToFileURL } from 'node:url'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { parseSize } from './util.mjs'

const { values: opts, positionals } = parseArgs({ allowPositionals: true, options: { tree: { type: 'string', multiple: true } } })
const count = Number(positionals[0] ?? 2000)
const size = parseSize(positionals[1], 1024 * 1024 * 1024)
const rounds = Number(positionals[2] ?? 8)
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
for (const [i, t] of times.entries()) {
  t.sort((a, b) => a - b)
  console.log(`  ${trees[i]}: best ${t[0].toFixed(1)} ms, median ${t[Math.floor(t.length / 2)].toFixed(1)} ms`)
}
