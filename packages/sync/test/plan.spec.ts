import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { createMemoryStore } from '@homecloud/store'
import { cidKey, localChunkLocator, parseIgnore, planPull, PathRejectedError, type ChunkRef, type LocalEntry, type LocalIndexView, type PlanStep, type ShareEntry } from '../src/index.js'
import { LocalIndex } from '../src/local-index.js'
import { MemoryShareKv } from '../src/share-kv.js'
import { ShareRecords } from '../src/share-state.js'
import { rawCid, removeDir, tempDir, text } from './helpers.js'

const ME = '12D3KooWMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMe1'
const PEER = '12D3KooWPeerPeerPeerPeerPeerPeerPeerPeerPeerPeerPeer2'

async function chunks (...parts: string[]): Promise<ChunkRef[]> {
  return Promise.all(parts.map(async p => ({ cid: await rawCid(text(p)), length: text(p).byteLength })))
}

async function file (path: string, parts: string[], init: Partial<LocalEntry> = {}): Promise<LocalEntry> {
  const c = await chunks(...parts)
  return { path, type: 'file', size: c.reduce((s, x) => s + x.length, 0), mtime: 1000, mode: 0o644, version: { [ME]: 1 }, modifiedBy: ME, chunks: c, local: { ino: 1, mtimeMs: 1000 }, ...init }
}

function remote (e: LocalEntry, init: Partial<ShareEntry> = {}): ShareEntry {
  const { local: _l, ...rest } = e
  return { ...rest, ...init }
}

function index (...entries: LocalEntry[]): Map<string, LocalEntry> {
  return new Map(entries.map(e => [e.path, e]))
}

function summary (steps: PlanStep[]): string[] {
  return steps.map(s => `${s.action} ${s.path}`)
}

