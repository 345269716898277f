import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { conflictPath } from '../src/index.js'
import { converge, MemDevice, ROOT } from './mem-devices.js'

const A_ID = '12D3KooWAliceAliceAliceAliceAliceAliceAliceAliceAlice'
const B_ID = '12D3KooWBobbyBobbyBobbyBobbyBobbyBobbyBobbyBobbyBobby'

/** Two devices holding the same tree, synced from A. */
async function pair (files: Record<string, string>): Promise<{ a: MemDevice, b: MemDevice }> {
  const a = await new MemDevice(A_ID).init()
  const b = await new MemDevice(B_ID).init()
  for (const [path, data] of Object.entries(files)) a.write(path, data)
  await a.scan()
  await b.scan()
  assert.deepEqual(await b.pull(a), [])
  await b.scan()
  assert.deepEqual(await b.tree(), await a.tree())
  return { a, b }
}

const byPath = (x: { path: string }, y: { path: string }): number => x.path < y.path ? -1 : 1
const T = (h: number): number => Date.UTC(2024, 2, 1, h)

describe('type changes: a directory replaced by a file or a link, and back', () => {
  for (const kind of ['file', 'symlink'] as const) {
    it(`a directory with files replaced by a ${kind}: synced files deleted (into history), the ${kind} created`, async () => {
      const { a, b } = await pair({ 'd/f1': 'one', 'd/sub/f2': 'two', keep: 'k' })
      await a.remove('d')
      if (kind === 'file') a.write('d', 'now a file')
      else await a.fs.symlink('keep', `${ROOT}/d`)
      await a.scan()
      assert.deepEqual(await b.pull(a), [])
      assert.deepEqual(await b.tree(), await a.tree())
      assert.deepEqual(b.live(), a.live())
      assert.deepEqual(b.kept.sort(), ['deleted d', 'deleted d/f1', 'deleted d/sub', 'deleted d/sub/f2'])
      assert.deepEqual(await b.scan(), [], 'nothing left for the scanner: the index matches the disk')
      assert.deepEqual(await b.pull(a), [], 'a second pull has nothing to do')
      assert.deepEqual(await b.tree(), await a.tree())
    })
  }

  it('a file replaced by a directory with files', async () => {
    const { a, b } = await pair({ d: 'a file first', other: 'o' })
    await a.replace('d', { 'd/x': 'inside', 'd/sub/y': 'deeper' })
    assert.deepEqual(await b.pull(a), [])
    assert.deepEqual(await b.tree(), await a.tree())
    assert.deepEqual(b.kept, ['deleted d'])
    assert.deepEqual(await b.scan(), [])
  })

  it('a link replaced by a directory, then the directory by a link again', async () => {
    const { a, b } = await pair({ target: 't' })
    await a.fs.symlink('target', `${ROOT}/l`)
    await a.scan()
    assert.deepEqual(await b.pull(a), [])
    await a.fs.unlink(`${ROOT}/l`)
    a.write('l/inner', 'i')
    await a.scan()
    assert.deepEqual(await b.pull(a), [])
    assert.deepEqual(await b.tree(), await a.tree())
    await a.remove('l')
    await a.fs.symlink('elsewhere', `${ROOT}/l`)
    await a.scan()
    assert.deepEqual(await b.pull(a), [])
    assert.deepEqual(await b.tree(), await a.tree())
    assert.deepEqual(await b.scan(), [])
  })

  it('files the index does not know are never deleted: the directory fails alone, naming them', async () => {
    const { a, b } = await pair({ 'd/f1': 'one', other: 'o' })
    b.write('d/unscanned.txt', 'mine, not scanned yet')
    await a.replace('d', { d: 'now a file', other: 'o2' })
    const errors = await b.pull(a)
    assert.ok(errors.some(e => e.startsWith('d: ') && e.includes('unscanned.txt')), errors.join('\n'))
    assert.equal(new TextDecoder().decode(b.fs.readFile(`${ROOT}/d/unscanned.txt`)), 'mine, not scanned yet')
    assert.equal(b.fs.exists(`${ROOT}/d/f1`), false, 'the synced file went (kept in history)')
    assert.deepEqual(b.kept.sort(), ['deleted d', 'deleted d/f1', 'replaced other'])
    assert.equal(new TextDecoder().decode(b.fs.readFile(`${ROOT}/other`)), 'o2', 'other entries still apply')
    assert.equal(b.index.get('d')?.type, 'dir', 'the index still holds the directory')
    // the user moves the file away: the next pull completes
    await b.fs.rename(`${ROOT}/d/unscanned.txt`, `${ROOT}/moved.txt`)
    assert.deepEqual(await b.pull(a), [])
    assert.equal(new TextDecoder().decode(b.fs.readFile(`${ROOT}/d`)), 'now a file')
  })
})

