/**
 * What lets a member start sooner on a big change: the scanner hashes big
 * files after the rest of the walk, partial heads publish what a long scan
 * has found so far, and a pull may apply beside another one on other paths.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { MemoryFs, scanShare, type ChunkFileFn, type LocalEntry, type PullPlan, type ScanInit, type ScanResult, type ShareEntry } from '../src/index.js'
import { PartialHeads } from '../src/partial-heads.js'
import { PullRuns } from '../src/pull-runs.js'
import { fixedChunker, waitFor } from './helpers.js'
import type { FsStat } from '../src/fs.js'

async function scanAll (init: ScanInit, options: { signal?: AbortSignal } = {}): Promise<ScanResult[]> {
  const out: ScanResult[] = []
  for await (const r of scanShare(init, options)) out.push(r)
  return out
}

const paths = (results: ScanResult[]): string[] => results.map(r => r.kind === 'entry' ? r.entry.path : `${r.kind} ${r.path}`)

describe('scanShare: big files hashed last', () => {
  function tree (): MemoryFs {
    const fs = new MemoryFs()
    fs.writeFile('/s/a/big.bin', 'b'.repeat(64))
    fs.writeFile('/s/a/small/f1', 'one')
    fs.writeFile('/s/a/small/f2', 'two')
    fs.writeFile('/s/z', 'zz')
    return fs
  }

  it('reports every other entry before a big file that needs hashing, and the same entries as in name order', async () => {
    const fs = tree()
    const chunkFile = fixedChunker(fs, 16)
    const last = await scanAll({ fs, root: '/s', chunkFile, hashLastBytes: 64 })
    assert.deepEqual(paths(last), ['a', 'z', 'a/small', 'a/small/f1', 'a/small/f2', 'a/big.bin'])
    assert.equal(chunkFile.calls.at(-1), '/s/a/big.bin', 'hashed after the small files')
    const ordered = await scanAll({ fs, root: '/s', chunkFile: fixedChunker(fs, 16), hashLastBytes: Infinity })
    assert.deepEqual(paths(ordered), ['a', 'z', 'a/big.bin', 'a/small', 'a/small/f1', 'a/small/f2'])
    const byPath = (rs: ScanResult[]): string[] => rs.map(r => JSON.stringify(r)).sort()
    assert.deepEqual(byPath(last), byPath(ordered))
  })

  /** The index a scan's results make (as the share records them). */
  function indexOf (results: ScanResult[]): Map<string, LocalEntry> {
    const previous = new Map<string, LocalEntry>()
    for (const r of results) {
      if (r.kind !== 'entry') continue
      const e = r.entry
      previous.set(e.path, { path: e.path, type: e.type, size: e.size, mtime: Math.floor(e.mtimeMs), mode: e.mode, version: { d: 1 }, modifiedBy: 'd', chunks: e.chunks, local: { ino: e.ino, mtimeMs: e.mtimeMs } })
    }
    return previous
  }

  it('an unchanged big file is not put off (nor read)', async () => {
    const fs = tree()
    const chunkFile = fixedChunker(fs, 16)
    const previous = indexOf(await scanAll({ fs, root: '/s', chunkFile, hashLastBytes: 64 }))
    chunkFile.calls.length = 0
    const again = await scanAll({ fs, root: '/s', chunkFile, previous, hashLastBytes: 64 })
    assert.deepEqual(paths(again), ['a', 'z', 'a/big.bin', 'a/small', 'a/small/f1', 'a/small/f2'])
    assert.deepEqual(chunkFile.calls, [])
  })

  it('an edit of a big indexed file is hashed from when the walk finds it, beside the walk, and still reported last; a new one waits', async () => {
    const fs = tree()
    const previous = indexOf(await scanAll({ fs, root: '/s', chunkFile: fixedChunker(fs, 16), hashLastBytes: 64 }))
    fs.writeFile('/s/a/big.bin', 'c'.repeat(64))
    fs.writeFile('/s/a/big2.bin', 'n'.repeat(64))
    fs.writeFile('/s/a/small/f3', 'three')
    const chunkFile = fixedChunker(fs, 16)
    const results = await scanAll({ fs, root: '/s', chunkFile, previous, hashLastBytes: 64 })
    assert.deepEqual(chunkFile.calls, ['/s/a/big.bin', '/s/a/small/f3', '/s/a/big2.bin'])
    assert.deepEqual(paths(results), ['a', 'z', 'a/small', 'a/small/f1', 'a/small/f2', 'a/small/f3', 'a/big.bin', 'a/big2.bin'])
    const big = results.find(r => r.kind === 'entry' && r.entry.path === 'a/big.bin')
    assert.ok(big?.kind === 'entry' && big.entry.changed && big.entry.chunks?.length === 4)
  })

  it('an abort while an edit is hashed beside the walk ends the scan once that hashing has settled', async () => {
    const fs = tree()
    const previous = indexOf(await scanAll({ fs, root: '/s', chunkFile: fixedChunker(fs, 16), hashLastBytes: 64 }))
    fs.writeFile('/s/a/big.bin', 'c'.repeat(64))
    fs.writeFile('/s/a/small/f3', 'three')
    const controller = new AbortController()
    const base = fixedChunker(fs, 16)
    let bigSettled = false
    const chunkFile: ChunkFileFn = async (path, options) => {
      if (!path.endsWith('big.bin')) {
        controller.abort()
        return base(path, options)
      }
      // the big file's hashing ends only when the scan is aborted
      try {
        await new Promise((resolve, reject) => { options.signal?.addEventListener('abort', () => { setImmediate(() => { reject(options.signal?.reason) }) }) })
        return await base(path, options)
      } finally {
        bigSettled = true
      }
    }
    await assert.rejects(scanAll({ fs, root: '/s', chunkFile, previous, hashLastBytes: 64 }, { signal: controller.signal }), { name: 'AbortError' })
    assert.ok(bigSettled, 'the big file\'s hashing settled before the scan ended')
  })

  it('an abort before the big files are hashed ends the scan without hashing them', async () => {
    const fs = tree()
    const controller = new AbortController()
    const base = fixedChunker(fs, 16)
    const chunkFile: ChunkFileFn = async (path, options) => {
      if (path.endsWith('f2')) controller.abort()
      return base(path, options)
    }
    await assert.rejects(scanAll({ fs, root: '/s', chunkFile, hashLastBytes: 64 }, { signal: controller.signal }), { name: 'AbortError' })
    assert.ok(!base.calls.includes('/s/a/big.bin'))
  })
})

