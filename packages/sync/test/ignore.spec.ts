import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { LimitExceededError, loadIgnoreFile, MemoryFs, parseIgnore } from '../src/index.js'

describe('ignore patterns (.homecloudignore)', () => {
  const m = parseIgnore([
    '# a comment',
    '*.tmp',
    '!keep.tmp',
    'build/',
    '/rootonly',
    'logs/**/*.log',
    '\\#hash',
    '\\!bang',
    'Cache'
  ].join('\n'))

  const table: Array<[string, boolean, boolean]> = [
    ['a.tmp', false, true],
    ['dir/b.tmp', false, true],
    ['keep.tmp', false, false],
    ['dir/keep.tmp', false, false],
    ['build', true, true],
    ['build', false, false], // trailing slash: directories only
    ['src/build', true, true],
    ['rootonly', false, true],
    ['sub/rootonly', false, false],
    ['logs/a/b/c.log', false, true],
    ['logs/c.log', false, true],
    ['logs/c.txt', false, false],
    ['#hash', false, true],
    ['!bang', false, true],
    ['# a comment', false, false],
    ['cache', false, false], // case-sensitive
    ['Cache', true, true],
    ['file.txt', false, false]
  ]
  for (const [path, isDir, expected] of table) {
    it(`${path}${isDir ? '/' : ''} is ${expected ? '' : 'not '}ignored`, () => {
      assert.equal(m.ignores(path, isDir), expected)
    })
  }

  it('loads the file from the share root; missing means nothing ignored', async () => {
    const fs = new MemoryFs()
    fs.writeFile('/s/x', 'x')
    assert.equal((await loadIgnoreFile(fs, '/s')).ignores('a.tmp', false), false)
    fs.writeFile('/s/.homecloudignore', '*.tmp\n')
    assert.equal((await loadIgnoreFile(fs, '/s')).ignores('a.tmp', false), true)
  })

  it('refuses an ignore file over 256 KiB', async () => {
    const fs = new MemoryFs()
    fs.writeFile('/s/.homecloudignore', 'a\n'.repeat(200_000))
    await assert.rejects(loadIgnoreFile(fs, '/s'), (err: unknown) => err instanceof LimitExceededError && err.code === 'ERR_LIMIT_EXCEEDED')
  })
})
