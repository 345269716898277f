import assert from 'node:assert/strict'
import { lstat, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { inTempDir } from '@homecloud/test-support'
import {
  APPLY_BATCH_BYTES, APPLY_BATCH_FILES, APPLY_SYNC_EVERY_BYTES, applyPlan, cleanupTempFiles, DiskFullError, MemoryFs, nodeFs, planPull,
  type AppliedOptions, type ChunkFetcher, type ChunkReader, type LocalEntry, type PendingRename, type PlanStep, type PullPlan, type ShareEntry, type ShareWriteFs
} from '../src/index.js'
import { crashFile, crashOld } from './crash-batch-data.js'
import { killWhenPaused, rawCid, text, waitFor } from './helpers.js'
import type { CID } from 'multiformats/cid'

const here = dirname(fileURLToPath(import.meta.url))
const PEER = 'peer'

/** Chunks by CID, counting reads: the block store, or what the swarm holds. */
class Chunks implements ChunkReader {
  readonly map = new Map<string, Uint8Array>()
  gets = 0

  async add (bytes: Uint8Array): Promise<CID> {
    const cid = await rawCid(bytes)
    this.map.set(cid.toString(), bytes)
    return cid
  }

  async get (cid: CID): Promise<Uint8Array | undefined> {
    this.gets++
    return this.map.get(cid.toString())
  }
}

/** A fetcher that hands what `swarm` holds to the sink, as the exchange does (never to the block store). */
function sinkFetcher (swarm: Chunks): ChunkFetcher & { asked: number } {
  const fetcher = {
    asked: 0,
    fetch: async (cids: CID[], options?: Parameters<ChunkFetcher['fetch']>[1]) => {
      fetcher.asked += cids.length
      const sink = options?.sink
      assert.ok(sink != null, 'apply passes its own sink')
      for (const cid of cids) {
        if (await sink.has(cid)) continue
        const bytes = swarm.map.get(cid.toString())
        if (bytes == null) continue
        // big blocks arrive in pieces, as the exchange hands them over
        if (bytes.byteLength > 8 && sink.putPieces != null) {
          const half = bytes.byteLength >> 1
          const pieces = Object.assign([bytes.subarray(0, half), bytes.subarray(half)], { byteLength: bytes.byteLength })
          await sink.putPieces(cid, pieces as unknown as Parameters<NonNullable<typeof sink.putPieces>>[1])
        } else {
          await sink.put(cid, bytes)
        }
      }
    }
  }
  return fetcher
}

/** A remote file entry cut into `parts`, the chunks added to `where`. */
async function remoteFile (path: string, parts: Uint8Array[], where: Chunks, init: Partial<ShareEntry> = {}): Promise<ShareEntry> {
  const chunks = await Promise.all(parts.map(async p => ({ cid: await where.add(p), length: p.byteLength })))
  return { path, type: 'file', size: parts.reduce((n, p) => n + p.byteLength, 0), mtime: Date.UTC(2024, 1, 2), mode: 0o644, version: { [PEER]: 1 }, modifiedBy: PEER, chunks, ...init }
}

/** The index entry of a file on disk cut into `parts` (which are its bytes). */
async function indexed (fs: ShareWriteFs, root: string, path: string, parts: Uint8Array[], version: Record<string, number> = { [PEER]: 1 }): Promise<LocalEntry> {
  const s = await fs.lstat(`${root}/${path}`)
  const chunks = await Promise.all(parts.map(async p => ({ cid: await rawCid(p), length: p.byteLength })))
  return { path, type: 'file', size: s.size, mtime: Math.round(s.mtimeMs), mode: s.mode & 0o777, version, modifiedBy: PEER, chunks, local: { ino: s.ino, mtimeMs: s.mtimeMs } }
}

/** `fs` with its reads and kernel copies counted. */
function counting (fs: ShareWriteFs): ShareWriteFs & { reads: string[], copies: string[] } {
  const reads: string[] = []
  const copies: string[] = []
  const wrapped: ShareWriteFs = {
    lstat: async (p: string) => fs.lstat(p),
    readdir: async (p: string) => fs.readdir(p),
    openRead: async (p: string) => { reads.push(p); return fs.openRead(p) },
    createExclusive: async (p: string, m: number) => fs.createExclusive(p, m),
    openWrite: async (p: string) => fs.openWrite(p),
    copyFile: async (a: string, b: string) => { copies.push(a); await fs.copyFile(a, b) },
    rename: async (a: string, b: string) => fs.rename(a, b),
    fsyncDir: async (p: string) => fs.fsyncDir(p),
    unlink: async (p: string) => fs.unlink(p),
    rmdir: async (p: string) => fs.rmdir(p),
    mkdir: async (p: string, m: number) => fs.mkdir(p, m),
    symlink: async (t: string, p: string) => fs.symlink(t, p),
    readlink: async (p: string) => fs.readlink(p),
    statfs: async (p: string) => fs.statfs(p)
  }
  return Object.assign(wrapped, { reads, copies })
}

function onlyPlan (steps: PlanStep[], fetch: CID[] = []): PullPlan {
  return { steps, fetch, bytesToFetch: 0, bytesLocal: 0, conflicts: [], errors: [] }
}

const filled = (n: number, v: number): Uint8Array => new Uint8Array(n).fill(v)

describe('apply in batches', () => {
  it('fetched chunks go straight into the files; a file missing one chunk fails alone, the batch is recorded once', async () => {
    const fs = new MemoryFs()
    await fs.mkdir('/s', 0o755)
    const swarm = new Chunks()
    const store = new Chunks()
    const lost = new Chunks()
    const entries = [
      await remoteFile('d/a', [text('one '), text('shared')], swarm),
      await remoteFile('d/b', [text('two '), text('nobody has this')], lost),
      await remoteFile('d/c', [text('shared'), text(' three')], swarm)
    ]
    // the second chunk of b is nowhere; its first chunk is
    await swarm.add(text('two '))
    const plan = await planPull({ local: new Map(), remote: entries, has: async () => false })
    const fetcher = sinkFetcher(swarm)
    const recorded: LocalEntry[][] = []
    const res = await applyPlan(plan, { fs, root: '/s', reader: store, fetcher, onApplied: async (e) => { recorded.push(e) } })
    assert.equal(res.applied, 2)
    assert.deepEqual(res.errors.map(e => [e.path, (e.error as { code?: string }).code]), [['d/b', 'ERR_CHUNK_UNAVAILABLE']])
    assert.equal(new TextDecoder().decode(fs.readFile('/s/d/a')), 'one shared')
    assert.equal(new TextDecoder().decode(fs.readFile('/s/d/c')), 'shared three')
    assert.deepEqual((await fs.readdir('/s/d')).sort(), ['a', 'c'], 'no partial b, no temp file')
    assert.equal(fetcher.asked, 5, 'one fetch of every missing chunk, "shared" once')
    assert.equal(store.gets, 1, 'the block store is asked only for the chunk that did not arrive, not for those the plan found nowhere')
    assert.deepEqual(recorded.map(r => r.map(e => e.path)), [['d/a', 'd/c']], 'one index write for the batch')
    assert.equal(fs.ops.filter(o => o === 'fsyncDir /s/d').length, 1, 'the directory is fsynced once for the batch')
  })

  it('before any rename the caller gets each file\'s future inode and entry (kept until the index has it: a crash in between is recognised on start)', async () => {
    const fs = new MemoryFs()
    await fs.mkdir('/s', 0o755)
    const swarm = new Chunks()
    const entries = [await remoteFile('a', [text('alpha')], swarm), await remoteFile('d/b', [text('beta')], swarm)]
    const plan = await planPull({ local: new Map(), remote: entries, has: async () => false })
    const order: string[] = []
    let pending: PendingRename[] = []
    await applyPlan(plan, {
      fs,
      root: '/s',
      reader: new Chunks(),
      fetcher: sinkFetcher(swarm),
      beforeRenames: async (p) => {
        pending = p
        order.push('pending')
        for (const { path } of p) await assert.rejects(fs.lstat(`/s/${path}`), 'nothing under the real name yet')
      },
      onApplied: async () => { order.push('index') }
    })
    assert.deepEqual(order, ['pending', 'index'])
    assert.deepEqual(pending.map(p => p.path).sort(), ['a', 'd/b'])
    for (const p of pending) {
      assert.equal((await fs.lstat(`/s/${p.path}`)).ino, p.ino, `${p.path}: the rename kept the temp file's inode`)
      assert.deepEqual(p.entries.map(e => e.path), [p.path])
    }
  })

  it('batches are bounded; D7 order holds per batch: all temps fsynced, renamed, each directory fsynced once, then the index', async () => {
    const fs = new MemoryFs()
    await fs.mkdir('/s', 0o755)
    const store = new Chunks()
    const count = APPLY_BATCH_FILES + 10
    const steps: PlanStep[] = []
    for (let i = 0; i < count; i++) {
      const entry = await remoteFile(`t/${i}`, [text(`tiny ${i}`)], store)
      steps.push(...(await planPull({ local: new Map(), remote: [entry] })).steps.filter(s => s.action === 'write-file'))
    }
    fs.ops.length = 0
    const res = await applyPlan(onlyPlan(steps), { fs, root: '/s', reader: store, onApplied: async (e) => { fs.ops.push(`index ${e.length}`) } })
    assert.equal(res.applied, count)
    // batches load and commit side by side: the order is checked per batch
    const ops = fs.ops
    const at = (op: string): number => ops.indexOf(op)
    for (const [from, to] of [[0, APPLY_BATCH_FILES], [APPLY_BATCH_FILES, count]]) {
      const index = at(`index ${to - from}`)
      assert.ok(index >= 0, `batch ${from}..${to} is recorded`)
      const renames = ops.flatMap((op, i) => {
        const m = /^rename (\S+) \/s\/t\/(\d+)$/.exec(op)
        return m != null && Number(m[2]) >= from && Number(m[2]) < to ? [{ i, temp: m[1] }] : []
      })
      assert.equal(renames.length, to - from)
      const firstRename = Math.min(...renames.map(r => r.i))
      const lastRename = Math.max(...renames.map(r => r.i))
      // every temp of the batch fsynced before the first rename, the directory fsynced after the last, then the index
      for (const { temp } of renames) assert.ok(at(`sync ${temp}`) >= 0 && at(`sync ${temp}`) < firstRename, `${temp} fsynced before the renames`)
      const dirSync = ops.findIndex((op, i) => i > lastRename && op === 'fsyncDir /s/t')
      assert.ok(dirSync > lastRename && dirSync < index, 'the directory is fsynced between the renames and the index')
    }
    assert.equal(new TextDecoder().decode(fs.readFile(`/s/t/${count - 1}`)), `tiny ${count - 1}`)
  })

  it('a batch still fetching does not hold back a later batch of other files; one touching its paths waits for it', async () => {
    for (const shared of [false, true]) {
      const fs = new MemoryFs()
      await fs.mkdir('/s', 0o755)
      const store = new Chunks()
      const swarm = new Chunks()
      const slow = await remoteFile('slow', [text('fetched slowly')], swarm)
      const steps: PlanStep[] = []
      const add = async (entry: ShareEntry): Promise<void> => {
        steps.push(...(await planPull({ local: new Map(), remote: [entry], has: async () => true })).steps.filter(st => st.action === 'write-file'))
      }
      await add(slow)
      for (let i = 1; i < APPLY_BATCH_FILES; i++) await add(await remoteFile(`a/${i}`, [text(`first ${i}`)], store))
      // the second batch: small files, and (when `shared`) the slow file's path once more
      if (shared) await add(await remoteFile('slow', [text('second version')], store))
      for (let i = 0; i < 4; i++) await add(await remoteFile(`b/${i}`, [text(`second ${i}`)], store))
      const release = Promise.withResolvers<void>()
      const inner = sinkFetcher(swarm)
      const fetcher: ChunkFetcher = { fetch: async (cids, options) => { await release.promise; return inner.fetch(cids, options) } }
      const recorded: string[][] = []
      const run = applyPlan(onlyPlan(steps, [slow.chunks?.[0].cid as CID]), {
        fs, root: '/s', reader: store, fetcher, onApplied: async (e) => { recorded.push(e.map(x => x.path)) }
      })
      if (!shared) {
        await waitFor(() => recorded.length === 1)
        assert.deepEqual(recorded[0], ['b/0', 'b/1', 'b/2', 'b/3'], 'the later batch is recorded while the first still fetches')
      } else {
        await new Promise(resolve => setTimeout(resolve, 50))
        assert.equal(recorded.length, 0, 'a batch writing the same path waits')
      }
      release.resolve()
      const res = await run
      assert.equal(recorded.length, 2)
      assert.equal(new TextDecoder().decode(fs.readFile('/s/slow')), 'fetched slowly')
      if (shared) {
        assert.equal(recorded[0].length, APPLY_BATCH_FILES, 'the first batch first')
        assert.deepEqual(res.errors.map(e => e.path), ['slow'], 'the second write of the path finds the first in place')
      } else {
        assert.deepEqual(res, { applied: APPLY_BATCH_FILES + 4, errors: [] })
      }
    }
  })

  it('a batch is recorded in the index while the next one commits: a slow index write does not hold back the renames after it', async () => {
    const fs = new MemoryFs()
    await fs.mkdir('/s', 0o755)
    const store = new Chunks()
    const steps: PlanStep[] = []
    for (let i = 0; i < APPLY_BATCH_FILES + 4; i++) {
      steps.push(...(await planPull({ local: new Map(), remote: [await remoteFile(`t/${i}`, [text(`tiny ${i}`)], store)] })).steps.filter(st => st.action === 'write-file'))
    }
    const held = Promise.withResolvers<void>()
    const recorded: number[] = []
    const run = applyPlan(onlyPlan(steps), {
      fs,
      root: '/s',
      reader: store,
      onApplied: async (e) => {
        recorded.push(e.length)
        // the first batch to reach the index stays in its index write until the other one is recorded too
        if (recorded.length === 1) await held.promise
      }
    })
    await waitFor(() => recorded.length === 2, { timeout: 5_000 })
    assert.deepEqual([...recorded].sort((a, b) => a - b), [4, APPLY_BATCH_FILES])
    held.resolve()
    assert.deepEqual(await run, { applied: APPLY_BATCH_FILES + 4, errors: [] })
  })

  it('a big file still fetching takes no loading slot from the small files: two batches of them load beside it', async () => {
    const fs = new MemoryFs()
    await fs.mkdir('/s', 0o755)
    const store = new Chunks()
    const swarm = new Chunks()
    // never sent: the big file fails alone at the end, no byte of it is ever written
    const lost = await rawCid(text('nobody has this'))
    const MiB = 1024 * 1024
    const big: ShareEntry = { ...await remoteFile('big', [text('x')], new Chunks()), size: APPLY_BATCH_BYTES, chunks: Array.from({ length: APPLY_BATCH_BYTES / MiB }, () => ({ cid: lost, length: MiB })) }
    const steps: PlanStep[] = []
    const add = async (entry: ShareEntry): Promise<void> => {
      steps.push(...(await planPull({ local: new Map(), remote: [entry], has: async () => true })).steps.filter(st => st.action === 'write-file'))
    }
    await add(big)
    for (let i = 0; i < APPLY_BATCH_FILES; i++) await add(await remoteFile(`a/${i}`, [text(`fetched ${i}`)], swarm))
    for (let i = 0; i < 4; i++) await add(await remoteFile(`b/${i}`, [text(`local ${i}`)], store))
    const release = Promise.withResolvers<void>()
    const inner = sinkFetcher(swarm)
    // the big file and the first batch of small files both still fetch
    const fetcher: ChunkFetcher = { fetch: async (cids, options) => { await release.promise; return inner.fetch(cids, options) } }
    const recorded: string[][] = []
    const run = applyPlan(onlyPlan(steps), { fs, root: '/s', reader: store, fetcher, onApplied: async (e) => { recorded.push(e.map(x => x.path)) } })
    await waitFor(() => recorded.length === 1, { timeout: 5_000 })
    assert.deepEqual(recorded[0], ['b/0', 'b/1', 'b/2', 'b/3'])
    release.resolve()
    const res = await run
    assert.equal(res.applied, APPLY_BATCH_FILES + 4)
    assert.deepEqual(res.errors.map(e => [e.path, (e.error as { code?: string }).code]), [['big', 'ERR_CHUNK_UNAVAILABLE']])
  })

  it('a big file is fsynced in the background while it is written and once more at the end; a failed background fsync fails the file', async () => {
    const MiB = 1024 * 1024
    const parts = Array.from({ length: APPLY_SYNC_EVERY_BYTES / MiB + 1 }, () => filled(MiB, 7))
    for (const failFirst of [false, true]) {
      const mem = new MemoryFs()
      await mem.mkdir('/s', 0o755)
      const store = new Chunks()
      const entry = await remoteFile('big', parts, store)
      const fs = counting(mem)
      let syncs = 0
      // an fsync that fails once, as a disk error is reported once per open file: the last fsync then succeeds
      fs.createExclusive = async (path, mode) => {
        const handle = await mem.createExclusive(path, mode)
        return {
          ...handle,
          sync: async () => {
            if (++syncs === 1 && failFirst) throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' })
            await handle.sync()
          }
        }
      }
      const recorded: string[] = []
      const plan = await planPull({ local: new Map(), remote: [entry], has: async () => true })
      const res = await applyPlan(plan, { fs, root: '/s', reader: store, onApplied: async (e) => { recorded.push(...e.map(x => x.path)) } })
      if (!failFirst) {
        assert.equal(syncs, 2, 'one fsync while it is written, one at the end')
        assert.deepEqual(res, { applied: 1, errors: [] })
        const temp = /^rename (\S+) \/s\/big$/.exec(mem.ops.find(op => op.endsWith(' /s/big')) ?? '')?.[1]
        assert.ok(temp != null)
        const at = mem.ops.indexOf(`rename ${temp} /s/big`)
        assert.deepEqual(mem.ops.flatMap((op, i) => op === `sync ${temp}` && i < at ? [i] : []).length, 2, 'both before the rename')
        assert.equal(mem.readFile('/s/big').byteLength, entry.size)
        assert.deepEqual(recorded, ['big'])
      } else {
        assert.equal(syncs, 1, 'the background fsync failed: no last one')
        assert.deepEqual(res.errors.map(e => [e.path, (e.error as { code?: string }).code]), [['big', 'EIO']])
        await assert.rejects(mem.lstat('/s/big'), 'never renamed into place')
        assert.deepEqual(await mem.readdir('/s'), [], 'its temp file is removed')
        assert.deepEqual(recorded, [])
      }
    }
  })

  it('a directory made by someone else between the check and mkdir (another batch loading) is used, a symlink there is not', async () => {
    for (const other of ['dir', 'symlink'] as const) {
      const fs = new MemoryFs()
      await fs.mkdir('/s', 0o755)
      await fs.mkdir('/elsewhere', 0o755)
      const racing: ShareWriteFs = Object.assign(counting(fs), {
        mkdir: async (p: string, m: number) => {
          if (p === '/s/d') {
            if (other === 'dir') await fs.mkdir(p, m)
            else await fs.symlink('/elsewhere', p)
          }
          await fs.mkdir(p, m)
        }
      })
      const store = new Chunks()
      const plan = await planPull({ local: new Map(), remote: [await remoteFile('d/f', [text('x')], store)], has: async () => true })
      const res = await applyPlan(plan, { fs: racing, root: '/s', reader: store, onApplied: async () => {} })
      if (other === 'dir') {
        assert.deepEqual(res, { applied: 1, errors: [] })
        assert.equal(new TextDecoder().decode(fs.readFile('/s/d/f')), 'x')
      } else {
        assert.equal((res.errors[0]?.error as { reason?: string }).reason, 'symlinked-parent')
        assert.deepEqual(await fs.readdir('/elsewhere'), [])
      }
    }
  })

  it('disk full in a later batch: the batches before are committed and recorded, the run stops with DiskFullError, no temp file left', async () => {
    const fs = new MemoryFs({ capacity: 30_000 })
    await fs.mkdir('/s', 0o755)
    const store = new Chunks()
    const steps: PlanStep[] = []
    for (let i = 0; i <= APPLY_BATCH_FILES; i++) {
      // the first file past the first batch does not fit
      const entry = await remoteFile(`f${i}`, [filled(i < APPLY_BATCH_FILES ? 100 : 4200, i % 256)], store)
      steps.push(...(await planPull({ local: new Map(), remote: [entry] })).steps)
    }
    let recorded = 0
    await assert.rejects(applyPlan(onlyPlan(steps), { fs, root: '/s', reader: store, onApplied: async (e) => { recorded += e.length } }),
      (err: unknown) => err instanceof DiskFullError)
    assert.equal(recorded, APPLY_BATCH_FILES)
    const names = await fs.readdir('/s')
    assert.equal(names.length, APPLY_BATCH_FILES)
    assert.ok(names.every(n => /^f\d+$/.test(n)), 'no temp file')
    assert.equal(fs.exists(`/s/f${APPLY_BATCH_FILES}`), false)
  })

  it('a replacement whose chunks mostly stay in place starts as a kernel copy of the old file: only the changed chunk is written', async () => {
    await inTempDir(async (root) => {
      const parts = Array.from({ length: 40 }, (_, i) => filled(16 * 1024, i))
      await writeFile(`${root}/big.bin`, Buffer.concat(parts))
      const fs = counting(nodeFs)
      const local = await indexed(fs, root, 'big.bin', parts)
      const swarm = new Chunks()
      // a byte changed in chunk 17, the last chunk cut short: a shorter file
      const next = parts.map(p => p.slice())
      next[17][100] ^= 0xff
      next[39] = next[39].subarray(0, 1000)
      const remote = await remoteFile('big.bin', next, swarm, { version: { [PEER]: 2 } })
      const plan = await planPull({ local: new Map([['big.bin', local]]), remote: [remote], has: async () => false })
      assert.equal(plan.fetch.length, 2)
      const kept: string[] = []
      const res = await applyPlan(plan, {
        fs, root, reader: new Chunks(), fetcher: sinkFetcher(swarm), onApplied: async () => {}, beforeReplace: async (old) => { kept.push(old.path) }
      })
      assert.deepEqual(res, { applied: 1, errors: [] })
      assert.ok((await readFile(`${root}/big.bin`)).equals(Buffer.concat(next)), 'exact bytes')
      assert.deepEqual(fs.copies, [`${root}/big.bin`])
      assert.deepEqual(fs.reads, [], 'no unchanged chunk read back or re-hashed in user space')
      assert.deepEqual(kept, ['big.bin'], 'history saw the old version before it went')
      // and growing: the old bytes stay, the new tail is written
      const grown = [...next.slice(0, 39), filled(16 * 1024, 39), filled(5000, 77)]
      const bigger = await remoteFile('big.bin', grown, swarm, { version: { [PEER]: 3 } })
      const local2 = await indexed(fs, root, 'big.bin', next)
      const plan2 = await planPull({ local: new Map([['big.bin', local2]]), remote: [bigger], has: async () => false })
      assert.deepEqual((await applyPlan(plan2, { fs, root, reader: new Chunks(), fetcher: sinkFetcher(swarm), onApplied: async () => {} })).errors, [])
      assert.ok((await readFile(`${root}/big.bin`)).equals(Buffer.concat(grown)))
    })
  })

  it('a rename is a rename: no byte read, copied or fetched; the index gets both paths at once', async () => {
    await inTempDir(async (root) => {
      await mkdir(`${root}/old`)
      const parts = [filled(3000, 1), filled(2000, 2)]
      await writeFile(`${root}/old/x.bin`, Buffer.concat(parts))
      const fs = counting(nodeFs)
      const local = await indexed(fs, root, 'old/x.bin', parts)
      const ino = (await stat(`${root}/old/x.bin`)).ino
      const swarm = new Chunks()
      const { local: _l, ...shared } = local
      const moved: ShareEntry = { ...shared, path: 'new/y.bin', version: { [PEER]: 2 } }
      const tomb: ShareEntry = { ...shared, deleted: true, size: 0, chunks: undefined, version: { [PEER]: 2 } }
      const plan = await planPull({ local: new Map([['old/x.bin', local]]), remote: [moved, tomb] })
      const store = new Chunks()
      const fetcher = sinkFetcher(swarm)
      const recorded: LocalEntry[][] = []
      const history: Array<[string, string | undefined]> = []
      const res = await applyPlan(plan, {
        fs,
        root,
        reader: store,
        fetcher,
        onApplied: async (e) => { recorded.push(e) },
        beforeReplace: async (old, _next, options) => { history.push([old.path, options.movedTo?.path]) }
      })
      assert.deepEqual(res, { applied: 2, errors: [] })
      assert.equal((await stat(`${root}/new/y.bin`)).ino, ino, 'the same file, renamed')
      assert.deepEqual(await readdir(`${root}/old`), [])
      assert.deepEqual([fs.reads, fs.copies, store.gets, fetcher.asked], [[], [], 0, 0])
      assert.deepEqual(recorded.map(r => r.map(e => `${e.path}${e.deleted === true ? ' (deleted)' : ''}`)), [['new/y.bin', 'old/x.bin (deleted)']])
      assert.equal(recorded[0][0].local?.ino, ino)
      assert.deepEqual(history, [['old/x.bin', 'new/y.bin']], 'history keeps the old path without copying its chunks')
    })
  })

  it('each written file comes with its temp file\'s stamp for the store (no lstat after the rename); a rename and a fake fs give none', async () => {
    await inTempDir(async (root) => {
      await writeFile(`${root}/old.bin`, filled(3000, 1))
      const local = await indexed(nodeFs, root, 'old.bin', [filled(3000, 1)])
      const swarm = new Chunks()
      const { local: _l, ...shared } = local
      const moved: ShareEntry = { ...shared, path: 'moved.bin', version: { [PEER]: 2 } }
      const tomb: ShareEntry = { ...shared, deleted: true, size: 0, chunks: undefined, version: { [PEER]: 2 } }
      const added = await Promise.all(['a.bin', 'sub/b.bin'].map(async (path, i) => remoteFile(path, [filled(100 + i, 7 + i), filled(50, 9)], swarm)))
      const plan = await planPull({ local: new Map([['old.bin', local]]), remote: [moved, tomb, ...added, { path: 'sub', type: 'dir', size: 0, mtime: 1, mode: 0o755, version: { [PEER]: 1 }, modifiedBy: PEER }] })
      const calls: Array<{ entries: LocalEntry[], options: AppliedOptions }> = []
      const res = await applyPlan(plan, { fs: nodeFs, root, reader: new Chunks(), fetcher: sinkFetcher(swarm), onApplied: async (entries, options) => { calls.push({ entries, options }) } })
      assert.deepEqual(res.errors, [])
      const stats = new Map(calls.flatMap(c => [...c.options.stats ?? []]))
      assert.deepEqual([...stats.keys()].sort(), ['a.bin', 'sub/b.bin'], 'the moved file was renamed, not written: the store takes its own stat')
      for (const [path, stamp] of stats) {
        const now = await lstat(`${root}/${path}`, { bigint: true })
        assert.deepEqual([stamp.size, stamp.mtimeNs, stamp.ino, stamp.dev], [now.size, now.mtimeNs, now.ino, now.dev], path)
        const entry = calls.flatMap(c => c.entries).find(e => e.path === path)
        const plain = await lstat(`${root}/${path}`)
        assert.deepEqual(entry?.local, { ino: plain.ino, mtimeMs: plain.mtimeMs }, `${path}: the entry's inode and mtime as the scanner reads them`)
      }
      // a filesystem whose handles cannot fstat: no stamps, the store lstats as before
      const fs = new MemoryFs()
      await fs.mkdir('/s', 0o755)
      const onMem: AppliedOptions[] = []
      await applyPlan(await planPull({ local: new Map(), remote: [added[0]] }), { fs, root: '/s', reader: new Chunks(), fetcher: sinkFetcher(swarm), onApplied: async (_e, options) => { onMem.push(options) } })
      assert.deepEqual(onMem.map(o => o.stats?.size ?? 0), [0])
    })
  })

  it('a move whose source changed locally is written from its chunks, and the changed source is kept', async () => {
    const fs = new MemoryFs()
    const parts = [text('abcd'), text('efgh')]
    fs.writeFile('/s/x', 'abcdefgh', { mtimeMs: 5000 })
    const local = await indexed(fs, '/s', 'x', parts)
    const store = new Chunks()
    for (const p of parts) await store.add(p)
    const { local: _l, ...shared } = local
    const plan = await planPull({
      local: new Map([['x', local]]),
      remote: [{ ...shared, path: 'y', version: { [PEER]: 2 } }, { ...shared, deleted: true, size: 0, chunks: undefined, version: { [PEER]: 2 } }],
      has: async () => true
    })
    fs.writeFile('/s/x', 'local edit', { mtimeMs: 6000 })
    const res = await applyPlan(plan, { fs, root: '/s', reader: store, onApplied: async () => {} })
    assert.equal(new TextDecoder().decode(fs.readFile('/s/y')), 'abcdefgh')
    assert.equal(new TextDecoder().decode(fs.readFile('/s/x')), 'local edit')
    assert.deepEqual(res.errors.map(e => [e.path, (e.error as { code?: string }).code]), [['x', 'ERR_LOCAL_CHANGED']])
  })

  it('kill -9 during a batch (while writing, between renames): every real name holds a whole version, temp files are cleaned', async () => {
    await inTempDir(async (root) => {
      await mkdir(`${root}/d`)
      for (const [phase, stopAt] of [['get', 5], ['rename', 2], ['rename', 0]] as const) {
        for (let i = 0; i < 4; i++) await writeFile(`${root}/d/f${i}`, crashOld)
        await killWhenPaused(join(here, 'crash-batch-writer.js'), [root, phase, String(stopAt)])
        const versions = []
        for (let i = 0; i < 4; i++) {
          const bytes = await readFile(`${root}/d/f${i}`)
          const whole = bytes.equals(Buffer.from(crashOld)) ? 'old' : bytes.equals(Buffer.from(await crashFile(i))) ? 'new' : 'PARTIAL'
          versions.push(whole)
        }
        assert.ok(!versions.includes('PARTIAL'), `${phase} ${stopAt}: ${versions.join(' ')}`)
        if (phase === 'rename') assert.deepEqual(versions, ['new', 'new', 'new', 'new'].map((v, i) => i < stopAt ? v : 'old'))
        else assert.deepEqual(versions, ['old', 'old', 'old', 'old'], 'nothing renamed before every chunk is written')
        assert.equal(await cleanupTempFiles(nodeFs, root), phase === 'get' ? 4 : 4 - stopAt)
        assert.deepEqual((await readdir(`${root}/d`)).sort(), ['f0', 'f1', 'f2', 'f3'])
      }
    })
  })
})
