import assert from 'node:assert/strict'
import { mkdir, symlink, writeFile, utimes } from 'node:fs/promises'
import { describe, it } from 'node:test'
import { MemoryFs, nodeFs, parseIgnore, PathRejectedError, ScanEntryError, type ScanResult, type ShareFs } from '../src/index.js'
import { fixedChunker, removeDir, scanAll, SCAN_DEVICE, tempDir, toIndex } from './helpers.js'

const DEVICE = SCAN_DEVICE


function entries (results: ScanResult[]): Map<string, Extract<ScanResult, { kind: 'entry' }>['entry']> {
  return new Map(results.flatMap(r => r.kind === 'entry' ? [[r.entry.path, r.entry]] : []))
}


describe('scanShare', () => {
  it('walks a real tree with lstat only: symlinks (even loops and links out) are links, never followed', async () => {
    const root = await tempDir()
    const outside = await tempDir()
    try {
      await mkdir(`${root}/docs/deep`, { recursive: true })
      await writeFile(`${root}/docs/a.txt`, 'hello world')
      await writeFile(`${root}/docs/deep/b.bin`, new Uint8Array(10))
      await writeFile(`${outside}/secret`, 'secret')
      await symlink('.', `${root}/loop`)
      await symlink(outside, `${root}/out`)
      await symlink('x1', `${root}/x2`)
      await symlink('x2', `${root}/x1`)
      await writeFile(`${root}/.homecloud-tmp-abc`, 'partial')
      await writeFile(`${root}/.homecloudignore`, '*.bin\n')
      const chunkFile = fixedChunker(nodeFs)
      const results = await scanAll({ fs: nodeFs, root, chunkFile, ignore: parseIgnore('*.bin\n') })
      const e = entries(results)
      assert.deepEqual([...e.keys()].sort(), ['docs', 'docs/a.txt', 'docs/deep', 'loop', 'out', 'x1', 'x2'])
      assert.equal(e.get('loop')?.type, 'symlink')
      assert.equal(e.get('loop')?.target, '.')
      assert.equal(e.get('out')?.target, outside)
      assert.equal(e.get('docs/a.txt')?.size, 11)
      assert.equal(e.get('docs/a.txt')?.chunks?.length, 3)
      assert.deepEqual(chunkFile.calls, [`${root}/docs/a.txt`], 'only the one regular file was read; nothing behind a link')
      assert.ok(!results.some(r => r.kind === 'error'))
    } finally {
      await removeDir(root)
      await removeDir(outside)
    }
  })

  it('does not rehash unchanged files (size, mtime, inode) and rehashes changed ones', async () => {
    const fs = new MemoryFs()
    fs.writeFile('/s/a', 'aaaa')
    fs.writeFile('/s/b', 'bbbb')
    const chunkFile = fixedChunker(fs)
    const first = await scanAll({ fs, root: '/s', chunkFile })
    const index = toIndex(first)
    assert.equal(chunkFile.calls.length, 2)
    chunkFile.calls.length = 0
    const second = await scanAll({ fs, root: '/s', chunkFile, previous: index })
    assert.equal(chunkFile.calls.length, 0, 'nothing rehashed')
    assert.ok([...entries(second).values()].every(e => !e.changed))
    fs.writeFile('/s/b', 'bbbc') // same size, new mtime
    const third = await scanAll({ fs, root: '/s', chunkFile, previous: index })
    assert.deepEqual(chunkFile.calls, ['/s/b'])
    assert.equal(entries(third).get('b')?.changed, true)
    const next = toIndex(third, index)
    assert.deepEqual(next.get('b')?.version, { [DEVICE]: 2 })
    assert.deepEqual(next.get('a')?.version, { [DEVICE]: 1 })
  })

  it('a touch without a content change gives no new version', async () => {
    const fs = new MemoryFs()
    fs.writeFile('/s/a', 'aaaa')
    const chunkFile = fixedChunker(fs)
    const index = toIndex(await scanAll({ fs, root: '/s', chunkFile }))
    fs.setMtime('/s/a', Date.UTC(2025, 0, 1))
    const next = toIndex(await scanAll({ fs, root: '/s', chunkFile, previous: index }), index)
    assert.deepEqual(next.get('a')?.version, index.get('a')?.version)
    assert.equal(next.get('a')?.local?.mtimeMs, Date.UTC(2025, 0, 1), 'the new stat is recorded, so no rehash next time')
  })

  it('reports deletions, but never below a directory it could not read', async () => {
    const fs = new MemoryFs()
    fs.writeFile('/s/keep/x', '1')
    fs.writeFile('/s/gone/y', '2')
    fs.writeFile('/s/locked/z', '3')
    const chunkFile = fixedChunker(fs)
    const index = toIndex(await scanAll({ fs, root: '/s', chunkFile }))
    await fs.unlink('/s/gone/y')
    // a stub over the fake: one directory becomes unreadable (EACCES)
    const flaky: ShareFs = {
      lstat: async (p) => fs.lstat(p),
      readdir: async (p) => {
        if (p === '/s/locked') throw Object.assign(new Error('EACCES'), { code: 'EACCES' })
        return fs.readdir(p)
      },
      openRead: async (p) => fs.openRead(p),
      createExclusive: async (p, m) => fs.createExclusive(p, m),
      rename: async (a, b) => fs.rename(a, b),
      fsyncDir: async (p) => fs.fsyncDir(p),
      unlink: async (p) => fs.unlink(p),
      rmdir: async (p) => fs.rmdir(p),
      mkdir: async (p, m) => fs.mkdir(p, m),
      symlink: async (t, p) => fs.symlink(t, p),
      readlink: async (p) => fs.readlink(p),
      statfs: async (p) => fs.statfs(p)
    }
    const results = await scanAll({ fs: flaky, root: '/s', chunkFile, previous: index })
    assert.deepEqual(results.filter(r => r.kind === 'deleted').map(r => r.kind === 'deleted' && r.path), ['gone/y'])
    const errors = results.filter(r => r.kind === 'error')
    assert.equal(errors.length, 1)
    assert.ok(errors[0].kind === 'error' && errors[0].error instanceof ScanEntryError && errors[0].path === 'locked')
  })

  it('a missing share root throws instead of reporting everything deleted', async () => {
    const fs = new MemoryFs()
    await assert.rejects(scanAll({ fs, root: '/nowhere', chunkFile: fixedChunker(fs) }), { code: 'ERR_NOT_FOUND' })
  })

  it('bad entries fail alone: bad names, unsupported types, a file changing while hashed', async () => {
    const fs = new MemoryFs()
    fs.writeFile('/s/ok', 'fine')
    fs.writeFile('/s/CON', 'reserved')
    fs.writeFile('/s/trailing.', 'dot')
    fs.writeFile('/s/bad:dir/inner', 'x')
    fs.writeFile('/s/racy', 'racy')
    fs.addOther('/s/socket')
    const base = fixedChunker(fs)
    const chunkFile = Object.assign(async (path: string, o: object) => {
      const r = await base(path, o)
      if (path === '/s/racy') fs.writeFile('/s/racy', 'changed!') // written while hashed
      return r
    }, { calls: base.calls })
    const results = await scanAll({ fs, root: '/s', chunkFile })
    const errors = new Map(results.flatMap(r => r.kind === 'error' ? [[r.path, r.error]] : []))
    assert.deepEqual([...errors.keys()].sort(), ['CON', 'bad:dir', 'racy', 'socket', 'trailing.'])
    assert.ok(errors.get('CON') instanceof PathRejectedError)
    assert.equal((errors.get('CON') as PathRejectedError).reason, 'reserved-name')
    assert.match(errors.get('racy')?.message ?? '', /changed while it was being hashed/)
    assert.match(errors.get('socket')?.message ?? '', /not a file, directory or symlink/)
    assert.deepEqual([...entries(results).keys()], ['ok'])
    assert.ok(!base.calls.includes('/s/bad:dir/inner'), 'never descends into a rejected directory')
  })

  it('survives a 10,000-level tree without recursion, and caps depth with one error', async () => {
    const fs = new MemoryFs()
    const deep = Array(10_000).fill('d').join('/')
    fs.writeFile(`/s/${deep}/leaf`, 'x')
    const chunkFile = fixedChunker(fs)
    const all = await scanAll({ fs, root: '/s', chunkFile, pathLimits: { maxDepth: 20_000, maxPathBytes: 100_000 } })
    assert.equal(all.filter(r => r.kind === 'entry').length, 10_001)
    assert.ok(all.some(r => r.kind === 'entry' && r.entry.path.endsWith('/leaf')))
    const capped = await scanAll({ fs, root: '/s', chunkFile })
    assert.equal(capped.filter(r => r.kind === 'entry').length, 256)
    const errors = capped.filter(r => r.kind === 'error')
    assert.equal(errors.length, 1)
    assert.equal(errors[0].kind === 'error' && (errors[0].error as PathRejectedError).reason, 'too-deep')
  })

  it('caps entries per directory with one error and keeps going', async () => {
    const fs = new MemoryFs()
    for (let i = 0; i < 30; i++) fs.writeFile(`/s/big/f${String(i).padStart(2, '0')}`, '')
    fs.writeFile('/s/other/x', 'x')
    const events: string[] = []
    const results = await scanAll({ fs, root: '/s', chunkFile: fixedChunker(fs), maxEntriesPerDirectory: 10 }, e => events.push(e.type))
    const e = entries(results)
    assert.equal([...e.keys()].filter(p => p.startsWith('big/')).length, 10)
    assert.ok(e.has('other/x'))
    const errs = results.filter(r => r.kind === 'error')
    assert.equal(errs.length, 1)
    assert.match(errs[0].kind === 'error' ? errs[0].error.message : '', /30 entries, over the cap of 10/)
    assert.ok(events.includes('sync:scan:progress') && events.includes('sync:scan:error') && events.includes('sync:scan:hash'))
  })

  it('rehashes on a real filesystem after an edit that keeps the size', async () => {
    const root = await tempDir()
    try {
      await writeFile(`${root}/f`, 'abcd')
      const chunkFile = fixedChunker(nodeFs)
      const index = toIndex(await scanAll({ fs: nodeFs, root, chunkFile }))
      await writeFile(`${root}/f`, 'abce')
      await utimes(`${root}/f`, new Date(), new Date(Date.now() + 5000))
      const next = toIndex(await scanAll({ fs: nodeFs, root, chunkFile, previous: index }), index)
      assert.equal(chunkFile.calls.length, 2)
      assert.notEqual(next.get('f')?.chunks?.[0].cid.toString(), index.get('f')?.chunks?.[0].cid.toString())
    } finally {
      await removeDir(root)
    }
  })
})