describe('type conflicts: a file or a link on one device, a directory on the other', () => {
  /** A makes `x` a file or a link, B makes it a directory with files, concurrently; `winner` has the later mtime. */
  async function conflicting (nondir: 'file' | 'symlink', winner: 'nondir' | 'dir'): Promise<{ a: MemDevice, b: MemDevice }> {
    const { a, b } = await pair({ base: 'b' })
    if (nondir === 'file') a.write('x', 'file on A')
    else await a.fs.symlink('base', `${ROOT}/x`)
    a.fs.setMtime(`${ROOT}/x`, winner === 'nondir' ? T(12) : T(10))
    b.write('x/one', 'one on B')
    b.write('x/sub/two', 'two on B')
    b.fs.setMtime(`${ROOT}/x`, winner === 'dir' ? T(12) : T(10))
    await a.scan()
    await b.scan()
    return { a, b }
  }

  for (const nondir of ['file', 'symlink'] as const) {
    for (const winner of ['nondir', 'dir'] as const) {
      for (const first of ['a', 'b'] as const) {
        const name = winner === 'dir' ? 'directory' : nondir
        it(`${nondir} vs directory: the ${name} wins on both devices (${first === 'a' ? nondir : 'directory'} side pulls first); the loser is kept under the conflict name`, async () => {
          const { a, b } = await conflicting(nondir, winner)
          const errors = await converge(first === 'a' ? [a, b] : [b, a])
          assert.deepEqual(errors, [])
          const ta = await a.tree()
          assert.deepEqual(await b.tree(), ta)
          assert.deepEqual(b.entries().sort(byPath), a.entries().sort(byPath), 'the same entries, versions included: the same snapshot')
          const nondirText = nondir === 'file' ? 'file on A' : '-> base'
          if (winner === 'nondir') {
            const copy = conflictPath('x', B_ID, T(10))
            assert.equal(ta.x, nondirText)
            assert.equal(ta[copy], 'dir')
            assert.equal(ta[`${copy}/one`], 'one on B')
            assert.equal(ta[`${copy}/sub/two`], 'two on B')
          } else {
            const copy = conflictPath('x', A_ID, T(10))
            assert.equal(ta.x, 'dir')
            assert.equal(ta['x/one'], 'one on B')
            assert.equal(ta[copy], nondirText)
          }
          assert.equal(Object.keys(ta).length, 6, JSON.stringify(ta))
          assert.deepEqual([...await a.scan(), ...await b.scan()], [], 'stable: no local changes left to announce')
        })
      }
    }
  }

  it('the losing directory\'s files move by rename (no data fetched); a losing file is renamed to its conflict name', async () => {
    const { a, b } = await conflicting('file', 'nondir')
    b.fs.ops.length = 0
    const stored = b.store.size
    assert.deepEqual(await b.pull(a), [])
    const copy = conflictPath('x', B_ID, T(10))
    assert.ok(b.fs.ops.includes(`rename ${ROOT}/x/one ${ROOT}/${copy}/one`), b.fs.ops.join('\n'))
    assert.ok(b.fs.ops.includes(`rename ${ROOT}/x/sub/two ${ROOT}/${copy}/sub/two`))
    assert.deepEqual(b.kept.sort(), ['deleted x', 'deleted x/one', 'deleted x/sub', 'deleted x/sub/two'])
    assert.equal(b.store.size - stored, 2, 'only the winner\'s two chunks were fetched')

    const other = await conflicting('file', 'dir')
    other.a.fs.ops.length = 0
    assert.deepEqual(await other.a.pull(other.b), [])
    const fileCopy = conflictPath('x', A_ID, T(10))
    const ops = other.a.fs.ops
    assert.ok(ops.includes(`rename ${ROOT}/x ${ROOT}/${fileCopy}`), ops.join('\n'))
    assert.ok(ops.indexOf(`mkdir ${ROOT}/x`) > ops.indexOf(`rename ${ROOT}/x ${ROOT}/${fileCopy}`), 'the directory comes after the file moved away')
  })

  it('three devices: C holds B\'s directory too; every device ends with the same tree and entries', async () => {
    for (const order of [[0, 1, 2], [2, 0, 1], [1, 2, 0]]) {
      const { a, b } = await conflicting('file', 'nondir')
      const c = await new MemDevice('12D3KooWCarolCarolCarolCarolCarolCarolCarolCarolCarol').init()
      assert.deepEqual(await c.pull(b), [])
      await c.scan()
      const devices = [a, b, c]
      const errors = await converge(order.map(i => devices[i]))
      assert.deepEqual(errors, [], `order ${order.join()}`)
      const ta = await a.tree()
      assert.deepEqual(await b.tree(), ta)
      assert.deepEqual(await c.tree(), ta)
      assert.equal(ta.x, 'file on A')
      assert.equal(ta[`${conflictPath('x', B_ID, T(10))}/sub/two`], 'two on B')
      assert.deepEqual(c.entries().sort(byPath), a.entries().sort(byPath))
    }
  })

  it('three devices: C edits a file in the conflict copy while B edits it at the old path; B pulls C\'s version again without a change on C', async () => {
    const { a, b } = await conflicting('file', 'nondir')
    const c = await new MemDevice('12D3KooWCarolCarolCarolCarolCarolCarolCarolCarolCarol').init()
    assert.deepEqual(await c.pull(b), [])
    await c.scan()
    // B edits x/one; C resolves the conflict first (its copy of B's directory moves to the copy path), then edits the file there
    b.write('x/one', 'one, edited on B')
    assert.equal((await b.scan()).length, 1)
    assert.deepEqual(await c.pullHead(a), [])
    const copy = conflictPath('x', B_ID, T(10))
    c.write(`${copy}/one`, 'one, edited on C')
    assert.equal((await c.scan()).length, 1)
    // B moves its own x/one to the copy path, where C holds another version: that entry waits, the head is not applied
    assert.deepEqual(await b.pullHead(c), [])
    assert.deepEqual(b.skipped, [`${copy}/one`])
    assert.equal(b.applied.has(c.id), false, 'a pull that left an entry is not marked applied')
    assert.equal((await b.tree())[`${copy}/one`], 'one, edited on B')
    // the same head pulled again (C changed nothing): B resolves it as C will
    assert.deepEqual(await b.pullHead(c), [])
    assert.deepEqual(b.skipped, [])
    assert.equal(b.applied.has(c.id), true)
    const tb = await b.tree()
    assert.ok(Object.values(tb).includes('one, edited on C'), JSON.stringify(tb))
    assert.ok(Object.values(tb).includes('one, edited on B'), JSON.stringify(tb))
    assert.deepEqual(await converge([a, b, c]), [])
    assert.deepEqual(await a.tree(), tb)
    assert.deepEqual(await c.tree(), tb)
    assert.deepEqual(b.entries().sort(byPath), c.entries().sort(byPath))
    assert.deepEqual(a.entries().sort(byPath), c.entries().sort(byPath))
  })

  it('apply stopped between removing the directory and writing the winner: the next pull finishes it, nothing new is announced', async () => {
    const { a, b } = await conflicting('file', 'nondir')
    // the last steps (the winner, then the index records) never ran
    const errors = await b.pull(a, steps => steps.filter(s => !(s.path === 'x' && s.action === 'write-file')))
    assert.deepEqual(errors, [])
    assert.equal(b.fs.exists(`${ROOT}/x`), false)
    assert.deepEqual(await b.scan(), [], 'the index holds what is on disk')
    assert.deepEqual(await converge([b, a]), [])
    assert.deepEqual(await b.tree(), await a.tree())
    assert.deepEqual(b.entries().sort(byPath), a.entries().sort(byPath))
  })

  it('a losing directory holding files the index does not know: those stay (never deleted) and the directory fails alone; once scanned they join the conflict copy', async () => {
    const { a, b } = await pair({})
    a.write('x', 'file on A', T(12))
    b.write('x/one', 'one on B')
    b.fs.setMtime(`${ROOT}/x`, T(10))
    await a.scan()
    await b.scan()
    b.write('x/late.txt', 'written after the scan')
    const errors = await b.pull(a)
    assert.ok(errors.some(e => e.startsWith('x: ') && e.includes('late.txt')), errors.join('\n'))
    assert.equal(new TextDecoder().decode(b.fs.readFile(`${ROOT}/x/late.txt`)), 'written after the scan')
    const copy = conflictPath('x', B_ID, T(10))
    assert.equal(new TextDecoder().decode(b.fs.readFile(`${ROOT}/${copy}/one`)), 'one on B', 'the known file is kept under the conflict name')
    // the scanner sees the file: the next pull moves it too, and both devices agree
    await b.scan()
    assert.deepEqual(await converge([b, a]), [])
    const ta = await a.tree()
    assert.deepEqual(await b.tree(), ta)
    assert.equal(ta[`${copy}/late.txt`], 'written after the scan')
    assert.equal(ta.x, 'file on A')
  })

  it('a directory replaced on A while B added a file in it: the edit beats the delete, kept under a conflict name on both', async () => {
    for (const first of ['a', 'b'] as const) {
      const { a, b } = await pair({ 'd/f1': 'one' })
      // the directory's own entry names the copy: it is what gives way
      const copy = conflictPath('d', A_ID, a.index.get('d')?.mtime ?? -1)
      await a.remove('d')
      a.write('d', 'now a file')
      b.write('d/added-on-b.txt', 'new on B')
      await a.scan()
      await b.scan()
      assert.deepEqual(await converge(first === 'a' ? [a, b] : [b, a]), [])
      const ta = await a.tree()
      assert.deepEqual(await b.tree(), ta)
      assert.equal(ta.d, 'now a file')
      assert.equal(ta[`${copy}/added-on-b.txt`], 'new on B', JSON.stringify(ta))
      assert.equal(Object.keys(ta).length, 3, JSON.stringify(ta))
      assert.deepEqual(b.entries().sort(byPath), a.entries().sort(byPath))
      assert.deepEqual([...await a.scan(), ...await b.scan()], [])
    }
  })
})
