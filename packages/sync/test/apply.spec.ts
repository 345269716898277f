import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { inTempDir } from '@homecloud/test-support'
import {
  applyPlan, applyStep, cleanupTempFiles, DiskFullError, LocalChangedError, MemoryFs, nodeFs, PathRejectedError,
  type ApplyInit, type ChunkReader, type LocalEntry, type PlannedChunk, type PlanStep, type ShareEntry, type ShareWriteFs
} from '../src/index.js'
import { patternChunk } from './crash-data.js'
import { killWhenPaused, rawCid, shareWithHistory, text } from './helpers.js'
import type { CID } from 'multiformats/cid'

const here = dirname(fileURLToPath(import.meta.url))

/** A block store double: the chunks it holds, and how often it was asked. */
function memoryReader (chunks: Uint8Array[] = []): ChunkReader & { add(b: Uint8Array): Promise<CID>, gets: number } {
  const map = new Map<string, Uint8Array>()
  const reader = {
    gets: 0,
    add: async (b: Uint8Array) => {
      const cid = await rawCid(b)
      map.set(cid.toString(), b)
      return cid
    },
    get: async (cid: CID) => {
      reader.gets++
      return map.get(cid.toString())
    }
  }
  for (const c of chunks) void reader.add(c)
  return reader
}

async function writeStep (path: string, parts: Uint8Array[], reader: ReturnType<typeof memoryReader>, init: Partial<Extract<PlanStep, { action: 'write-file' }>> = {}): Promise<Extract<PlanStep, { action: 'write-file' }>> {
  const chunks: PlannedChunk[] = []
  let offset = 0
  for (const p of parts) {
    chunks.push({ cid: await reader.add(p), offset, length: p.byteLength })
    offset += p.byteLength
  }
  const entry: ShareEntry = { path, type: 'file', size: offset, mtime: Date.UTC(2023, 5, 6, 7, 8, 9, 321), mode: 0o640, version: { peer: 1 }, modifiedBy: 'peer', chunks: chunks.map(c => ({ cid: c.cid, length: c.length })) }
  return { action: 'write-file', path, entry, chunks, ...init }
}

async function localEntry (root: string, path: string): Promise<LocalEntry> {
  const s = await nodeFs.lstat(`${root}/${path}`)
  return { path, type: s.type === 'dir' ? 'dir' : s.type === 'symlink' ? 'symlink' : 'file', size: s.type === 'file' ? s.size : 0, mtime: Math.round(s.mtimeMs), mode: s.mode & 0o777, version: { me: 1 }, modifiedBy: 'me', chunks: [], local: { ino: s.ino, mtimeMs: s.mtimeMs } }
}

/** An entry from peer `p`. */
const peerEntry = (path: string, type: ShareEntry['type'], extra: Partial<ShareEntry> = {}): ShareEntry => ({ path, type, size: 0, mtime: 0, mode: 0o755, version: { p: 2 }, modifiedBy: 'p', ...extra })

/** Peer `p` deleted `path`, which the index knows as it is on disk now. */
async function deleteStep (root: string, path: string, type: ShareEntry['type'] = 'file'): Promise<Extract<PlanStep, { action: 'delete' }>> {
  return { action: 'delete', path, entry: peerEntry(path, type, { deleted: true }), expect: await localEntry(root, path) }
}

