/**
 * Child process for the batch kill -9 test: applies a plan replacing
 * ROOT/d/f0..f3 (two 64 KiB chunks each) in one batch and stops forever at
 * a chosen moment (after printing `paused`), so the parent kills it there:
 * PHASE `get` stops at block store read STOP_AT (while the temps are
 * written), `rename` before rename STOP_AT (between the renames).
 * Usage: node crash-batch-writer.js ROOT PHASE STOP_AT
 */
import { applyPlan, nodeFs, type PlanStep } from '../src/index.js'
import { fileStat, patternChunk } from './crash-data.js'

const [root, phase, stop] = process.argv.slice(2)
const stopAt = Number(stop)
const chunks = new Map<string, Uint8Array>()
const steps: PlanStep[] = []
for (let i = 0; i < 4; i++) {
  const path = `d/f${i}`
  const parts = [await patternChunk(2 * i), await patternChunk(2 * i + 1)]
  for (const p of parts) chunks.set(p.cid.toString(), p.bytes)
  const expect = await fileStat(root, path)
  steps.push({
    action: 'write-file',
    path,
    chunks: parts.map((p, j) => ({ cid: p.cid, offset: j * 65536, length: 65536 })),
    ...(expect != null ? { expect } : {}),
    entry: { path, type: 'file', size: 2 * 65536, mtime: Date.UTC(2024, 0, 1), mode: 0o644, version: { d: 2 }, modifiedBy: 'd', chunks: parts.map(p => ({ cid: p.cid, length: 65536 })) }
  })
}
const hang = async (): Promise<void> => {
  process.stdout.write('paused\n')
  await new Promise(() => {}) // killed here
}
let gets = 0
let renames = 0
await applyPlan({ steps, fetch: [], bytesToFetch: 0, bytesLocal: 0, conflicts: [], errors: [] }, {
  fs: nodeFs,
  root,
  minFreeFraction: 0,
  reader: {
    get: async (cid) => {
      if (phase === 'get' && gets++ === stopAt) await hang()
      return chunks.get(cid.toString())
    }
  },
  beforeReplace: async () => {
    if (phase === 'rename' && renames++ === stopAt) await hang()
  },
  onApplied: async () => {}
})
process.stdout.write('done\n')