describe('PartialHeads', () => {
  const entry = (path: string): LocalEntry => ({ path, type: 'file', size: 0, mtime: 0, mode: 0o644, version: { d: 1 }, modifiedBy: 'd', chunks: [] })

  it('flushes what a running scan found so far, one at a time, never twice the same change, less often as the scan goes on', async () => {
    const changes: LocalEntry[] = [entry('a'), entry('b')]
    const flushed: string[][] = []
    let release: (() => void) | undefined
    const partial = new PartialHeads({
      changes,
      signal: new AbortController().signal,
      afterMs: 5,
      intervalMs: 5,
      flush: async (entries) => {
        flushed.push(entries.map(e => e.path))
        // the second flush is slow: ticks meanwhile start no other
        if (flushed.length === 2) await new Promise<void>(resolve => { release = resolve })
      }
    })
    await waitFor(() => partial.flushed === 2)
    changes.push(entry('c'))
    await waitFor(() => release != null)
    changes.push(entry('d'))
    await new Promise(resolve => setTimeout(resolve, 30)) // several intervals pass while the flush runs
    assert.equal(flushed.length, 2, 'one flush at a time')
    release?.()
    await waitFor(() => partial.flushed === 4)
    await partial.stop()
    assert.deepEqual(flushed, [['a', 'b'], ['c'], ['d']])
    assert.equal(partial.published, 3)
  })

  it('waits twice as long after each partial head', async () => {
    const changes: LocalEntry[] = [entry('a')]
    const at: number[] = []
    const start = Date.now()
    const partial = new PartialHeads({ changes, signal: new AbortController().signal, afterMs: 1, intervalMs: 40, flush: async () => { at.push(Date.now() - start) } })
    await waitFor(() => at.length === 1)
    changes.push(entry('b'))
    await waitFor(() => at.length === 2)
    changes.push(entry('c'))
    await waitFor(() => at.length === 3, { timeout: 2000 })
    await partial.stop()
    // 1, then ≥ 40 later, then ≥ 80 later (timers never fire early)
    assert.ok(at[1] - at[0] >= 35, `${at.join(', ')}`)
    assert.ok(at[2] - at[1] >= 75, `${at.join(', ')}`)
  })

  it('holds moves for the final head (their source\'s tombstone comes at the end), and flushes only for something else', async () => {
    const changes: LocalEntry[] = [entry('moved-here')]
    const flushed: string[][] = []
    const partial = new PartialHeads({
      changes, signal: new AbortController().signal, afterMs: 1, intervalMs: 1, hold: (e) => e.path === 'moved-here', flush: async (entries) => { flushed.push(entries.map(e => e.path)) }
    })
    await new Promise(resolve => setTimeout(resolve, 20)) // several intervals: a move alone makes no partial head
    assert.deepEqual(flushed, [])
    changes.push(entry('new.txt'))
    await waitFor(() => partial.flushed === 2)
    changes.push(entry('late.txt'))
    await partial.stop()
    assert.deepEqual(flushed, [['new.txt']])
    assert.deepEqual(partial.rest().map(e => e.path), ['moved-here', 'late.txt'], 'the scan records these itself')
  })

  it('does nothing for a scan that ends sooner, nor without changes, nor once stopped', async () => {
    let calls = 0
    const quick = new PartialHeads({ changes: [entry('a')], signal: new AbortController().signal, afterMs: 10_000, flush: async () => { calls++ } })
    await quick.stop()
    const empty = new PartialHeads({ changes: [], signal: new AbortController().signal, afterMs: 1, intervalMs: 1, flush: async () => { calls++ } })
    await new Promise(resolve => setTimeout(resolve, 20))
    await empty.stop()
    assert.equal(calls, 0)
    assert.equal(quick.flushed, 0)
  })
})

