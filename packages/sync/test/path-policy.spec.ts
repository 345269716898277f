import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { seededRandom } from '@homecloud/test-support'
import { checkSharePath, collisionKey, findCollisions, isAllowedSharePath, PathRejectedError } from '../src/index.js'

const rejected: Array<[unknown, string]> = [
  ['', 'empty'],
  [42, 'not-a-string'],
  [null, 'not-a-string'],
  ['/etc/passwd', 'absolute'],
  ['/', 'absolute'],
  ['C:\\Windows', 'backslash'],
  ['C:/Windows', 'drive-letter'],
  ['c:', 'drive-letter'],
  ['a\\b', 'backslash'],
  ['\\\\server\\share', 'backslash'],
  ['..', 'dot-segment'],
  ['../x', 'dot-segment'],
  ['../../etc/x', 'dot-segment'],
  ['a/../../x', 'dot-segment'],
  ['a/..', 'dot-segment'],
  ['./a', 'dot-segment'],
  ['a/./b', 'dot-segment'],
  ['a//b', 'empty-segment'],
  ['a/', 'empty-segment'],
  ['a\u0000b', 'control-char'],
  ['\u0000', 'control-char'],
  ['a\nb', 'control-char'],
  ['tab\there', 'control-char'],
  ['del\u007f', 'control-char'],
  ['c1\u0085', 'control-char'],
  ['lone\ud800', 'invalid-unicode'],
  ['a<b', 'invalid-char'],
  ['a>b', 'invalid-char'],
  ['a:b', 'drive-letter'],
  ['ab:c', 'invalid-char'],
  ['file.txt:stream', 'invalid-char'],
  ['a"b', 'invalid-char'],
  ['a|b', 'invalid-char'],
  ['a?b', 'invalid-char'],
  ['a*b', 'invalid-char'],
  ['name.', 'trailing-dot-or-space'],
  ['name ', 'trailing-dot-or-space'],
  ['dir./x', 'trailing-dot-or-space'],
  ['...', 'trailing-dot-or-space'],
  ['CON', 'reserved-name'],
  ['con', 'reserved-name'],
  ['nul.txt', 'reserved-name'],
  ['Nul.tar.gz', 'reserved-name'],
  ['dir/AUX', 'reserved-name'],
  ['PRN', 'reserved-name'],
  ['COM1', 'reserved-name'],
  ['com9.log', 'reserved-name'],
  ['LPT3', 'reserved-name'],
  ['COM¹', 'reserved-name'],
  ['CONIN$', 'reserved-name'],
  ['.homecloudignore', 'internal-name'],
  ['a/.homecloud-tmp-1234', 'internal-name'],
  ['x'.repeat(256), 'name-too-long'],
  ['é'.repeat(128), 'name-too-long'],
  [Array(2049).fill('ab').join('/'), 'path-too-long'],
  ['x'.repeat(100_000), 'path-too-long'],
  [Array(257).fill('a').join('/'), 'too-deep']
]

const allowed = [
  'a',
  'a/b/c.txt',
  '.bashrc',
  '.git/config',
  'ümlaut/ça.txt',
  'e\u0301', // NFD is allowed: collisions are found separately
  '日本語/ファイル',
  '😀.png',
  'CONSOLE',
  'com10',
  'lpt',
  'con_',
  'aux-file',
  'x'.repeat(255),
  'é'.repeat(127),
  Array(256).fill('a').join('/'),
  ' leading space',
  'a.b.c'
]

