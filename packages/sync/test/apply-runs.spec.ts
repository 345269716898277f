import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { concat } from 'uint8arrays/concat'
import { writeFileBatch, type WriteFileStep } from '../src/apply-batch.js'
import { WriteRuns, type WriteRun } from '../src/apply-disk.js'
import { MemoryFs, planPull, type ChunkFetcher, type ChunkReader, type FsWriteHandle, type ShareEntry } from '../src/index.js'
import { rawCid } from './helpers.js'
import type { CID } from 'multiformats/cid'

const PEER = 'peer'

/** Distinct chunks of `size` bytes (chunk i is filled with i + 1). */
const parts = (count: number, size: number, from = 0): Uint8Array[] => Array.from({ length: count }, (_, i) => new Uint8Array(size).fill(from + i + 1))

class Swarm implements ChunkReader {
  readonly map = new Map<string, Uint8Array>()

  async get (cid: CID): Promise<Uint8Array | undefined> {
    return this.map.get(cid.toString())
  }
}

async function remoteFile (path: string, chunks: Uint8Array[], swarm: Swarm): Promise<{ entry: ShareEntry, cids: CID[] }> {
  const cids = await Promise.all(chunks.map(async p => rawCid(p)))
  chunks.forEach((p, i) => swarm.map.set(cids[i].toString(), p))
  const entry: ShareEntry = {
    path, type: 'file', size: chunks.reduce((n, p) => n + p.byteLength, 0), mtime: Date.UTC(2024, 1, 2), mode: 0o644,
    version: { [PEER]: 1 }, modifiedBy: PEER, chunks: cids.map((cid, i) => ({ cid, length: chunks[i].byteLength }))
  }
  return { entry, cids }
}

/**
 * Hands chunks to the sink in `order` (all asked for, by default), in two
 * pieces each as the exchange does with big blocks; all at once as the
 * exchange stores what arrives while earlier blocks are still being
 * written, or (`serial`) each after the last was stored.
 */
function orderedFetcher (swarm: Swarm, order?: CID[], serial = false): ChunkFetcher {
  return {
    fetch: async (cids, options) => {
      const sink = options?.sink
      assert.ok(sink?.putPieces != null)
      const putPieces = sink.putPieces.bind(sink)
      const puts: Array<Promise<void>> = []
      for (const cid of order ?? cids) {
        const bytes = swarm.map.get(cid.toString())
        if (bytes == null) continue
        const half = bytes.byteLength >> 1
        const pieces = Object.assign([bytes.subarray(0, half), bytes.subarray(half)], { byteLength: bytes.byteLength })
        const put = putPieces(cid, pieces as unknown as Parameters<typeof putPieces>[1])
        if (serial) await put
        else puts.push(put)
      }
      await Promise.all(puts)
    }
  }
}

/** Every byte of `size` written exactly once by `calls`. */
function coveredOnce (calls: Call[], size: number): boolean {
  const sorted = [...calls].sort((a, b) => a.position - b.position)
  let at = 0
  for (const c of sorted) {
    if (c.position !== at) return false
    at += c.bytes
  }
  return at === size
}

interface Call { path: string, position: number, bytes: number, pieces: number }

/** A MemoryFs whose temp files count their write calls (with `writev`, as node's are); `fail` makes a call throw EIO. */
async function recordingFs (fail?: (call: Call, before: Call[]) => boolean): Promise<{ fs: MemoryFs, calls: Call[] }> {
  const fs = new MemoryFs()
  await fs.mkdir('/s', 0o755)
  const calls: Call[] = []
  const create = fs.createExclusive.bind(fs)
  fs.createExclusive = async (path: string, mode: number): Promise<FsWriteHandle> => {
    const handle = await create(path, mode)
    const record = (pieces: Uint8Array[], position: number): void => {
      const call = { path, position, bytes: pieces.reduce((n, p) => n + p.byteLength, 0), pieces: pieces.length }
      if (fail?.(call, calls.filter(c => c.path === path)) === true) throw Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' })
      calls.push(call)
    }
    return {
      ...handle,
      write: async (bytes, position) => {
        record([bytes], position)
        await handle.write(bytes, position)
      },
      writev: async (pieces, position) => {
        record(pieces, position)
        let at = position
        for (const p of pieces) {
          await handle.write(p, at)
          at += p.byteLength
        }
      }
    }
  }
  return { fs, calls }
}

async function writeSteps (entries: ShareEntry[]): Promise<WriteFileStep[]> {
  const plan = await planPull({ local: new Map(), remote: entries, has: async () => false })
  return plan.steps.filter((s): s is WriteFileStep => s.action === 'write-file')
}