describe('planPull', () => {
  it('a rename or move transfers no file data', async () => {
    const old = await file('old/name.bin', ['aaaa', 'bbbb', 'cccc'])
    const local = index(old)
    const moved = remote(old, { path: 'new/place.bin', version: { [PEER]: 1 }, modifiedBy: PEER })
    const tomb = remote(old, { deleted: true, size: 0, chunks: undefined, version: { [ME]: 1, [PEER]: 1 }, modifiedBy: PEER })
    const plan = await planPull({ local, remote: [moved, tomb] })
    assert.deepEqual(plan.fetch, [])
    assert.equal(plan.bytesToFetch, 0)
    assert.equal(plan.bytesLocal, 12)
    assert.deepEqual(summary(plan.steps), ['write-file new/place.bin', 'delete old/name.bin'], 'the copy is written before the source is deleted')
    const write = plan.steps[0] as Extract<PlanStep, { action: 'write-file' }>
    assert.deepEqual(write.chunks.map(c => c.source), [
      { path: 'old/name.bin', offset: 0, length: 4 },
      { path: 'old/name.bin', offset: 4, length: 4 },
      { path: 'old/name.bin', offset: 8, length: 4 }
    ])
    assert.equal(write.expect, undefined)
    assert.deepEqual(write.moveFrom, { expect: old, entry: tomb }, 'apply may rename the source instead of copying it')
  })

  it('a move pairs one deleted file with one new file of the same content only', async () => {
    const a = await file('a', ['same'])
    const b = await file('b', ['same'])
    const local = index(a, b)
    const gone = (e: LocalEntry): ShareEntry => remote(e, { deleted: true, size: 0, chunks: undefined, version: { [ME]: 1, [PEER]: 1 }, modifiedBy: PEER })
    const added = (path: string, parts: string[]): Promise<ShareEntry> => file(path, parts, { version: { [PEER]: 1 }, modifiedBy: PEER }).then(e => remote(e))
    const plan = await planPull({ local, remote: [gone(a), gone(b), await added('c', ['same']), await added('d', ['same']), await added('e', ['same']), await added('f', ['other'])] })
    const moves = plan.steps.flatMap(s => s.action === 'write-file' ? [`${s.path}<-${s.moveFrom?.expect.path ?? '-'}`] : [])
    assert.deepEqual(moves, ['c<-a', 'd<-b', 'e<--', 'f<--'])
  })

  it('an insert transfers only the new chunk; a chunk used twice is fetched once', async () => {
    const local = index(await file('f', ['aaaa', 'bbbb']))
    const edited = remote(await file('f', ['NEW!', 'aaaa', 'bbbb', 'NEW!']), { version: { [ME]: 1, [PEER]: 1 }, modifiedBy: PEER })
    const plan = await planPull({ local, remote: [edited] })
    assert.equal(plan.fetch.length, 1)
    assert.equal(plan.fetch[0].toString(), (await rawCid(text('NEW!'))).toString())
    assert.equal(plan.bytesToFetch, 4)
    assert.equal(plan.bytesLocal, 8)
    const write = plan.steps[0] as Extract<PlanStep, { action: 'write-file' }>
    assert.deepEqual(write.chunks.map(c => c.offset), [0, 4, 8, 12])
    assert.equal(write.expect?.path, 'f', 'the local version is the one it may replace')
  })

  it('chunks in the block store are not fetched', async () => {
    const c = (await chunks('zzzz'))[0]
    const plan = await planPull({
      local: index(),
      remote: [remote(await file('z', ['zzzz']), { version: { [PEER]: 1 } })],
      has: (cid) => cid.equals(c.cid)
    })
    assert.deepEqual(plan.fetch, [])
    assert.equal(plan.bytesLocal, 4)
  })

  it('asks the store once (hasMany) for every chunk no local file holds, with the same plan as has per chunk', async () => {
    const dir = await tempDir()
    const store = createMemoryStore()
    try {
      const [inBlocks, inFile, inChanged, missing] = await chunks('bbbb', 'ffff', 'cccc', 'mmmm')
      await store.put(inBlocks.cid, text('bbbb'))
      for (const [name, c, body] of [['kept', inFile, 'ffff'], ['changed', inChanged, 'cccc']] as const) {
        await writeFile(join(dir, name), body)
        await store.indexFile(join(dir, name), [{ cid: c.cid, offset: 0, length: c.length }])
      }
      await writeFile(join(dir, 'changed'), 'c')
      const mine = await file('mine', ['llll'])
      const wanted = [
        remote(await file('one', ['bbbb', 'mmmm', 'llll', 'ffff']), { version: { [PEER]: 1 } }),
        remote(await file('two', ['cccc', 'mmmm', 'bbbb']), { version: { [PEER]: 1 } })
      ]
      const calls: string[][] = []
      const batched = await planPull({
        local: index(mine),
        remote: wanted,
        hasMany: async (cids) => {
          calls.push(cids.map(c => c.toString()))
          return store.hasMany(cids)
        }
      })
      assert.equal(calls.length, 1, 'one lookup for the whole plan')
      assert.deepEqual(calls[0].sort(), [inBlocks, missing, inFile, inChanged].map(c => c.cid.toString()).sort(), 'each chunk once; none a local file holds')
      assert.deepEqual(batched.fetch.map(c => c.toString()).sort(), [missing, inChanged].map(c => c.cid.toString()).sort())
      assert.equal(batched.bytesLocal, 4 * 4, 'bbbb twice, llll and ffff')
      const single = await planPull({ local: index(mine), remote: wanted, has: async (cid) => store.has(cid) })
      assert.deepEqual(batched, single)
    } finally {
      await store.close()
      await removeDir(dir)
    }
  })

  it('follows version vectors: newer remote applied, older or equal remote ignored, whatever the mtimes', async () => {
    const mine = await file('a', ['1111'], { version: { [ME]: 2, [PEER]: 1 }, mtime: 1 })
    const older = remote(await file('a', ['0000']), { version: { [ME]: 1, [PEER]: 1 }, mtime: 9e12 })
    assert.deepEqual((await planPull({ local: index(mine), remote: [older] })).steps, [])
    assert.deepEqual((await planPull({ local: index(mine), remote: [remote(mine)] })).steps, [])
    const newer = remote(await file('a', ['2222']), { version: { [ME]: 2, [PEER]: 2 }, modifiedBy: PEER, mtime: 0 })
    assert.deepEqual(summary((await planPull({ local: index(mine), remote: [newer] })).steps), ['write-file a'])
  })

  it('tombstones: a dominating delete removes the file; one for an unknown path is only recorded', async () => {
    const mine = await file('a', ['1111'])
    const tomb = remote(mine, { deleted: true, size: 0, chunks: undefined, version: { [ME]: 1, [PEER]: 1 }, modifiedBy: PEER })
    const unknown = remote(await file('never', ['x']), { deleted: true, size: 0, chunks: undefined, version: { [PEER]: 1 } })
    const plan = await planPull({ local: index(mine), remote: [tomb, unknown] })
    assert.deepEqual(summary(plan.steps), ['delete a', 'record never'])
    // after a partition heals, an old copy of the file does not bring it back
    const healed = await planPull({ local: index({ ...remote(tomb), local: undefined }), remote: [remote(mine)] })
    assert.deepEqual(healed.steps, [])
  })

  it('concurrent edits: both devices plan the same winner and the same conflict copy', async () => {
    const base = { [ME]: 1, [PEER]: 1 }
    const onMe = await file('doc.txt', ['mine'], { version: { ...base, [ME]: 2 }, modifiedBy: ME, mtime: Date.UTC(2024, 0, 1, 0, 0, 1) })
    const onPeer = await file('doc.txt', ['them'], { version: { ...base, [PEER]: 2 }, modifiedBy: PEER, mtime: Date.UTC(2024, 0, 1, 0, 0, 2) })
    const planMe = await planPull({ local: index(onMe), remote: [remote(onPeer)] })
    const planPeer = await planPull({ local: index(onPeer), remote: [remote(onMe)] })
    const copy = `doc.conflict-${ME.slice(-8)}-20240101-000001.txt`
    assert.deepEqual(planMe.conflicts, [{ path: 'doc.txt', winner: 'remote', conflictPath: copy }])
    assert.deepEqual(planPeer.conflicts, [{ path: 'doc.txt', winner: 'local', conflictPath: copy }])
    // on me: keep my version as the copy (from my own file: nothing fetched for it), then take theirs
    assert.deepEqual(summary(planMe.steps), [`write-file ${copy}`, 'write-file doc.txt'])
    const [keep, take] = planMe.steps as Array<Extract<PlanStep, { action: 'write-file' }>>
    assert.equal(keep.chunks[0].source?.path, 'doc.txt')
    assert.deepEqual(keep.entry.version, onMe.version)
    assert.deepEqual(take.entry.version, { [ME]: 2, [PEER]: 2 })
    // on the peer: fetch my version into the copy, keep its own with the merged version
    assert.deepEqual(summary(planPeer.steps), [`write-file ${copy}`, 'record doc.txt'])
    const [copyOnPeer, rec] = planPeer.steps
    assert.deepEqual(copyOnPeer.entry.version, onMe.version)
    assert.deepEqual(rec.entry.version, { [ME]: 2, [PEER]: 2 })
    assert.equal('local' in copyOnPeer.entry, false, 'no local stat leaks into a share entry')
  })

  it('edit beats delete in both directions', async () => {
    const edit = await file('x', ['edit'], { version: { [ME]: 2 } })
    const del = remote(await file('x', []), { deleted: true, size: 0, chunks: undefined, version: { [ME]: 1, [PEER]: 1 }, modifiedBy: PEER, mtime: 9e12 })
    const p1 = await planPull({ local: index(edit), remote: [del] })
    assert.deepEqual(summary(p1.steps), ['record x'])
    assert.deepEqual(p1.steps[0].entry.version, { [ME]: 2, [PEER]: 1 })
    assert.equal(p1.steps[0].entry.deleted, undefined)
    const p2 = await planPull({ local: index({ ...del, local: undefined }), remote: [remote(edit)] })
    assert.deepEqual(summary(p2.steps), ['write-file x'])
    assert.deepEqual(p2.steps[0].entry.version, { [ME]: 2, [PEER]: 1 })
  })

  it('same content under concurrent versions is no conflict: versions merge', async () => {
    const a = await file('same', ['data'], { version: { [ME]: 1 } })
    const b = remote(await file('same', ['data']), { version: { [PEER]: 1 }, modifiedBy: PEER })
    const plan = await planPull({ local: index(a), remote: [b] })
    assert.deepEqual(plan.conflicts, [])
    assert.deepEqual(summary(plan.steps), ['record same'])
    assert.deepEqual(plan.steps[0].entry.version, { [ME]: 1, [PEER]: 1 })
  })

  it('hostile and colliding names fail alone; directories come first, deletes deepest first', async () => {
    const p = (path: string, type: ShareEntry['type'] = 'file'): ShareEntry => ({ path, type, size: 0, mtime: 1, mode: 0o755, version: { [PEER]: 1 }, modifiedBy: PEER, ...(type === 'file' ? { chunks: [] } : {}) })
    const local = index(await file('Readme.md', ['r']), await file('d/inner/f', ['1']), { ...p('d', 'dir'), local: { ino: 2, mtimeMs: 1 } }, { ...p('d/inner', 'dir'), local: { ino: 3, mtimeMs: 1 } })
    const plan = await planPull({
      local,
      remote: [
        p('../../etc/passwd'), p('/abs'), p('C:\\x'), p('nul\u0000'), p('README.md'), p('cafe\u0301'), p('caf\u00e9'),
        p('ok/a'), p('ok', 'dir'), p('ok/sub', 'dir'), p('.homecloudignore'), p('skip.tmp'),
        { ...p('d/inner/f'), deleted: true, version: { [ME]: 1, [PEER]: 1 } },
        { ...p('d/inner', 'dir'), deleted: true, version: { [ME]: 1, [PEER]: 1 } }
      ],
      ignore: parseIgnore('*.tmp')
    })
    const errors = new Map(plan.errors.map(e => [e.path, (e.error as PathRejectedError).reason]))
    assert.deepEqual(Object.fromEntries(errors), {
      '../../etc/passwd': 'dot-segment',
      '/abs': 'absolute',
      'C:\\x': 'backslash',
      'nul\u0000': 'control-char',
      '.homecloudignore': 'internal-name',
      'README.md': 'collision',
      'caf\u00e9': 'collision' // NFD spelling sorts first and is kept
    })
    assert.deepEqual(summary(plan.steps), [
      'mkdir ok', 'mkdir ok/sub', 'write-file cafe\u0301', 'write-file ok/a', 'delete d/inner/f', 'delete d/inner'
    ])
  })

  it('type changes: the old entry goes with the deletes (a directory once emptied), the new one after every delete', async () => {
    const dir = (path: string, init: Partial<LocalEntry> = {}): LocalEntry => ({ path, type: 'dir', size: 0, mtime: 1000, mode: 0o755, version: { [ME]: 1 }, modifiedBy: ME, local: { ino: 9, mtimeMs: 1000 }, ...init })
    const gone = (e: LocalEntry): ShareEntry => remote(e, { deleted: true, size: 0, chunks: undefined, version: { ...e.version, [PEER]: 1 }, modifiedBy: PEER })
    const d = dir('d')
    const f1 = await file('d/f1', ['1111'])
    const asFile = remote(await file('d', ['now']), { version: { [ME]: 1, [PEER]: 1 }, modifiedBy: PEER })
    const plan = await planPull({ local: index(d, f1), remote: [asFile, gone(f1)] })
    assert.deepEqual(summary(plan.steps), ['delete d/f1', 'delete d', 'write-file d'])
    const [, removal, write] = plan.steps
    assert.equal(removal.entry.deleted, true)
    assert.deepEqual(removal.entry.version, d.version, 'the directory is gone at its own version: the file (newer) still applies after a stop')
    assert.equal(write.expect, undefined)
    assert.deepEqual(write.entry, asFile)

    // and back: a file replaced by a directory holding a file
    const x = await file('x', ['xxxx'])
    const asDir = remote(dir('x'), { version: { [ME]: 1, [PEER]: 1 }, modifiedBy: PEER })
    const inside = remote(await file('x/in', ['in']), { version: { [PEER]: 1 }, modifiedBy: PEER })
    const back = await planPull({ local: index(x), remote: [inside, asDir] })
    assert.deepEqual(summary(back.steps), ['delete x', 'mkdir x', 'write-file x/in'])
  })

  it('concurrent type change: the losing directory is kept under its conflict name, its files renamed there, the same entries on both devices', async () => {
    const onMe = { ...(await file('x', ['mine'])), mtime: Date.UTC(2024, 0, 1, 12) }
    const theirs = { path: 'x', type: 'dir' as const, size: 0, mtime: Date.UTC(2024, 0, 1, 10), mode: 0o755, version: { [PEER]: 1 }, modifiedBy: PEER }
    const one = await file('x/one', ['one1'], { version: { [PEER]: 1 }, modifiedBy: PEER, local: { ino: 7, mtimeMs: 1000 } })
    const copy = `x.conflict-${PEER.slice(-8)}-20240101-100000`
    // on the peer: its directory loses; its file moves (a rename), the directory goes, my file comes
    const planPeer = await planPull({ local: index({ ...theirs, local: { ino: 6, mtimeMs: 1 } }, one), remote: [remote(onMe)] })
    assert.deepEqual(planPeer.conflicts, [{ path: 'x', winner: 'remote', conflictPath: copy }])
    assert.deepEqual(summary(planPeer.steps), [`mkdir ${copy}`, `write-file ${copy}/one`, 'delete x/one', 'delete x', 'write-file x'])
    const moved = planPeer.steps[1] as Extract<PlanStep, { action: 'write-file' }>
    assert.equal(moved.moveFrom?.expect.path, 'x/one')
    // on me: my file stays (merged version), the peer's directory and file are written under the conflict name
    const planMe = await planPull({ local: index(onMe), remote: [theirs, remote(one)] })
    assert.deepEqual(planMe.conflicts, [{ path: 'x', winner: 'local', conflictPath: copy }])
    assert.deepEqual(summary(planMe.steps), [`mkdir ${copy}`, `write-file ${copy}/one`, 'record x/one', 'record x'])
    // both devices record the same entries
    const entries = (steps: PlanStep[]): Record<string, unknown> => Object.fromEntries(steps.flatMap(s => [[s.path, remote(s.entry as LocalEntry)], ...(s.action === 'write-file' && s.moveFrom != null ? [[s.moveFrom.expect.path, s.moveFrom.entry]] : [])]))
    const peer = entries(planPeer.steps)
    const me = entries(planMe.steps)
    assert.deepEqual(peer[`${copy}/one`], me[`${copy}/one`])
    assert.deepEqual(peer['x/one'], me['x/one'])
    assert.deepEqual((peer['x/one'] as ShareEntry).version, { [ME]: 1, [PEER]: 1 })
    assert.deepEqual(peer[copy], me[copy])
    assert.deepEqual((peer.x as ShareEntry).version, (me.x as ShareEntry).version)
  })

  it('reads no local entry when no live file holds a chunk it writes and no spelling can collide (keys, hasChunk)', async () => {
    const held = await file('held.bin', ['held'])
    const local = index(held)
    const view: LocalIndexView = {
      get: (path) => local.get(path),
      keys: () => local.keys(),
      hasChunk: (cid) => [...local.values()].some(e => e.chunks?.some(c => c.cid.equals(cid))),
      values: () => { throw new Error('values() read') }
    }
    const added = remote(await file('new.bin', ['fresh', 'bytes'], { version: { [PEER]: 1 }, modifiedBy: PEER }))
    const plan = await planPull({ local: view, remote: [remote(held), added] })
    assert.deepEqual(summary(plan.steps), ['write-file new.bin'])
    assert.deepEqual(plan.fetch.map(cidKey), added.chunks?.map(c => cidKey(c.cid)))
    // a chunk a live file holds: now the entries are read, for its place
    const insert = remote(await file('insert.bin', ['new', 'held'], { version: { [PEER]: 1 }, modifiedBy: PEER }))
    await assert.rejects(planPull({ local: view, remote: [insert] }), /values\(\) read/)
  })

  it('finds colliding spellings through the index\'s spellings (no local entry read) exactly as the long way', async () => {
    const mine = [
      await file('Docs', [], { type: 'dir', size: 0, chunks: undefined }), await file('Docs/a', ['a']),
      await file('readme.md', ['r']), await file('x/y/z', ['z']), await file('gone', ['g'], { deleted: true })
    ]
    const index = await LocalIndex.load('s', new ShareRecords(new MemoryShareKv()))
    await index.set(mine)
    const longWay: LocalIndexView = { get: (p) => index.get(p), values: () => index.values(), keys: () => index.keys() }
    const noValues: LocalIndexView = { get: (p) => index.get(p), keys: () => index.keys(), hasChunk: (cid) => index.hasChunk(cid), values: () => { throw new Error('values() read') }, spellingsOf: (k) => index.spellingsOf(k) }
    const theirs = async (path: string): Promise<ShareEntry> => remote(await file(path, [path], { version: { [PEER]: 1 }, modifiedBy: PEER }))
    // [remote paths, refused, found without reading a local entry]
    const cases: Array<[string[], Record<string, string>, boolean]> = [
      [['new/file', 'x/y/other'], {}, true],
      // a tombstone's spelling refuses nothing, but only the long way can tell
      [['Gone'], {}, false],
      [['docs/b'], { 'docs/b': 'collision' }, false],
      [['README.md', 'ok'], { 'README.md': 'collision' }, false],
      [['N', 'n'], { n: 'collision' }, false],
      [['X/y/w'], { 'X/y/w': 'collision' }, false]
    ]
    for (const [paths, refused, fastOnly] of cases) {
      const remoteEntries = await Promise.all(paths.map(theirs))
      const errors = (plan: Awaited<ReturnType<typeof planPull>>): Record<string, string> => Object.fromEntries(plan.errors.map(e => [e.path, (e.error as PathRejectedError).reason]))
      const fast = await planPull({ local: index, remote: remoteEntries })
      const slow = await planPull({ local: longWay, remote: remoteEntries })
      assert.deepEqual(errors(fast), refused, paths.join())
      assert.deepEqual(errors(slow), refused, paths.join())
      assert.deepEqual(summary(fast.steps), summary(slow.steps))
      if (fastOnly) await planPull({ local: noValues, remote: remoteEntries })
      else await assert.rejects(planPull({ local: noValues, remote: remoteEntries }), /values\(\) read/)
      index.releaseCaches()
    }
    // a spelling known since the map was built counts too
    assert.deepEqual(index.spellingsOf('docs'), ['Docs'])
    await index.set([await file('DOCS/c', ['c'])])
    assert.deepEqual(index.spellingsOf('docs'), ['Docs', 'DOCS'])
  })

  it('locates with hasChunk exactly as without it: the same sources, fetches and bytes', async () => {
    const a = await file('a.bin', ['one', 'two', 'three'])
    const b = await file('b.bin', ['two', 'four'], { local: { ino: 2, mtimeMs: 1000 } })
    const gone = await file('gone.bin', ['five'], { deleted: true })
    const local = index(a, b, gone)
    const held = new Set([a, b].flatMap(e => e.chunks?.map(c => cidKey(c.cid)) ?? []))
    const view: LocalIndexView = { get: (p) => local.get(p), values: () => local.values(), keys: () => local.keys(), hasChunk: (cid) => held.has(cidKey(cid)) }
    const mixed = remote(await file('mixed.bin', ['four', 'five', 'six', 'one'], { version: { [PEER]: 1 }, modifiedBy: PEER }))
    const plain = await planPull({ local, remote: [mixed] })
    const viewed = await planPull({ local: view, remote: [mixed] })
    assert.deepEqual(viewed.steps, plain.steps)
    assert.deepEqual(viewed.fetch.map(cidKey), plain.fetch.map(cidKey))
    assert.equal(viewed.bytesLocal, plain.bytesLocal)
    const sources = (plain.steps[0] as Extract<PlanStep, { action: 'write-file' }>).chunks.map(c => c.source?.path)
    assert.deepEqual(sources, ['b.bin', undefined, undefined, 'a.bin'], 'a deleted file is no source; the first file holding a chunk is')
  })

  it('localChunkLocator: with `only`, maps just those chunks, each at the first live file holding it', async () => {
    const a = await file('a.bin', ['x', 'yy'])
    const b = await file('b.bin', ['yy', 'zzz'])
    const [x, yy, zzz] = [a.chunks![0], a.chunks![1], b.chunks![1]]
    const all = localChunkLocator([a, b])
    assert.deepEqual(await all.locate(zzz.cid), { path: 'b.bin', offset: 2, length: 3 })
    const some = localChunkLocator([a, b], [yy.cid, zzz.cid])
    assert.deepEqual(await some.locate(yy.cid), { path: 'a.bin', offset: 1, length: 2 })
    assert.deepEqual(await some.locate(zzz.cid), { path: 'b.bin', offset: 2, length: 3 })
    assert.equal(await some.locate(x.cid), undefined, 'not asked for: not mapped')
    assert.notEqual(cidKey(x.cid), cidKey(yy.cid))
  })

  it('a tombstone spelled like a new remote path is no collision; a live local spelling is', async () => {
    const gone = await file('Notes.md', ['old'], { deleted: true })
    const live = await file('Todo.md', ['t'])
    const add = async (path: string): Promise<ShareEntry> => remote(await file(path, ['n'], { version: { [PEER]: 1 }, modifiedBy: PEER }))
    const plan = await planPull({ local: index(gone, live), remote: [await add('notes.md'), await add('todo.md')] })
    assert.deepEqual(summary(plan.steps), ['write-file notes.md'])
    assert.deepEqual(plan.errors.map(e => [e.path, (e.error as PathRejectedError).reason]), [['todo.md', 'collision']])
  })
})