describe('checkSharePath', () => {
  for (const [path, reason] of rejected) {
    it(`rejects ${JSON.stringify(path).slice(0, 40)} (${reason})`, () => {
      assert.throws(() => checkSharePath(path), (err: unknown) => {
        assert.ok(err instanceof PathRejectedError)
        assert.equal(err.code, 'ERR_PATH_REJECTED')
        assert.equal(err.name, 'PathRejectedError')
        assert.equal(err.reason, reason)
        assert.ok(err.message.length < 600, 'message stays bounded')
        return true
      })
      assert.equal(isAllowedSharePath(path), false)
    })
  }

  for (const path of allowed) {
    it(`allows ${JSON.stringify(path).slice(0, 40)}`, () => {
      assert.equal(checkSharePath(path), path)
    })
  }

  it('honours custom limits', () => {
    assert.throws(() => checkSharePath('a/b/c', { maxDepth: 2 }), { reason: 'too-deep' })
    assert.throws(() => checkSharePath('abcdef', { maxNameBytes: 5 }), { reason: 'name-too-long' })
    assert.throws(() => checkSharePath('ab/cd', { maxPathBytes: 4 }), { reason: 'path-too-long' })
  })

  it('property: no generated path that passes can escape the root or carry a forbidden character', () => {
    const rand = seededRandom(0x5eed)
    const pieces = ['..', '.', '', '/', '\\', 'C:', 'a', 'b', 'é', 'e\u0301', '\u0000', '\n', ':', '*', '?', ' ', '.', 'CON', 'nul', '😀', '\ud800', 'x'.repeat(300), '.homecloud', '%2e%2e', '~']
    let passed = 0
    for (let i = 0; i < 5000; i++) {
      const n = 1 + Math.floor(rand() * 6)
      let path = ''
      for (let j = 0; j < n; j++) path += pieces[Math.floor(rand() * pieces.length)]
      let ok: boolean
      try {
        checkSharePath(path)
        ok = true
      } catch (err) {
        assert.ok(err instanceof PathRejectedError, `only PathRejectedError is thrown, for ${JSON.stringify(path)}`)
        ok = false
      }
      if (!ok) continue
      passed++
      const segments = path.split('/')
      assert.ok(!path.startsWith('/') && !/^[a-z]:/i.test(path), `not absolute: ${JSON.stringify(path)}`)
      for (const s of segments) {
        assert.ok(s !== '' && s !== '.' && s !== '..', `no dot or empty segment: ${JSON.stringify(path)}`)
        assert.ok(!/[\u0000-\u001f\\<>:"|?*]/.test(s), `no forbidden char: ${JSON.stringify(path)}`) // eslint-disable-line no-control-regex
        assert.ok(!/[. ]$/.test(s), `no trailing dot/space: ${JSON.stringify(path)}`)
        assert.ok(!/^(con|nul)(\.|$)/i.test(s), `no reserved name: ${JSON.stringify(path)}`)
        assert.ok(new TextEncoder().encode(s).byteLength <= 255)
      }
      // resolving it under a root never leaves the root
      const resolved = new URL(path.split('/').map(encodeURIComponent).join('/'), 'file:///share/root/').pathname
      assert.ok(resolved.startsWith('/share/root/'), `stays inside: ${JSON.stringify(path)} -> ${resolved}`)
    }
    assert.ok(passed > 100, `the generator also produces valid paths (${passed})`)
  })
})

describe('findCollisions', () => {
  it('finds case collisions in one directory listing', () => {
    const c = findCollisions(['Readme.md', 'README.md', 'other'])
    assert.deepEqual(c, [{ kind: 'case', paths: ['README.md', 'Readme.md'] }])
  })

  it('finds NFC/NFD collisions', () => {
    const nfc = 'caf\u00e9'
    const nfd = 'cafe\u0301'
    const c = findCollisions([nfc, nfd])
    assert.equal(c.length, 1)
    assert.equal(c[0].kind, 'normalization')
    assert.deepEqual(new Set(c[0].paths), new Set([nfc, nfd]))
    assert.equal(collisionKey(nfc), collisionKey(nfd))
  })

  it('finds collisions through parent directories', () => {
    const c = findCollisions(['Photos/a.jpg', 'photos/b.jpg'])
    assert.deepEqual(c, [{ kind: 'case', paths: ['Photos', 'photos'] }])
  })

  it('reports nothing for distinct names', () => {
    assert.deepEqual(findCollisions(['a', 'b', 'a/b', 'A1', 'é', 'e']), [])
  })
})