describe('apply: consecutive chunks in one write call', () => {
  it('chunks that arrive while a write of their file is under way go out together, at most the bound per call; out of order they land at their offsets', async () => {
    const chunks = parts(10, 100)
    const cases: Array<[number[], number[][] | undefined]> = [
      // the first alone (nothing under way), then full runs at once, the rest when the writes end
      [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [[0, 100], [100, 400], [500, 400], [900, 100]]],
      // a late chunk joins the run it precedes
      [[5, 6, 7, 0, 1, 2, 3, 4, 8, 9], [[500, 100], [0, 400], [600, 400], [400, 100]]],
      [[9, 8, 7, 6, 5, 4, 3, 2, 1, 0], undefined],
      // past 4 runs of a file the oldest goes; a chunk that closes a gap joins two runs
      [[0, 2, 4, 6, 8, 1, 3, 5, 7, 9], undefined]
    ]
    for (const [order, expected] of cases) {
      const swarm = new Swarm()
      const { entry, cids } = await remoteFile('f', chunks, swarm)
      const { fs, calls } = await recordingFs()
      const res = await writeFileBatch(await writeSteps([entry]), { fs, root: '/s', reader: new Swarm(), fetcher: orderedFetcher(swarm, order.map(i => cids[i])) }, { runs: { runChunks: 4 } })
      assert.deepEqual(res.errors, [])
      assert.deepEqual(fs.readFile('/s/f'), concat(chunks), `order ${order.join(',')}`)
      if (expected != null) assert.deepEqual(calls.map(c => [c.position, c.bytes]), expected, `order ${order.join(',')}`)
      assert.ok(coveredOnce(calls, 1000), `every byte written once: ${JSON.stringify(calls)}`)
      assert.ok(calls.length < 10 && calls.every(c => c.bytes <= 400), `gathered, within the bound: ${JSON.stringify(calls)}`)
      assert.ok(calls.every(c => c.pieces === 2 * c.bytes / 100), 'the pieces of every chunk of a run in one call, never joined')
    }
  })

  it('a failed write fails its file alone: its later chunks are not written, its temp file is removed, nothing renamed', async () => {
    const swarm = new Swarm()
    const a = await remoteFile('x/a', parts(6, 50), swarm)
    const b = await remoteFile('y/b', parts(6, 50, 10), swarm)
    // the second write call of x/a fails
    const { fs, calls } = await recordingFs((call, before) => call.path.startsWith('/s/x/') && before.length === 1)
    const order = [0, 1, 2, 3, 4, 5].flatMap(i => [a.cids[i], b.cids[i]])
    const res = await writeFileBatch(await writeSteps([a.entry, b.entry]), { fs, root: '/s', reader: new Swarm(), fetcher: orderedFetcher(swarm, order, true) }, { runs: { runChunks: 2 } })
    assert.deepEqual(res.errors.map(e => [e.step.path, (e.error as { code?: string }).code]), [['x/a', 'EIO']])
    assert.deepEqual(res.done.map(d => d.step.path), ['y/b'])
    assert.deepEqual(calls.filter(c => c.path.startsWith('/s/x/')).map(c => [c.position, c.bytes]), [[0, 50]], 'nothing written after the failure')
    assert.deepEqual(await fs.readdir('/s/x'), [], 'no temp file, no x/a')
    assert.deepEqual(fs.readFile('/s/y/b'), concat(parts(6, 50, 10)))
    assert.equal(calls.filter(c => c.path.startsWith('/s/y/')).length, 6, 'stored one by one: nothing to gather')
  })

  it('what a batch holds gathered stays under its bound; each add resolves once its chunk is written', async () => {
    const written: WriteRun[] = []
    const runs: WriteRuns<number> = new WriteRuns(async (_key, run) => {
      // the thread pool answers later
      await new Promise(resolve => setImmediate(resolve))
      written.push(run)
    }, { runBytes: 1000, runChunks: 100, gatheredBytes: 2000 })
    const files = 10
    const perFile = 8
    let most = 0
    const adds: Array<Promise<void>> = []
    for (let j = 0; j < perFile; j++) {
      for (let key = 0; key < files; key++) {
        const offset = j * 100
        adds.push(runs.add(key, new Uint8Array(100).fill(key), offset).then(() => {
          assert.ok(written.some(r => r.pieces[0][0] === key && r.offset <= offset && offset < r.offset + r.bytes), 'resolved after its write')
        }))
        most = Math.max(most, runs.gathered)
      }
    }
    await Promise.all(adds)
    assert.ok(most <= 2000, `gathered ${most} bytes, bound 2000`)
    assert.equal(runs.gathered, 0)
    assert.ok(written.length < files * perFile, 'chunks were gathered')
    // every byte written once, at its offset
    const covered = new Map<string, number>()
    for (const run of written) {
      assert.ok(run.bytes <= 1000 && run.chunks === run.pieces.length)
      // each chunk is filled with its key
      run.pieces.forEach((p, i) => {
        const at = `${p[0]}@${run.offset + i * 100}`
        covered.set(at, (covered.get(at) ?? 0) + 1)
      })
    }
    assert.equal(covered.size, files * perFile)
    assert.ok([...covered.values()].every(n => n === 1))
  })

  it('a run is written when it reaches its size bound; dropped chunks are never written, their adds resolve', async () => {
    const written: WriteRun[] = []
    const gate = Promise.withResolvers<void>()
    const runs = new WriteRuns<string>(async (_key, run) => {
      written.push(run)
      await gate.promise
    }, { runBytes: 1000, runChunks: 100, gatheredBytes: 1 << 20 })
    const adds = Array.from({ length: 26 }, async (_, j) => runs.add('a', new Uint8Array(100), j * 100))
    assert.deepEqual(written.map(r => [r.offset, r.bytes]), [[0, 100], [100, 1000], [1100, 1000]], 'the first alone, then full runs while it is under way')
    assert.equal(runs.gathered, 500)
    runs.drop('a')
    gate.resolve()
    await Promise.all(adds)
    await runs.settled()
    assert.equal(written.length, 3)
    assert.equal(runs.gathered, 0)
  })
})
