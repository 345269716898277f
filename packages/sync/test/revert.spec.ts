import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { bumpVersion, type PlanStep } from '../src/index.js'
import { planRevert } from '../src/revert.js'
import { applyFrom, MemDevice, ROOT } from './mem-devices.js'

const A_ID = '12D3KooWAliceAliceAliceAliceAliceAliceAliceAliceAlice'
const B_ID = '12D3KooWBobbyBobbyBobbyBobbyBobbyBobbyBobbyBobbyBobby'

const byPath = (x: { path: string }, y: { path: string }): number => x.path < y.path ? -1 : 1
const read = (d: MemDevice, path: string): string => new TextDecoder().decode(d.fs.readFile(`${ROOT}/${path}`))

/** A holds `files`; B (the receive-only backup box) pulled them. */
async function backup (files: Record<string, string>): Promise<{ a: MemDevice, b: MemDevice }> {
  const a = await new MemDevice(A_ID).init()
  const b = await new MemDevice(B_ID).init()
  for (const [path, data] of Object.entries(files)) a.write(path, data)
  await a.scan()
  assert.deepEqual(await b.pull(a), [])
  assert.deepEqual(await b.scan(), [])
  assert.deepEqual(await b.tree(), await a.tree())
  return { a, b }
}

/**
 * Reverts B's local changes to the members' snapshots, wired as share sync
 * wires it (forgotten additions leave the index), with only the steps `cut`
 * leaves (apply stopped there); the errors as `path: message`.
 */
async function revert (b: MemDevice, members: MemDevice[], cut?: (steps: PlanStep[]) => PlanStep[]): Promise<{ errors: string[], changed: string[], fetched: number }> {
  const { plan, changed, forget } = await planRevert({
    local: b.index,
    self: b.id,
    snapshots: members.map(m => m.entries()),
    has: (cid) => b.store.has(cid.toString())
  })
  if (cut != null) plan.steps = cut(plan.steps)
  const result = await applyFrom(plan, {
    fs: b.fs,
    root: ROOT,
    store: b.store,
    peers: members,
    kept: b.kept,
    onApplied: async (entries) => {
      for (const e of entries) {
        if (forget.has(e.path)) b.index.delete(e.path)
        else b.index.set(e.path, e)
      }
    }
  })
  return { errors: [...plan.errors, ...result.errors].map(e => `${e.path}: ${e.error.message}`), changed, fetched: plan.fetch.length }
}

/** B's tree, index and snapshot entries are A's again, and its scanner finds nothing to announce. */
async function assertReverted (a: MemDevice, b: MemDevice): Promise<void> {
  assert.deepEqual(await b.tree(), await a.tree())
  assert.deepEqual(b.entries().sort(byPath), a.entries().sort(byPath), 'the same entries, versions included')
  assert.deepEqual(await b.scan(), [], 'the index matches the disk')
  assert.equal([...b.index.values()].filter(e => e.modifiedBy === b.id).length, 0, 'no local change left')
}

describe('receive-only revert', () => {
  it('a local edit, a local delete and a locally added file and directory are reverted; the local versions go to history', async () => {
    const { a, b } = await backup({ edited: 'original', gone: 'deleted here', 'd/keep': 'k' })
    b.write('edited', 'changed on the backup box')
    await b.remove('gone')
    b.write('added.txt', 'new here')
    b.write('newdir/inner/x', 'new dir')
    assert.equal((await b.scan()).length, 6)
    const { errors, changed } = await revert(b, [a])
    assert.deepEqual(errors, [])
    assert.equal(changed.length, 6)
    await assertReverted(a, b)
    assert.equal(read(b, 'edited'), 'original')
    assert.equal(read(b, 'gone'), 'deleted here')
    assert.equal(b.index.has('added.txt'), false, 'an addition is forgotten, not tombstoned')
    assert.deepEqual(b.kept.sort(), ['deleted added.txt', 'deleted newdir', 'deleted newdir/inner', 'deleted newdir/inner/x', 'replaced edited'])
  })

  it('nothing changed: nothing to do', async () => {
    const { a, b } = await backup({ f: 'x' })
    const { errors, changed } = await revert(b, [a])
    assert.deepEqual([errors, changed], [[], []])
  })

  it('a local rename is put back by renaming (no data fetched)', async () => {
    const { a, b } = await backup({ 'big.bin': 'some content that spans chunks' })
    await b.fs.rename(`${ROOT}/big.bin`, `${ROOT}/renamed.bin`)
    await b.scan()
    b.fs.ops.length = 0
    const stored = b.store.size
    const { errors, fetched } = await revert(b, [a])
    assert.deepEqual(errors, [])
    assert.equal(fetched, 0)
    assert.equal(b.store.size, stored)
    assert.ok(b.fs.ops.includes(`rename ${ROOT}/renamed.bin ${ROOT}/big.bin`), b.fs.ops.join('\n'))
    await assertReverted(a, b)
  })

  it('the newest version among the members is put back', async () => {
    const { a, b } = await backup({ f: 'v1' })
    const c = await new MemDevice('12D3KooWCarolCarolCarolCarolCarolCarolCarolCarolCarol').init()
    assert.deepEqual(await c.pull(a), [])
    await c.scan()
    a.write('f', 'v2 on A')
    await a.scan()
    b.write('f', 'local edit')
    await b.scan()
    assert.deepEqual((await revert(b, [c, a])).errors, [])
    await assertReverted(a, b)
    assert.equal(read(b, 'f'), 'v2 on A')
  })
})

