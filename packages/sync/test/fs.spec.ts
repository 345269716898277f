import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { fsErrorCode, MemoryFs, nodeFs, type ShareFs } from '../src/index.js'
import { removeDir, tempDir, text } from './helpers.js'

async function writeNew (fs: ShareFs, path: string, data: string): Promise<void> {
  const h = await fs.createExclusive(path, 0o644)
  await h.write(text(data), 0)
  await h.sync()
  await h.close()
}

async function readAll (fs: ShareFs, path: string): Promise<string> {
  const h = await fs.openRead(path)
  const buf = new Uint8Array(1024)
  const n = await h.read(buf, 0)
  await h.close()
  return new TextDecoder().decode(buf.subarray(0, n))
}

async function code (p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p
    return undefined
  } catch (err) {
    return fsErrorCode(err)
  }
}

/** The same behaviour from the real filesystem and the fake. */
function compliance (name: string, setup: () => Promise<{ fs: ShareFs, root: string, cleanup: () => Promise<void> }>): void {
  describe(`ShareFs compliance: ${name}`, () => {
    let fs: ShareFs
    let root: string
    let cleanup: () => Promise<void>
    before(async () => { ({ fs, root, cleanup } = await setup()) })
    after(async () => { await cleanup() })

    it('creates, writes, reads, stats a file', async () => {
      await writeNew(fs, `${root}/f`, 'hello')
      const s = await fs.lstat(`${root}/f`)
      assert.equal(s.type, 'file')
      assert.equal(s.size, 5)
      assert.ok(s.ino > 0)
      assert.equal(await readAll(fs, `${root}/f`), 'hello')
      assert.ok((await fs.readdir(root)).includes('f'))
    })

    it('createExclusive refuses an existing name and a symlink', async () => {
      await writeNew(fs, `${root}/x`, 'x')
      assert.equal(await code(fs.createExclusive(`${root}/x`, 0o600)), 'EEXIST')
      await fs.symlink(`${root}/nowhere`, `${root}/dangling`)
      assert.equal(await code(fs.createExclusive(`${root}/dangling`, 0o600)), 'EEXIST')
      assert.equal(await code(fs.lstat(`${root}/nowhere`)), 'ENOENT', 'nothing created through the link')
    })

    it('lstat and openRead never follow the last symlink', async () => {
      await writeNew(fs, `${root}/target`, 'secret')
      await fs.symlink('target', `${root}/link`)
      assert.equal((await fs.lstat(`${root}/link`)).type, 'symlink')
      assert.equal(await fs.readlink(`${root}/link`), 'target')
      assert.equal(await code(fs.openRead(`${root}/link`)), 'ELOOP')
    })

    it('rename replaces a file and keeps the inode of the source', async () => {
      await writeNew(fs, `${root}/r1`, 'new')
      await writeNew(fs, `${root}/r2`, 'old')
      const ino = (await fs.lstat(`${root}/r1`)).ino
      await fs.rename(`${root}/r1`, `${root}/r2`)
      assert.equal(await readAll(fs, `${root}/r2`), 'new')
      assert.equal((await fs.lstat(`${root}/r2`)).ino, ino)
      assert.equal(await code(fs.lstat(`${root}/r1`)), 'ENOENT')
      await fs.fsyncDir(root)
    })

    it('mkdir, rmdir (ENOTEMPTY when not empty), unlink', async () => {
      await fs.mkdir(`${root}/d`, 0o755)
      assert.equal((await fs.lstat(`${root}/d`)).type, 'dir')
      await writeNew(fs, `${root}/d/f`, '1')
      assert.equal(await code(fs.rmdir(`${root}/d`)), 'ENOTEMPTY')
      await fs.unlink(`${root}/d/f`)
      await fs.rmdir(`${root}/d`)
      assert.equal(await code(fs.lstat(`${root}/d`)), 'ENOENT')
    })

    it('sets mode and mtime on a written file', async () => {
      const h = await fs.createExclusive(`${root}/m`, 0o600)
      await h.write(text('abc'), 0)
      await h.chmod(0o640)
      await h.utimes(Date.UTC(2020, 1, 2, 3, 4, 5, 678))
      await h.close()
      const s = await fs.lstat(`${root}/m`)
      assert.equal(s.mode & 0o777, 0o640)
      assert.equal(Math.round(s.mtimeMs), Date.UTC(2020, 1, 2, 3, 4, 5, 678))
    })

    it('statfs reports space', async () => {
      const s = await fs.statfs(root)
      assert.ok(s.totalBytes > 0 && s.freeBytes >= 0 && s.freeBytes <= s.totalBytes)
    })
  })
}

compliance('node:fs', async () => {
  const root = await tempDir()
  return { fs: nodeFs, root, cleanup: async () => removeDir(root) }
})

compliance('MemoryFs', async () => {
  const fs = new MemoryFs()
  await fs.mkdir('/share', 0o755)
  return { fs, root: '/share', cleanup: async () => {} }
})

describe('MemoryFs specifics', () => {
  it('fails a write past its capacity with ENOSPC and frees space on unlink', async () => {
    const fs = new MemoryFs({ capacity: 10 })
    const h = await fs.createExclusive('/a', 0o600)
    await h.write(new Uint8Array(8), 0)
    await assert.rejects(h.write(new Uint8Array(4), 8), { code: 'ENOSPC' })
    assert.deepEqual(await fs.statfs('/'), { totalBytes: 10, freeBytes: 2 })
    await fs.unlink('/a')
    assert.deepEqual(await fs.statfs('/'), { totalBytes: 10, freeBytes: 10 })
  })

  it('follows symlinks in parents and stops loops with ELOOP', async () => {
    const fs = new MemoryFs()
    fs.writeFile('/real/f', 'x')
    await fs.symlink('/real', '/via')
    assert.equal((await fs.lstat('/via/f')).type, 'file')
    await fs.symlink('loop2', '/loop1')
    await fs.symlink('loop1', '/loop2')
    await assert.rejects(fs.lstat('/loop1/x'), { code: 'ELOOP' })
  })
})