describe('PullRuns', () => {
  const file = (path: string): ShareEntry => ({ path, type: 'file', size: 1, mtime: 0, mode: 0o644, version: { d: 1 }, modifiedBy: 'd', chunks: [] })
  const dir = (path: string): ShareEntry => ({ path, type: 'dir', size: 0, mtime: 0, mode: 0o755, version: { d: 1 }, modifiedBy: 'd' })
  const plan = (steps: PullPlan['steps']): PullPlan => ({ steps, fetch: [], bytesToFetch: 0, bytesLocal: 0, conflicts: [], errors: [] })
  const dirStat = { type: 'dir' } as unknown as FsStat

  it('holds back the entries a running pull touches and lets the others through', async () => {
    const runs = new PullRuns()
    const first = Promise.withResolvers<void>()
    const gone = { ...file('old/x'), local: { ino: 1, mtimeMs: 0 } }
    const ended = runs.add('d head1', plan([
      { action: 'mkdir', path: 'a', entry: dir('a') },
      { action: 'mkdir', path: 'a/small', entry: dir('a/small') },
      { action: 'write-file', path: 'a/small/f1', entry: file('a/small/f1'), chunks: [] },
      { action: 'delete', path: 'old', entry: { ...dir('old'), deleted: true }, expect: { ...dir('old'), local: { ino: 2, mtimeMs: 0 } } },
      { action: 'write-file', path: 'moved/y', entry: file('moved/y'), chunks: [], moveFrom: { expect: gone, entry: { ...file('old/x'), deleted: true } } }
    ]), first.promise)
    assert.equal(runs.size, 1)
    assert.ok(runs.has('d head1'))
    const entries = [dir('a'), file('a/big.bin'), dir('a/small'), file('a/small/f1'), file('a/small/f3'), file('old/z'), file('old/x'), file('b.txt'), file('moved/y')]
    // 'a' and 'a/small' were made already; a directory a run makes but has not made yet holds what goes in it
    const made = new Set(['a', 'a/small'])
    const { free, held } = await runs.split(entries, async (p) => made.has(p) ? dirStat : undefined)
    assert.deepEqual(free.map(e => e.path), ['a/big.bin', 'a/small/f3', 'b.txt'])
    assert.deepEqual(held.map(e => e.path), ['a', 'a/small', 'a/small/f1', 'old/z', 'old/x', 'moved/y'])
    const notYet = await runs.split([file('a/small/f3')], async () => undefined)
    assert.deepEqual(notYet.held.map(e => e.path), ['a/small/f3'])

    let slotFree = false
    const second = Promise.withResolvers<void>()
    void runs.add('d head2', plan([]), second.promise)
    const slot = runs.slot(2).then(() => { slotFree = true })
    await new Promise(resolve => setImmediate(resolve))
    assert.equal(slotFree, false, 'two runs: no slot')
    first.resolve()
    await ended
    await slot
    assert.ok(!runs.has('d head1'))
    second.reject(new Error('a failed run ends too'))
    await runs.idle()
    assert.equal(runs.size, 0)
    assert.deepEqual((await runs.split(entries, async () => undefined)).held, [])
  })
})
