// Bytes of snapshot blocks a change makes new (what a receiver that holds the previous
// snapshot must fetch), for a share shaped like bench/vs-syncthing's (issue 5 d: a rename
// of a 100 MiB file should cost ≤ 100 KiB on the wire): a big file, SMALL files of 1–64 KiB
// in folders of 100, a 100 MiB file, and optionally TINY files. Pure encoding, no daemons.
//
// Usage: node bench/snapshot-delta.mjs [--small N=2000] [--tiny N=0]
import { parseArgs } from 'node:util'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { encodeSnapshot } from '../packages/sync/dist/src/index.js'

const { values } = parseArgs({ options: { small: { type: 'string' }, tiny: { type: 'string' } } })
const smallCount = Number(values.small ?? 2000)
const tinyCount = Number(values.tiny ?? 0)
const KiB = 1024
const AVG_CHUNK = 300 * KiB
const device = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
let n = 0
const chunk = async length => ({ cid: CID.createV1(raw.code, await sha256.digest(new TextEncoder().encode(`chunk ${n++}`))), length })
const base = { mtime: 1_764_000_000_123, version: { [device]: 1 }, modifiedBy: device }
const dir = path => ({ ...base, path, type: 'dir', size: 0, mode: 0o755 })
async function file (path, size) {
  const chunks = []
  for (let left = size; left > 0; left -= AVG_CHUNK) chunks.push(await chunk(Math.min(left, AVG_CHUNK)))
  return { ...base, path, type: 'file', size, mode: 0o644, chunks }
}

const entries = [dir('a'), dir('a/small'), dir('d'), await file('a/big.bin', 1024 * 1024 * KiB), await file('d/movie.bin', 100 * 1024 * KiB)]
for (let i = 0; i < smallCount; i++) {
  const folder = `a/small/d${String(Math.floor(i / 100)).padStart(3, '0')}`
  if (i % 100 === 0) entries.push(dir(folder))
  entries.push(await file(`${folder}/f${String(i).padStart(5, '0')}.bin`, KiB + ((i * 7919) % (63 * KiB))))
}
for (let i = 0; i < tinyCount; i++) {
  const folder = `e/d${String(Math.floor(i / 100)).padStart(3, '0')}`
  if (i % 100 === 0) entries.push(dir(folder))
  entries.push(await file(`${folder}/f${String(i).padStart(5, '0')}.bin`, 1 + (i % KiB)))
}

function delta (before, after) {
  const held = new Set(before.blocks.map(b => b.cid.toString()))
  const fresh = after.blocks.filter(b => !held.has(b.cid.toString()))
  return { count: fresh.length, bytes: fresh.reduce((s, b) => s + b.bytes.byteLength, 0), root: after.blocks.at(-1).bytes.byteLength }
}
const sizeOf = snapshot => snapshot.blocks.reduce((s, b) => s + b.bytes.byteLength, 0)

const before = await encodeSnapshot(entries)
console.log(`${entries.length} entries: ${before.blocks.length} blocks, ${(sizeOf(before) / KiB).toFixed(1)} KiB`)
const changes = {
  'rename d/movie.bin': () => {
    const movie = entries.find(e => e.path === 'd/movie.bin')
    return [...entries.filter(e => e !== movie), { ...movie, path: 'd/movie-renamed.bin', version: { [device]: 2 } },
      { ...movie, chunks: undefined, size: 0, deleted: true, version: { [device]: 2 } }]
  },
  'add one small file': async () => [...entries, await file('a/small/d010/new.bin', 5000)],
  'edit a/big.bin (one chunk)': async () => {
    const edited = await chunk(AVG_CHUNK)
    return entries.map(e => e.path === 'a/big.bin' ? { ...e, chunks: e.chunks.map((c, i) => i === 1700 ? edited : c) } : e)
  }
}
for (const [name, change] of Object.entries(changes)) {
  const after = await encodeSnapshot(await change())
  const d = delta(before, after)
  console.log(`${name}: ${d.count} new blocks, ${(d.bytes / KiB).toFixed(1)} KiB (root ${(d.root / KiB).toFixed(1)} KiB)`)
}
