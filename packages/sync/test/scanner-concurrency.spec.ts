import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { seededRandom } from '@homecloud/test-support'
import { MemoryFs, scanShare, SCAN_CONCURRENCY, type ChunkFile, type ChunkFileFn, type ScanInit, type ScanResult, type ShareFs } from '../src/index.js'
import { fixedChunker } from './helpers.js'

async function scanAll (init: ScanInit, options: { signal?: AbortSignal } = {}): Promise<ScanResult[]> {
  const out: ScanResult[] = []
  for await (const r of scanShare(init, options)) out.push(r)
  return out
}

/** Results without object identity: what a consumer sees, in order. */
function summary (results: ScanResult[]): string[] {
  return results.map(r => r.kind === 'entry'
    ? `${r.entry.path} ${r.entry.type} ${r.entry.size} ${(r.entry.chunks ?? []).map(c => c.cid.toString()).join(',')}`
    : r.kind === 'error' ? `error ${r.path} ${r.error.message}` : `deleted ${r.path}`)
}

/** Lets a few turns of the event loop pass (a different number per call): calls finish out of order. */
async function turns (n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise(resolve => setImmediate(resolve))
}

/** A ShareFs that counts lstat calls per path. */
function countingFs (fs: MemoryFs): ShareFs & { lstats: Map<string, number> } {
  const lstats = new Map<string, number>()
  const counted = Object.create(fs) as ShareFs & { lstats: Map<string, number> }
  counted.lstats = lstats
  counted.lstat = async (p) => {
    lstats.set(p, (lstats.get(p) ?? 0) + 1)
    return fs.lstat(p)
  }
  counted.readdir = async (p) => fs.readdir(p)
  counted.openRead = async (p) => fs.openRead(p)
  counted.readlink = async (p) => fs.readlink(p)
  return counted
}

describe('scanShare: entries in flight', () => {
  it('hashes several files at once, never more than the bound, and yields exactly what one at a time yields', async () => {
    const fs = new MemoryFs()
    const random = seededRandom(7)
    for (let i = 0; i < 40; i++) fs.writeFile(`/s/top/f${String(i).padStart(2, '0')}`, 'x'.repeat(1 + Math.floor(random() * 20)))
    for (let i = 0; i < 5; i++) fs.writeFile(`/s/top/sub${i}/g`, `g${i}`)
    fs.writeFile('/s/a', 'first')
    await fs.symlink('a', '/s/link')
    fs.addOther('/s/top/socket')
    const base = fixedChunker(fs)
    let inFlight = 0
    let most = 0
    const slow: ChunkFileFn = async (path, options) => {
      inFlight++
      most = Math.max(most, inFlight)
      try {
        await turns(Math.floor(random() * 6))
        return await base(path, options)
      } finally {
        inFlight--
      }
    }
    const one = await scanAll({ fs, root: '/s', chunkFile: base, concurrency: 1 })
    const many = await scanAll({ fs, root: '/s', chunkFile: slow, concurrency: 4 })
    assert.deepEqual(summary(many), summary(one))
    assert.equal(many.filter(r => r.kind === 'entry').length, 1 + 1 + 1 + 40 + 5 + 5)
    assert.equal(many.filter(r => r.kind === 'error').length, 1, 'the socket')
    assert.ok(most > 1, `files hashed side by side (at most ${most} at once)`)
    assert.ok(most <= 4, `never more than the bound (${most})`)
    assert.ok(SCAN_CONCURRENCY > 1)
  })

  it('trusts the stat the chunker took after reading instead of a second lstat; a different one is a change while hashed', async () => {
    const fs = new MemoryFs()
    fs.writeFile('/s/same', 'unchanged')
    fs.writeFile('/s/moved', 'touched while hashed')
    const counted = countingFs(fs)
    const base = fixedChunker(fs)
    const withStat: ChunkFileFn = async (path, options) => {
      const { chunks } = await base(path, options)
      const st = await fs.lstat(path)
      const stat = { size: st.size, ino: st.ino, mtimeMs: path.endsWith('moved') ? st.mtimeMs + 1 : st.mtimeMs }
      return { chunks, stat } satisfies ChunkFile
    }
    const results = await scanAll({ fs: counted, root: '/s', chunkFile: withStat })
    assert.equal(counted.lstats.get('/s/same'), 1, 'one lstat: the walk')
    const errors = results.flatMap(r => r.kind === 'error' ? [r] : [])
    assert.deepEqual(errors.map(e => e.path), ['moved'])
    assert.match(errors[0].error.message, /changed while it was being hashed/)
    counted.lstats.clear()
    await scanAll({ fs: counted, root: '/s', chunkFile: base })
    assert.equal(counted.lstats.get('/s/same'), 2, 'without a stat from the chunker the file is lstat-ed again after hashing')
  })

  it('an abort while files are hashed ends the scan, and every chunkFile it started has settled by then', async () => {
    const fs = new MemoryFs()
    for (let i = 0; i < 20; i++) fs.writeFile(`/s/f${String(i).padStart(2, '0')}`, 'data')
    const controller = new AbortController()
    let started = 0
    let settled = 0
    const blocking: ChunkFileFn = async (_path, options) => {
      started++
      try {
        if (started === 3) controller.abort()
        await new Promise((_resolve, reject) => {
          const signal = options.signal as AbortSignal
          if (signal.aborted) reject(signal.reason)
          signal.addEventListener('abort', () => { reject(signal.reason) }, { once: true })
        })
        return { chunks: [] }
      } finally {
        await turns(3) // cleanup that takes a while: the scan must wait for it
        settled++
      }
    }
    const unhandled: unknown[] = []
    const onUnhandled = (err: unknown): void => { unhandled.push(err) }
    process.on('unhandledRejection', onUnhandled)
    try {
      await assert.rejects(scanAll({ fs, root: '/s', chunkFile: blocking, concurrency: 8 }, { signal: controller.signal }), { name: 'AbortError' })
      assert.ok(started >= 3 && started <= 8, `${started} started`)
      assert.equal(settled, started, 'nothing the scan started runs on after it')
      await turns(5)
      assert.deepEqual(unhandled, [])
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
  })

  it('a consumer that stops early waits for the entries in flight', async () => {
    const fs = new MemoryFs()
    for (let i = 0; i < 20; i++) fs.writeFile(`/s/f${String(i).padStart(2, '0')}`, 'data')
    let started = 0
    let settled = 0
    const base = fixedChunker(fs)
    const slow: ChunkFileFn = async (path, options) => {
      started++
      try {
        await turns(4)
        return await base(path, options)
      } finally {
        settled++
      }
    }
    let seen = 0
    for await (const r of scanShare({ fs, root: '/s', chunkFile: slow, concurrency: 6 })) {
      assert.equal(r.kind, 'entry')
      if (++seen === 2) break
    }
    assert.ok(started > 2, `entries ahead were in flight (${started})`)
    assert.equal(settled, started)
  })
})
