import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { MemoryFs, parseIgnore, type ScanResult } from '../src/index.js'
import { fixedChunker, scanAll, toIndex } from './helpers.js'

/** What a scan reported: entries that changed and deletions, as `path` / `-path`. */
function reported (results: ScanResult[]): string[] {
  return results.flatMap(r => r.kind === 'entry' ? (r.entry.changed ? [r.entry.path] : []) : r.kind === 'deleted' ? [`-${r.path}`] : [`!${r.path}`]).sort()
}

/** Every path a scan looked at (changed or not). */
function looked (results: ScanResult[]): string[] {
  return results.flatMap(r => r.kind === 'entry' ? [r.entry.path] : []).sort()
}

async function indexed (): Promise<{ fs: MemoryFs, chunkFile: ReturnType<typeof fixedChunker>, index: ReturnType<typeof toIndex> }> {
  const fs = new MemoryFs()
  for (const path of ['a/1', 'a/2', 'a/deep/3', 'b/4', 'b/5', 'top']) fs.writeFile(`/s/${path}`, path)
  const chunkFile = fixedChunker(fs)
  const index = toIndex(await scanAll({ fs, root: '/s', chunkFile }))
  return { fs, chunkFile, index }
}

describe('scanShare with a scope (the folders the watcher saw change)', () => {
  it('looks only below the scope: changes and deletions elsewhere wait for a scan of them', async () => {
    const { fs, chunkFile, index } = await indexed()
    fs.writeFile('/s/a/deep/3', 'changed')
    await fs.unlink('/s/a/2')
    fs.writeFile('/s/a/new', 'new')
    // outside the scope: not reported by this scan
    fs.writeFile('/s/b/4', 'changed too')
    await fs.unlink('/s/b/5')
    chunkFile.calls.length = 0
    const scoped = await scanAll({ fs, root: '/s', chunkFile, previous: index, scope: ['a'] })
    assert.deepEqual(reported(scoped), ['-a/2', 'a/deep/3', 'a/new'])
    assert.deepEqual(looked(scoped), ['a/1', 'a/deep', 'a/deep/3', 'a/new'])
    assert.deepEqual(chunkFile.calls.sort(), ['/s/a/deep/3', '/s/a/new'])
    // the whole share, or the root as the scope, finds the rest
    assert.deepEqual(reported(await scanAll({ fs, root: '/s', chunkFile, previous: toIndex(scoped, index), scope: ['b', 'a/deep'] })), ['-b/5', 'b/4'])
    assert.deepEqual(reported(await scanAll({ fs, root: '/s', chunkFile, previous: toIndex(scoped, index), scope: [''] })), ['-b/5', 'b/4'])
  })

  it('a folder in the scope that is gone, a file or a link now widens to its parent; nothing behind a link is walked', async () => {
    const { fs, chunkFile, index } = await indexed()
    // a/deep replaced by a file; b replaced by a link to a
    await fs.unlink('/s/a/deep/3')
    await fs.rmdir('/s/a/deep')
    fs.writeFile('/s/a/deep', 'now a file')
    await fs.unlink('/s/b/4')
    await fs.unlink('/s/b/5')
    await fs.rmdir('/s/b')
    await fs.symlink('a', '/s/b')
    const results = await scanAll({ fs, root: '/s', chunkFile, previous: index, scope: ['a/deep', 'b/sub/gone'] })
    // a/deep widened to a, b/sub/gone to the root (b is a link): the whole share
    assert.deepEqual(reported(results), ['-a/deep/3', '-b/4', '-b/5', 'a/deep', 'b'])
    assert.ok(!looked(results).some(p => p.startsWith('b/')), 'nothing read through the link')
  })

  it('nested folders are walked once; ignored and internal folders are not walked at all', async () => {
    const { fs, chunkFile, index } = await indexed()
    fs.writeFile('/s/a/deep/3', 'changed')
    fs.writeFile('/s/b/4', 'changed')
    const twice = await scanAll({ fs, root: '/s', chunkFile, previous: index, scope: ['a/deep', 'a', 'a/deep'] })
    assert.deepEqual(looked(twice), ['a/1', 'a/2', 'a/deep', 'a/deep/3'])
    const ignore = parseIgnore('b/\n')
    assert.deepEqual(await scanAll({ fs, root: '/s', chunkFile, previous: index, ignore, scope: ['b', '.homecloud-tmp-x'] }), [])
  })
})