describe('apply (D7)', () => {
  it('writes through a temp file: write, fsync, rename, directory fsync, then the index', async () => {
    const fs = new MemoryFs()
    await fs.mkdir('/s', 0o755)
    const reader = memoryReader()
    const step = await writeStep('dir/new.txt', [text('hello '), text('world')], reader)
    fs.ops.length = 0
    const recorded: LocalEntry[] = []
    const result = await applyPlan({ steps: [step], fetch: [], bytesToFetch: 0, bytesLocal: 0, conflicts: [], errors: [] }, {
      fs, root: '/s', reader, onApplied: async (e) => { recorded.push(...e); fs.ops.push('index') }
    })
    assert.deepEqual(result, { applied: 1, errors: [] })
    assert.equal(new TextDecoder().decode(fs.readFile('/s/dir/new.txt')), 'hello world')
    const ops = fs.ops.map(o => o.replace(/\.homecloud-tmp-[0-9a-f]+/, 'TEMP'))
    assert.deepEqual(ops, [
      'mkdir /s/dir', 'fsyncDir /s', 'create /s/dir/TEMP', 'write /s/dir/TEMP', 'write /s/dir/TEMP',
      'sync /s/dir/TEMP', 'rename /s/dir/TEMP /s/dir/new.txt', 'fsyncDir /s/dir', 'index'
    ])
    const s = await fs.lstat('/s/dir/new.txt')
    assert.equal(s.mode & 0o777, 0o640)
    assert.equal(s.mtimeMs, step.entry.mtime)
    assert.deepEqual(recorded[0].local, { ino: s.ino, mtimeMs: s.mtimeMs })
  })

  it('copies local chunks from their source files (hash re-checked) and falls back when a source changed', async () => {
    await inTempDir(async (root) => {
      await writeFile(`${root}/src.bin`, 'AAAABBBB')
      const reader = memoryReader()
      const step = await writeStep('copy.bin', [text('BBBB'), text('AAAA')], reader)
      step.chunks[0].source = { path: 'src.bin', offset: 4, length: 4 }
      step.chunks[1].source = { path: 'src.bin', offset: 0, length: 4 }
      await applyStep(step, { fs: nodeFs, root, reader })
      assert.equal(await readFile(`${root}/copy.bin`, 'utf8'), 'BBBBAAAA')
      assert.equal(reader.gets, 0, 'nothing read from the block store')
      // the source no longer holds those bytes: the block store serves them
      await writeFile(`${root}/src.bin`, 'XXXXYYYY')
      const again = await writeStep('copy2.bin', [text('BBBB'), text('AAAA')], reader)
      again.chunks[0].source = { path: 'src.bin', offset: 4, length: 4 }
      await applyStep(again, { fs: nodeFs, root, reader })
      assert.equal(await readFile(`${root}/copy2.bin`, 'utf8'), 'BBBBAAAA')
      assert.equal(reader.gets, 2)
    })
  })

  it('fetches a missing chunk through the fetcher, and fails alone when no one has it', async () => {
    const fs = new MemoryFs()
    await fs.mkdir('/s', 0o755)
    const store = memoryReader()
    const remoteOnly = memoryReader()
    const step = await writeStep('f', [text('remote')], remoteOnly)
    const fetched: string[] = []
    const fetcher = { fetch: async (cids: CID[]) => { for (const c of cids) { fetched.push(c.toString()); const b = await remoteOnly.get(c); if (b != null) await store.add(b) } } }
    await applyStep(step, { fs, root: '/s', reader: store, fetcher })
    assert.equal(new TextDecoder().decode(fs.readFile('/s/f')), 'remote')
    assert.equal(fetched.length, 1)
    const missing = await writeStep('g', [text('nobody has this')], memoryReader())
    const other = await writeStep('h', [text('remote')], remoteOnly)
    const res = await applyPlan({ steps: [missing, other], fetch: [], bytesToFetch: 0, bytesLocal: 0, conflicts: [], errors: [] }, { fs, root: '/s', reader: store, onApplied: async () => {} })
    assert.equal(res.applied, 1)
    assert.equal(res.errors[0].path, 'g')
    assert.equal((res.errors[0].error as { code?: string }).code, 'ERR_CHUNK_UNAVAILABLE')
    assert.equal(fs.exists('/s/g'), false)
    assert.deepEqual((await fs.readdir('/s')).sort(), ['f', 'h'], 'no temp file left')
  })

  it('refuses hostile paths from a peer; a canary outside the share is untouched', async () => {
    await inTempDir(async (base) => {
      const root = join(base, 'share')
      await mkdir(root)
      await writeFile(join(base, 'canary'), 'canary')
      await mkdir(join(base, 'etc'))
      const reader = memoryReader()
      const hostile = ['../canary', '../../canary', 'a/../../canary', `${base}/canary`, '/etc/x', 'C:\\canary', '..\\canary', 'x\u0000y', 'CON', 'a/./../canary', '.homecloud-tmp-x']
      const steps = await Promise.all(hostile.map(async p => writeStep(p, [text('pwned')], reader)))
      const res = await applyPlan({ steps, fetch: [], bytesToFetch: 0, bytesLocal: 0, conflicts: [], errors: [] }, { fs: nodeFs, root, reader, onApplied: async () => { assert.fail('nothing recorded') } })
      assert.equal(res.applied, 0)
      assert.equal(res.errors.length, hostile.length)
      assert.ok(res.errors.every(e => e.error instanceof PathRejectedError))
      assert.equal(await readFile(join(base, 'canary'), 'utf8'), 'canary')
      assert.deepEqual(await readdir(join(base, 'etc')), [])
      assert.deepEqual(await readdir(root), [])
    })
  })

  it('never writes through a symlinked parent (a peer replaced a directory with a link)', async () => {
    await inTempDir(async (base) => {
      const root = join(base, 'share')
      const outside = join(base, 'outside')
      await mkdir(root)
      await mkdir(outside)
      await symlink(outside, join(root, 'docs'))
      const reader = memoryReader()
      await assert.rejects(applyStep(await writeStep('docs/evil.txt', [text('x')], reader), { fs: nodeFs, root, reader }),
        (err: unknown) => err instanceof PathRejectedError && err.reason === 'symlinked-parent')
      await assert.rejects(applyStep({ action: 'mkdir', path: 'docs/sub', entry: { path: 'docs/sub', type: 'dir', size: 0, mtime: 0, mode: 0o755, version: { p: 1 }, modifiedBy: 'p' } }, { fs: nodeFs, root, reader }),
        { reason: 'symlinked-parent' })
      assert.deepEqual(await readdir(outside), [])
    })
  })

  it('never overwrites a local edit the index has not seen', async () => {
    await inTempDir(async (root) => {
      await writeFile(`${root}/f`, 'v1')
      const expect = await localEntry(root, 'f')
      await writeFile(`${root}/f`, 'local edit!')
      const reader = memoryReader()
      await assert.rejects(applyStep(await writeStep('f', [text('remote')], reader, { expect }), { fs: nodeFs, root, reader }), LocalChangedError)
      assert.equal(await readFile(`${root}/f`, 'utf8'), 'local edit!')
      await assert.rejects(applyStep(await writeStep('new', [text('remote')], reader), { fs: nodeFs, root, reader }).then(async () =>
        applyStep(await writeStep('new', [text('again')], reader), { fs: nodeFs, root, reader })), { code: 'ERR_LOCAL_CHANGED' })
      assert.equal(await readFile(`${root}/new`, 'utf8'), 'remote')
      assert.deepEqual((await readdir(root)).filter(n => n.startsWith('.homecloud')), [])
    })
  })

  it('deletes, creates directories and symlinks (links written as links)', async () => {
    await inTempDir(async (root) => {
      await writeFile(`${root}/old`, 'bye')
      const reader = memoryReader()
      const history: string[] = []
      const init: ApplyInit = { fs: nodeFs, root, reader, beforeReplace: async (old) => { history.push(old.path) } }
      const del = await applyStep(await deleteStep(root, 'old'), init)
      assert.equal(del.deleted, true)
      assert.equal(del.local, undefined)
      await assert.rejects(stat(`${root}/old`), { code: 'ENOENT' })
      assert.deepEqual(history, ['old'], 'history saw the file before it went')
      const dir = await applyStep({ action: 'mkdir', path: 'd', entry: peerEntry('d', 'dir') }, init)
      assert.ok(dir.local != null)
      await applyStep({ action: 'symlink', path: 'd/link', entry: peerEntry('d/link', 'symlink', { target: '../../../etc/passwd' }) }, init)
      assert.equal((await nodeFs.lstat(`${root}/d/link`)).type, 'symlink')
      assert.equal(await nodeFs.readlink(`${root}/d/link`), '../../../etc/passwd')
      // a non-empty directory that a peer deleted is kept
      await writeFile(`${root}/d/unsynced`, 'x')
      await assert.rejects(applyStep(await deleteStep(root, 'd', 'dir'), init), { code: 'ERR_LOCAL_CHANGED' })
    })
  })

  it('keeps 1% free: a write that would cross it fails with DiskFullError, target and index untouched', async () => {
    const fs = new MemoryFs({ capacity: 10_000 })
    fs.writeFile('/s/target', 'old content')
    const expect: LocalEntry = { path: 'target', type: 'file', size: 11, mtime: 0, mode: 0o644, version: { me: 1 }, modifiedBy: 'me', local: { ino: (await fs.lstat('/s/target')).ino, mtimeMs: (await fs.lstat('/s/target')).mtimeMs } }
    const reader = memoryReader()
    const step = await writeStep('target', [new Uint8Array(9_900)], reader, { expect })
    let recorded = 0
    await assert.rejects(applyPlan({ steps: [step], fetch: [], bytesToFetch: 0, bytesLocal: 0, conflicts: [], errors: [] }, { fs, root: '/s', reader, onApplied: async () => { recorded++ } }),
      (err: unknown) => err instanceof DiskFullError && err.code === 'ERR_DISK_FULL' && err.reserveBytes === 100)
    assert.equal(recorded, 0)
    assert.equal(new TextDecoder().decode(fs.readFile('/s/target')), 'old content')
    assert.deepEqual(await fs.readdir('/s'), ['target'])
  })

  it('ENOSPC during the write drops the temp file and reports DiskFullError', async () => {
    const fs = new MemoryFs({ capacity: 1000 })
    await fs.mkdir('/s', 0o755)
    const reader = memoryReader()
    const step = await writeStep('f', [new Uint8Array(600), new Uint8Array(300)], reader)
    const racing = { get: async (cid: CID) => { fs.writeFile('/other-process', new Uint8Array(200)); return reader.get(cid) } }
    await assert.rejects(applyStep(step, { fs, root: '/s', reader: racing, minFreeFraction: 0 }), DiskFullError)
    assert.deepEqual(await fs.readdir('/s'), [])
    assert.equal((await fs.statfs('/')).freeBytes, 800, 'only the other process\'s bytes remain')
  })

  it('on a real full filesystem (tmpfs): pauses with DiskFullError, no corruption, works once space returns', async (t) => {
    if (process.getuid?.() !== 0) {
      t.skip('needs root to mount a 2 MiB tmpfs')
      console.log('skipped: mounting a tmpfs needs root')
      return
    }
    await inTempDir(async (root) => {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', root])
      try {
        await writeFile(`${root}/keep`, 'precious')
        const reader = memoryReader()
        const big = await writeStep('big', [new Uint8Array(1024 * 1024).fill(1), new Uint8Array(1024 * 1024).fill(2)], reader)
        await assert.rejects(applyStep(big, { fs: nodeFs, root, reader }), DiskFullError)
        // space taken by someone else during the write: ENOSPC mid-write
        const half = await writeStep('half', [new Uint8Array(900 * 1024).fill(3), new Uint8Array(900 * 1024).fill(4)], reader)
        // every read waits for the filler (chunks are read several at a time)
        let filling: Promise<void> | undefined
        const racing = { get: async (cid: CID) => { await (filling ??= writeFile(`${root}/filler`, new Uint8Array(1000 * 1024))); return reader.get(cid) } }
        await assert.rejects(applyStep(half, { fs: nodeFs, root, reader: racing, minFreeFraction: 0 }), DiskFullError)
        assert.deepEqual((await readdir(root)).sort(), ['filler', 'keep'], 'no temp file, no partial file')
        assert.equal(await readFile(`${root}/keep`, 'utf8'), 'precious')
        await nodeFs.unlink(`${root}/filler`)
        const small = await writeStep('small', [new Uint8Array(1000).fill(5)], reader)
        await applyStep(small, { fs: nodeFs, root, reader })
        assert.equal((await readFile(`${root}/small`)).byteLength, 1000)
      } finally {
        execFileSync('umount', [root])
      }
    })
  })

  it('kill -9 mid-write: never a partial file under the real name; leftover temp files are cleaned', async () => {
    await inTempDir(async (root) => {
      const old = new Uint8Array(1000).fill(9)
      await writeFile(`${root}/target.bin`, old)
      for (const stopAt of [0, 3, 11]) {
        await killWhenPaused(join(here, 'crash-writer.js'), [root, 'target.bin', '16', String(stopAt)])
        assert.deepEqual(await readFile(`${root}/target.bin`), Buffer.from(old), `after kill at chunk ${stopAt} the old version is intact`)
        const temps = (await readdir(root)).filter(n => n.startsWith('.homecloud-tmp-'))
        assert.equal(temps.length, 1, 'a temp file was left behind by the kill')
        assert.equal(await cleanupTempFiles(nodeFs, root), 1)
        assert.deepEqual(await readdir(root), ['target.bin'])
      }
      // a run that is not killed finishes the file
      const child = spawn(process.execPath, [join(here, 'crash-writer.js'), root, 'target.bin', '16', '-1'], { stdio: ['ignore', 'pipe', 'inherit'] })
      const code = await new Promise(resolve => child.once('exit', resolve))
      assert.equal(code, 0)
      const written = await readFile(`${root}/target.bin`)
      assert.equal(written.byteLength, 16 * 65536)
      for (let i = 0; i < 16; i++) assert.ok(Buffer.from((await patternChunk(i)).bytes).equals(written.subarray(i * 65536, (i + 1) * 65536)))
    })
  })

  it('cleanupTempFiles walks the whole share without following links', async () => {
    await inTempDir(async (base) => {
      const root = join(base, 'share')
      await mkdir(`${root}/a/b`, { recursive: true })
      await mkdir(`${base}/outside`)
      await writeFile(`${root}/a/b/.homecloud-tmp-1`, 'x')
      await writeFile(`${root}/.homecloud-tmp-2`, 'x')
      await writeFile(`${root}/a/real`, 'x')
      await writeFile(`${base}/outside/.homecloud-tmp-3`, 'not ours')
      await symlink(`${base}/outside`, `${root}/link`)
      await symlink('.', `${root}/a/loop`)
      assert.equal(await cleanupTempFiles(nodeFs, root), 2)
      assert.deepEqual(await readdir(`${base}/outside`), ['.homecloud-tmp-3'])
      assert.deepEqual((await readdir(`${root}/a`)).sort(), ['b', 'loop', 'real'])
    })
  })

  describe('a big file replaced (linked aside), deleted or turned into a directory (renamed aside): its aside name goes once the change is recorded', () => {
    const plan = (steps: PlanStep[]): Parameters<typeof applyPlan>[0] => ({ steps, fetch: [], bytesToFetch: 0, bytesLocal: 0, conflicts: [], errors: [] })
    const temps = async (root: string): Promise<string[]> => (await readdir(root)).filter(n => n.startsWith('.homecloud-tmp-'))

    /** nodeFs, logging its links, renames, unlinks and directory fsyncs (share-relative, temp names as TEMP). */
    function loggedFs (root: string, ops: string[], faults: { link?: Error, rename?: Error, unlink?: Error, slowAsideMs?: number } = {}): ShareWriteFs {
      const rel = (p: string): string => p.slice(root.length + 1).replace(/\.homecloud-tmp-[0-9a-f]+/, 'TEMP')
      const link = nodeFs.link
      assert.ok(link != null)
      return {
        ...nodeFs,
        link: async (existing, path) => {
          ops.push(`link ${rel(existing)} ${rel(path)}`)
          if (faults.link != null) throw faults.link
          await link(existing, path)
        },
        rename: async (from, to) => {
          ops.push(`rename ${rel(from)} ${rel(to)}`)
          if (faults.rename != null) throw faults.rename
          await nodeFs.rename(from, to)
        },
        unlink: async (path) => {
          ops.push(`unlink ${rel(path)}`)
          if (faults.unlink != null) throw faults.unlink
          // freeing a big file's blocks takes a while (ext4 with discard): the unlink of an aside name is slow
          if (faults.slowAsideMs != null && path.includes('.homecloud-tmp-')) await new Promise(resolve => setTimeout(resolve, faults.slowAsideMs))
          await nodeFs.unlink(path)
        },
        mkdir: async (path, mode) => { ops.push(`mkdir ${rel(path)}`); await nodeFs.mkdir(path, mode) },
        rmdir: async (path) => { ops.push(`rmdir ${rel(path)}`); await nodeFs.rmdir(path) },
        fsyncDir: async (path) => { ops.push(`fsyncDir ${rel(path)}`); await nodeFs.fsyncDir(path) }
      }
    }

    it('links, renames, fsyncs, records, then unlinks the aside name; a small file is renamed over as before', async () => {
      await inTempDir(async (root) => {
        await writeFile(`${root}/big`, 'old big version')
        await writeFile(`${root}/small`, 'old')
        const reader = memoryReader()
        const big = await writeStep('big', [text('new big version!')], reader, { expect: await localEntry(root, 'big') })
        const small = await writeStep('small', [text('new')], reader, { expect: await localEntry(root, 'small') })
        const ops: string[] = []
        const seen: string[] = []
        const result = await applyPlan(plan([big, small]), {
          fs: loggedFs(root, ops),
          root,
          reader,
          asideMinBytes: 10,
          beforeReplace: async (old) => { seen.push(`${old.path}: ${await readFile(`${root}/${old.path}`, 'utf8')}`) },
          onApplied: async () => {
            ops.push('index')
            // the old version lives on under the aside name only: the real name holds the new one
            const aside = await temps(root)
            assert.equal(aside.length, 1)
            assert.equal(await readFile(`${root}/${aside[0]}`, 'utf8'), 'old big version')
            assert.equal(await readFile(`${root}/big`, 'utf8'), 'new big version!')
          }
        })
        assert.deepEqual(result, { applied: 2, errors: [] })
        assert.deepEqual(seen, ['big: old big version', 'small: old'], 'history read each old version intact')
        // only the big file is linked aside; its aside name goes after the index
        assert.deepEqual(ops, ['link big TEMP', 'rename TEMP big', 'rename TEMP small', 'fsyncDir ', 'index', 'unlink TEMP'])
        assert.deepEqual(await temps(root), [], 'no aside name is left once apply returns')
        assert.equal(await readFile(`${root}/small`, 'utf8'), 'new')
        assert.equal((await stat(`${root}/big`)).nlink, 1)
      })
    })

    it('a link that fails leaves a plain rename; a rename that fails removes the aside name and keeps the old file', async () => {
      await inTempDir(async (root) => {
        await writeFile(`${root}/big`, 'old big version')
        const reader = memoryReader()
        const init = { root, reader, asideMinBytes: 10, onApplied: async () => {} }
        const refused = Object.assign(new Error('link refused'), { code: 'EPERM' })
        const broken = Object.assign(new Error('rename failed'), { code: 'EIO' })
        let ops: string[] = []
        const failed = await applyPlan(plan([await writeStep('big', [text('first new version')], reader, { expect: await localEntry(root, 'big') })]),
          { ...init, fs: loggedFs(root, ops, { rename: broken }) })
        assert.deepEqual(failed.errors.map(e => e.error.message), ['rename failed'])
        assert.deepEqual(ops, ['link big TEMP', 'rename TEMP big', 'unlink TEMP', 'unlink TEMP'], 'the aside name and the temp file both go')
        assert.equal(await readFile(`${root}/big`, 'utf8'), 'old big version')
        assert.deepEqual(await temps(root), [])
        ops = []
        const plain = await applyPlan(plan([await writeStep('big', [text('second new version')], reader, { expect: await localEntry(root, 'big') })]),
          { ...init, fs: loggedFs(root, ops, { link: refused }) })
        assert.deepEqual(plain, { applied: 1, errors: [] })
        assert.deepEqual(ops, ['link big TEMP', 'rename TEMP big', 'fsyncDir '])
        assert.equal(await readFile(`${root}/big`, 'utf8'), 'second new version')
        assert.deepEqual(await temps(root), [])
      })
    })

    it('an aside name left by a crash goes with the start-up temp file cleanup; the file under its real name stays', async () => {
      await inTempDir(async (root) => {
        await mkdir(`${root}/d`)
        await writeFile(`${root}/d/big`, 'current version')
        const link = nodeFs.link
        assert.ok(link != null)
        await link(`${root}/d/big`, `${root}/d/.homecloud-tmp-0123456789abcdef`)
        assert.equal((await stat(`${root}/d/big`)).nlink, 2)
        assert.equal(await cleanupTempFiles(nodeFs, root), 1)
        assert.deepEqual(await readdir(`${root}/d`), ['big'])
        assert.equal(await readFile(`${root}/d/big`, 'utf8'), 'current version')
        assert.equal((await stat(`${root}/d/big`)).nlink, 1)
      })
    })

    it('a delete: history first, rename aside, directory fsync, index, then the aside name goes; a small file is unlinked as before', async () => {
      await inTempDir(async (root) => {
        await writeFile(`${root}/big`, 'old big version')
        await writeFile(`${root}/small`, 'old')
        const ops: string[] = []
        const deletes = await Promise.all(['big', 'small'].map(async path => deleteStep(root, path)))
        const result = await applyPlan(plan(deletes), {
          fs: loggedFs(root, ops),
          root,
          reader: memoryReader(),
          asideMinBytes: 10,
          beforeReplace: async (old) => { ops.push(`history ${old.path}: ${await readFile(`${root}/${old.path}`, 'utf8')}`) },
          onApplied: async (entries) => {
            ops.push(`index ${entries.map(e => e.path).join()}`)
            if (entries[0].path !== 'big') return
            // the deleted version lives on under the aside name only until the index has the tombstone
            const aside = await temps(root)
            assert.equal(aside.length, 1)
            assert.equal(await readFile(`${root}/${aside[0]}`, 'utf8'), 'old big version')
            await assert.rejects(stat(`${root}/big`), { code: 'ENOENT' })
          }
        })
        assert.deepEqual(result, { applied: 2, errors: [] })
        // the aside name of big may go while small is deleted (in the background): compare each step's order
        const rest = ops.filter(o => o !== 'unlink TEMP')
        assert.deepEqual(rest, ['history big: old big version', 'rename big TEMP', 'fsyncDir ', 'index big', 'history small: old', 'unlink small', 'fsyncDir ', 'index small'])
        assert.equal(ops.filter(o => o === 'unlink TEMP').length, 1)
        assert.ok(ops.indexOf('unlink TEMP') > ops.indexOf('index big'), 'the aside name goes after the index')
        assert.deepEqual(await readdir(root), [], 'no aside name is left once apply returns')
      })
    })

    it('a file turned into a directory: the file is renamed aside before the mkdir, its name goes after the index', async () => {
      await inTempDir(async (root) => {
        await writeFile(`${root}/d`, 'a big file, now a dir')
        const ops: string[] = []
        const seen: string[] = []
        const result = await applyPlan(plan([{ action: 'mkdir', path: 'd', entry: peerEntry('d', 'dir'), expect: await localEntry(root, 'd') }]), {
          fs: loggedFs(root, ops),
          root,
          reader: memoryReader(),
          asideMinBytes: 10,
          beforeReplace: async (old) => { seen.push(await readFile(`${root}/${old.path}`, 'utf8')) },
          onApplied: async () => { ops.push('index') }
        })
        assert.deepEqual(result, { applied: 1, errors: [] })
        assert.deepEqual(seen, ['a big file, now a dir'], 'history read the file intact')
        assert.deepEqual(ops, ['rename d TEMP', 'mkdir d', 'fsyncDir ', 'index', 'unlink TEMP'])
        assert.equal((await stat(`${root}/d`)).isDirectory(), true)
        assert.deepEqual(await readdir(root), ['d'])
      })
    })

    it('a directory deleted right after the big file inside it waits for the aside name to go, then is removed', async () => {
      await inTempDir(async (root) => {
        await mkdir(`${root}/d`)
        await writeFile(`${root}/d/big`, 'old big version')
        const ops: string[] = []
        const result = await applyPlan(plan([
          await deleteStep(root, 'd/big'),
          await deleteStep(root, 'd', 'dir')
        ]), { fs: loggedFs(root, ops, { slowAsideMs: 50 }), root, reader: memoryReader(), asideMinBytes: 10, onApplied: async () => { ops.push('index') } })
        assert.deepEqual(result, { applied: 2, errors: [] })
        assert.deepEqual(ops, ['rename d/big d/TEMP', 'fsyncDir d', 'index', 'unlink d/TEMP', 'rmdir d', 'fsyncDir ', 'index'])
        assert.deepEqual(await readdir(root), [])
      })
    })

    it('deletes of big files do not wait for the blocks of the one before to be freed; apply returns once they are', async () => {
      await inTempDir(async (root) => {
        await writeFile(`${root}/a`, 'old big version a')
        await writeFile(`${root}/b`, 'old big version b')
        const ops: string[] = []
        const deletes = await Promise.all(['a', 'b'].map(async path => deleteStep(root, path)))
        const fs = loggedFs(root, ops, { slowAsideMs: 50 })
        const result = await applyPlan(plan(deletes), {
          fs: { ...fs, unlink: async (path) => { await fs.unlink(path); ops.push(`freed ${path.slice(root.length + 1, root.length + 5)}`) } },
          root,
          reader: memoryReader(),
          asideMinBytes: 10,
          onApplied: async (entries) => { ops.push(`index ${entries.map(e => e.path).join()}`) }
        })
        assert.deepEqual(result, { applied: 2, errors: [] })
        assert.deepEqual(ops.filter(o => !o.startsWith('unlink')), ['rename a TEMP', 'fsyncDir ', 'index a', 'rename b TEMP', 'fsyncDir ', 'index b', 'freed .hom', 'freed .hom'])
        assert.deepEqual(await readdir(root), [])
      })
    })

    it('an aside name whose removal failed is left to the start-up cleanup, which removes it', async () => {
      await inTempDir(async (root) => {
        await writeFile(`${root}/big`, 'old big version')
        const ops: string[] = []
        const result = await applyPlan(plan([await deleteStep(root, 'big')]), {
          fs: loggedFs(root, ops, { unlink: Object.assign(new Error('unlink failed'), { code: 'EIO' }) }),
          root,
          reader: memoryReader(),
          asideMinBytes: 10,
          onApplied: async () => {}
        })
        assert.deepEqual(result, { applied: 1, errors: [] }, 'the delete is done and recorded; only the freeing is late')
        const left = await temps(root)
        assert.equal(left.length, 1)
        assert.deepEqual(await readdir(root), left, 'nothing under the real name')
        assert.equal(await cleanupTempFiles(nodeFs, root), 1)
        assert.deepEqual(await readdir(root), [])
      })
    })

    it('history still holds a big file deleted through its aside name: it restores byte-exact after the name is gone and a GC', async () => {
      const { root, store, history, close } = await shareWithHistory()
      try {
        const bytes = new Uint8Array(randomBytes(4096))
        await writeFile(join(root, 'big'), bytes)
        const parts = [bytes.subarray(0, 2048), bytes.subarray(2048)]
        const chunks = await Promise.all(parts.map(async (p, i) => ({ cid: await rawCid(p), offset: i * 2048, length: p.byteLength })))
        await store.indexFile(join(root, 'big'), chunks)
        const live: LocalEntry = { ...await localEntry(root, 'big'), chunks: chunks.map(c => ({ cid: c.cid, length: c.length })) }
        const result = await applyPlan(plan([{ action: 'delete', path: 'big', entry: { ...live, deleted: true, version: { me: 1, p: 1 }, chunks: [] }, expect: live }]), {
          fs: nodeFs,
          root,
          reader: memoryReader(),
          asideMinBytes: 10,
          beforeReplace: async (old, next, o) => history.keep(old, 'deleted', next, o),
          onApplied: async () => {}
        })
        assert.deepEqual(result, { applied: 1, errors: [] })
        assert.deepEqual(await readdir(root), [])
        await store.gc()
        const [kept] = history.list('big')
        assert.equal(kept.reason, 'deleted')
        const { entry: old } = await history.entry('big', kept.version)
        const restored = Buffer.concat(await Promise.all((old.chunks ?? []).map(async c => store.get(c.cid))))
        assert.deepEqual(new Uint8Array(restored), bytes)
      } finally {
        await close()
      }
    })
  })
})
