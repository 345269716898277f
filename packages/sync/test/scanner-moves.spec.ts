import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { MemoryFs, type IndexFileFn } from '../src/index.js'
import { fixedChunker, scanAll, toIndex } from './helpers.js'



function recorder (): IndexFileFn & { calls: Array<{ path: string, chunks: Array<{ offset: number, length: number }> }> } {
  const calls: Array<{ path: string, chunks: Array<{ offset: number, length: number }> }> = []
  const fn: IndexFileFn = async (path, chunks) => { calls.push({ path, chunks: chunks.map(c => ({ offset: c.offset, length: c.length })) }) }
  return Object.assign(fn, { calls })
}

describe('scanShare: moves', () => {
  it('a renamed file (same inode, size, mtime) takes its chunks without being read, and is indexed at its new path', async () => {
    const fs = new MemoryFs()
    fs.writeFile('/s/dir/movie.bin', 'some bytes of a movie')
    fs.writeFile('/s/other', 'other bytes')
    const chunkFile = fixedChunker(fs)
    const indexFile = recorder()
    const index = toIndex(await scanAll({ fs, root: '/s', chunkFile, indexFile }))
    assert.equal(chunkFile.calls.length, 2)
    chunkFile.calls.length = 0
    await fs.rename('/s/dir/movie.bin', '/s/dir/renamed.bin')
    await fs.rename('/s/other', '/s/dir/other-moved')
    const results = await scanAll({ fs, root: '/s', chunkFile, previous: index, indexFile })
    assert.deepEqual(chunkFile.calls, [], 'nothing hashed')
    const old = index.get('dir/movie.bin')
    const renamed = results.flatMap(r => r.kind === 'entry' && r.entry.path === 'dir/renamed.bin' ? [r.entry] : [])[0]
    assert.equal(renamed.changed, true)
    assert.equal(renamed.movedFrom, 'dir/movie.bin', 'says where it came from')
    assert.deepEqual(renamed.chunks?.map(c => c.cid.toString()), old?.chunks?.map(c => c.cid.toString()))
    assert.deepEqual(indexFile.calls.map(c => c.path).sort(), ['/s/dir/other-moved', '/s/dir/renamed.bin'])
    const movie = indexFile.calls.find(c => c.path.endsWith('renamed.bin'))
    assert.deepEqual(movie?.chunks.map(c => c.offset), [0, 4, 8, 12, 16, 20])
    assert.deepEqual(results.flatMap(r => r.kind === 'deleted' ? [r.path] : []).sort(), ['dir/movie.bin', 'other'])
  })

  it('hashes a new path whose mtime or size differs from the file with its inode, and without indexFile', async () => {
    const fs = new MemoryFs()
    fs.writeFile('/s/a', 'aaaa')
    const chunkFile = fixedChunker(fs)
    const index = toIndex(await scanAll({ fs, root: '/s', chunkFile }))
    await fs.rename('/s/a', '/s/b')
    chunkFile.calls.length = 0
    await scanAll({ fs, root: '/s', chunkFile, previous: index })
    assert.deepEqual(chunkFile.calls, ['/s/b'], 'no indexFile: hashed')
    await fs.rename('/s/b', '/s/c')
    fs.writeFile('/s/c', 'abcd') // the content (and mtime) changed after the move
    chunkFile.calls.length = 0
    const indexFile = recorder()
    await scanAll({ fs, root: '/s', chunkFile, previous: index, indexFile })
    assert.deepEqual(chunkFile.calls, ['/s/c'])
    assert.deepEqual(indexFile.calls, [])
  })
})