describe('receive-only revert of a local type change', () => {
  it('a synced file replaced by a directory with files: the directory and its files go (into history), the file is back', async () => {
    const { a, b } = await backup({ f: 'a synced file', other: 'o' })
    await b.replace('f', { 'f/x': 'inside', 'f/sub/y': 'deeper' })
    const { errors } = await revert(b, [a])
    assert.deepEqual(errors, [])
    await assertReverted(a, b)
    assert.equal(read(b, 'f'), 'a synced file')
    assert.deepEqual(b.kept.sort(), ['deleted f', 'deleted f/sub', 'deleted f/sub/y', 'deleted f/x'])
  })

  it('files the index never knew in that directory stay: the path fails alone, naming them; the rest is reverted', async () => {
    const { a, b } = await backup({ f: 'a synced file', other: 'o' })
    await b.replace('f', { 'f/scanned': 'known to the index', other: 'edited' })
    b.write('f/unscanned.txt', 'written after the scan')
    const { errors } = await revert(b, [a])
    assert.ok(errors.length > 0 && errors.every(e => e.startsWith('f: ')), errors.join('\n'))
    assert.ok(errors[0].includes('unscanned.txt'), errors[0])
    assert.equal(read(b, 'f/unscanned.txt'), 'written after the scan', 'never deleted')
    assert.equal(b.fs.exists(`${ROOT}/f/scanned`), false, 'the known addition went (into history)')
    assert.equal(read(b, 'other'), 'o', 'the other change is reverted')
    assert.equal(b.index.get('f')?.type, 'dir', 'the index still holds the directory')
    assert.equal(b.index.has('f/scanned'), false)
    // once scanned it is a local addition like the others: the next revert removes it (into history) and completes
    await b.scan()
    assert.deepEqual((await revert(b, [a])).errors, [])
    assert.equal(read(b, 'f'), 'a synced file')
    assert.ok(b.kept.includes('deleted f/unscanned.txt'), b.kept.join())
    await assertReverted(a, b)
  })

  it('apply stopped after the directory went, before the file is back: the path is a local change still (its own version), the next revert finishes it', async () => {
    const { a, b } = await backup({ f: 'a synced file' })
    await b.replace('f', { 'f/x': 'inside' })
    const { local: _local, ...changedDir } = b.index.get('f') ?? assert.fail('f is in the index')
    assert.deepEqual((await revert(b, [a], steps => steps.filter(s => !(s.path === 'f' && s.action === 'write-file')))).errors, [])
    assert.equal(b.fs.exists(`${ROOT}/f`), false)
    assert.deepEqual(b.index.get('f'), { ...changedDir, size: 0, deleted: true }, 'gone at the local version: no new version is made')
    assert.deepEqual(await b.scan(), [], 'the index holds what is on disk')
    assert.deepEqual((await revert(b, [a])).errors, [])
    await assertReverted(a, b)
  })

  for (const kind of ['file', 'symlink'] as const) {
    it(`a synced directory replaced by a ${kind}: the ${kind} goes (into history), the directory and its files are back`, async () => {
      const { a, b } = await backup({ 'd/f1': 'one', 'd/sub/f2': 'two', keep: 'k' })
      await b.remove('d')
      if (kind === 'file') b.write('d', 'now a file')
      else await b.fs.symlink('keep', `${ROOT}/d`)
      await b.scan()
      b.fs.ops.length = 0
      const { errors } = await revert(b, [a])
      assert.deepEqual(errors, [])
      await assertReverted(a, b)
      assert.deepEqual(b.kept, ['deleted d'])
      const ops = b.fs.ops
      assert.ok(ops.indexOf(`unlink ${ROOT}/d`) !== -1 && ops.indexOf(`unlink ${ROOT}/d`) < ops.indexOf(`mkdir ${ROOT}/d`), ops.join('\n'))
    })
  }

  it('a synced link replaced by a directory: the link is back', async () => {
    const { a } = await backup({ target: 't' })
    await a.fs.symlink('target', `${ROOT}/l`)
    await a.scan()
    const b = await new MemDevice(B_ID).init()
    assert.deepEqual(await b.pull(a), [])
    await b.scan()
    await b.fs.unlink(`${ROOT}/l`)
    b.write('l/inner', 'i')
    await b.scan()
    assert.deepEqual((await revert(b, [a])).errors, [])
    await assertReverted(a, b)
  })

  it('a local directory where the members now have a file: reverted whole, nothing kept under a conflict name', async () => {
    const { a, b } = await backup({ 'd/f1': 'one' })
    // A replaces the directory by a file; B has not pulled it yet and changes the directory's mode
    await a.replace('d', { d: 'a file on A' })
    b.write('d/added', 'added on B')
    await b.scan()
    // a change of the directory itself (its mode: the memory filesystem has no chmod), as the scanner records one
    const dir = b.index.get('d')
    assert.ok(dir != null)
    b.index.set('d', { ...dir, mode: 0o700, version: bumpVersion(dir.version, B_ID), modifiedBy: B_ID })
    const { errors } = await revert(b, [a])
    assert.deepEqual(errors, [])
    await assertReverted(a, b)
    assert.equal(read(b, 'd'), 'a file on A')
    assert.deepEqual(b.conflicts, [])
  })
})
