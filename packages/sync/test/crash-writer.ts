/**
 * Child process for the kill -9 test: applies one file of `chunks` × 64 KiB
 * into `root`, reading chunks from a reader that stops forever before chunk
 * `stopAt` (after printing `paused`), so the parent kills it mid-write.
 * Usage: node crash-writer.js ROOT PATH CHUNKS STOP_AT
 */
import { applyStep, nodeFs, type PlannedChunk } from '../src/index.js'
import { fileStat, patternChunk } from './crash-data.js'

const [root, path, count, stop] = process.argv.slice(2)
const chunks: PlannedChunk[] = []
for (let i = 0; i < Number(count); i++) chunks.push({ cid: (await patternChunk(i)).cid, offset: i * 65536, length: 65536 })
const stopAt = Number(stop)
let gets = 0
const expect = await fileStat(root, path)
await applyStep({
  action: 'write-file',
  path,
  chunks,
  expect,
  entry: { path, type: 'file', size: chunks.length * 65536, mtime: Date.UTC(2024, 0, 1), mode: 0o644, version: { d: 2 }, modifiedBy: 'd', chunks: chunks.map(c => ({ cid: c.cid, length: c.length })) }
}, {
  fs: nodeFs,
  root,
  minFreeFraction: 0,
  reader: {
    get: async (cid) => {
      if (gets++ === stopAt) {
        process.stdout.write('paused\n')
        await new Promise(() => {}) // killed here
      }
      for (let i = 0; i < chunks.length; i++) if (chunks[i].cid.equals(cid)) return (await patternChunk(i)).bytes
      return undefined
    }
  }
})
process.stdout.write('done\n')
