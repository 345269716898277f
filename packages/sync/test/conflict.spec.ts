import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { seededRandom } from '@homecloud/test-support'
import {
  bumpVersion, checkSharePath, compareVersions, conflictPath, conflictTimestamp, isVersionVector, mergeVersions,
  resolveVersions, type Contender, type VersionVector
} from '../src/index.js'

const A = '12D3KooWAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'
const B = '12D3KooWBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB'
const C = '12D3KooWCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC'

describe('version vectors', () => {
  it('compares equal, greater, less, concurrent', () => {
    assert.equal(compareVersions({}, {}), 'equal')
    assert.equal(compareVersions({ [A]: 1 }, { [A]: 1 }), 'equal')
    assert.equal(compareVersions({ [A]: 2 }, { [A]: 1 }), 'greater')
    assert.equal(compareVersions({ [A]: 1 }, {}), 'greater')
    assert.equal(compareVersions({ [A]: 1 }, { [A]: 1, [B]: 1 }), 'less')
    assert.equal(compareVersions({ [A]: 2, [B]: 1 }, { [A]: 1, [B]: 2 }), 'concurrent')
  })

  it('merge dominates both; bump adds one change', () => {
    const rand = seededRandom(7)
    const devices = [A, B, C]
    const random = (): VersionVector => Object.fromEntries(devices.filter(() => rand() < 0.7).map(d => [d, 1 + Math.floor(rand() * 4)]))
    for (let i = 0; i < 500; i++) {
      const a = random()
      const b = random()
      const m = mergeVersions(a, b)
      assert.ok(['greater', 'equal'].includes(compareVersions(m, a)))
      assert.ok(['greater', 'equal'].includes(compareVersions(m, b)))
      assert.deepEqual(mergeVersions(a, b), mergeVersions(b, a), 'merge commutes')
      assert.equal(compareVersions(bumpVersion(m, C), m), 'greater')
      // antisymmetry
      const ab = compareVersions(a, b)
      const ba = compareVersions(b, a)
      assert.equal(ba, ab === 'greater' ? 'less' : ab === 'less' ? 'greater' : ab)
    }
  })

  it('validates shape', () => {
    assert.ok(isVersionVector({ [A]: 3 }, 4))
    assert.ok(!isVersionVector({ [A]: 0 }, 4))
    assert.ok(!isVersionVector({ [A]: 1.5 }, 4))
    assert.ok(!isVersionVector({ '': 1 }, 4))
    assert.ok(!isVersionVector([1], 4))
    assert.ok(!isVersionVector({ a: 1, b: 1 }, 1))
  })
})

function version (init: Partial<Contender>): Contender {
  return { path: 'docs/report.txt', version: {}, modifiedBy: A, mtime: Date.UTC(2024, 4, 6, 7, 8, 9), ...init }
}

describe('resolveVersions', () => {
  it('a dominating version wins without a conflict, whatever the clocks say', () => {
    const older = version({ version: { [A]: 1 }, mtime: Date.UTC(2030, 0, 1) }) // clock one year ahead
    const newer = version({ version: { [A]: 1, [B]: 1 }, modifiedBy: B, mtime: Date.UTC(2020, 0, 1) })
    assert.deepEqual(resolveVersions(older, newer), { kind: 'ordered', winner: 'b' })
    assert.deepEqual(resolveVersions(newer, older), { kind: 'ordered', winner: 'a' })
    assert.deepEqual(resolveVersions(newer, newer), { kind: 'ordered', winner: 'equal' })
  })

  it('an edit beats a concurrent delete, on both sides', () => {
    const edit = version({ version: { [A]: 2 }, modifiedBy: A, mtime: 1000 })
    const del = version({ version: { [A]: 1, [B]: 1 }, modifiedBy: B, mtime: 9_999_999, deleted: true })
    for (const [x, y, w] of [[edit, del, 'a'], [del, edit, 'b']] as const) {
      const r = resolveVersions(x, y)
      assert.equal(r.kind, 'conflict')
      assert.equal(r.winner, w)
      assert.equal(r.kind === 'conflict' ? r.conflictPath : 'x', undefined, 'a delete leaves no conflict copy')
      assert.deepEqual(r.kind === 'conflict' ? r.version : {}, { [A]: 2, [B]: 1 })
    }
  })

  it('concurrent edits: the later mtime wins, the same on both devices, with the same conflict name', () => {
    const a = version({ version: { [A]: 2, [B]: 1 }, modifiedBy: A, mtime: Date.UTC(2024, 0, 2, 3, 4, 5) })
    const b = version({ version: { [A]: 1, [B]: 2 }, modifiedBy: B, mtime: Date.UTC(2024, 0, 2, 3, 4, 6) })
    const onA = resolveVersions(a, b)
    const onB = resolveVersions(b, a)
    assert.equal(onA.kind, 'conflict')
    assert.equal(onA.winner, 'b')
    assert.equal(onB.winner, 'a')
    const pa = onA.kind === 'conflict' ? onA.conflictPath : ''
    const pb = onB.kind === 'conflict' ? onB.conflictPath : ''
    assert.equal(pa, `docs/report.conflict-${A.slice(-8)}-20240102-030405.txt`)
    assert.equal(pa, pb)
    assert.deepEqual(onA.kind === 'conflict' && onA.version, { [A]: 2, [B]: 2 })
  })

  it('equal mtimes: the greater device id wins', () => {
    const a = version({ version: { [A]: 1 }, modifiedBy: A, mtime: 5000 })
    const b = version({ version: { [B]: 1 }, modifiedBy: B, mtime: 5000 })
    assert.equal(resolveVersions(a, b).kind === 'conflict' && resolveVersions(a, b).winner, 'b')
    assert.equal(resolveVersions(b, a).kind === 'conflict' && resolveVersions(b, a).winner, 'a')
  })

  it('clock skew: mtime only breaks ties between concurrent changes, never overrides an order', () => {
    const rand = seededRandom(99)
    for (let i = 0; i < 300; i++) {
      const skew = (rand() - 0.5) * 2 * 365 * 24 * 3600 * 1000 // up to ±1 year
      const base = { [A]: 1 + Math.floor(rand() * 3), [B]: 1 + Math.floor(rand() * 3) }
      const next = bumpVersion(base, rand() < 0.5 ? A : B)
      const old = version({ version: base, mtime: Date.UTC(2024, 0, 1) + skew })
      const fresh = version({ version: next, mtime: Date.UTC(2024, 0, 1) - skew })
      assert.deepEqual(resolveVersions(old, fresh), { kind: 'ordered', winner: 'b' })
    }
  })

  it('exhaustive: for every pair of small versions both sides agree on the winner', () => {
    const vectors: VersionVector[] = []
    for (let a = 0; a <= 2; a++) for (let b = 0; b <= 2; b++) vectors.push(Object.fromEntries([[A, a], [B, b]].filter(([, n]) => n !== 0)))
    const variants: Contender[] = []
    for (const v of vectors) {
      for (const deleted of [false, true]) {
        for (const mtime of [1000, 2000]) {
          for (const by of [A, B]) variants.push(version({ version: v, deleted, mtime, modifiedBy: by }))
        }
      }
    }
    let conflicts = 0
    for (const x of variants) {
      for (const y of variants) {
        const xy = resolveVersions(x, y)
        const yx = resolveVersions(y, x)
        assert.equal(xy.kind, yx.kind)
        const winXY = xy.winner === 'a' ? x : xy.winner === 'b' ? y : undefined
        const winYX = yx.winner === 'a' ? y : yx.winner === 'b' ? x : undefined
        if (xy.kind === 'conflict' && yx.kind === 'conflict') {
          conflicts++
          if (!(x.deleted === true && y.deleted === true)) assert.equal(winXY, winYX, 'same winner on both devices')
          assert.equal(xy.conflictPath, yx.conflictPath)
          assert.deepEqual(xy.version, yx.version)
          if (x.deleted !== y.deleted) assert.notEqual(winXY?.deleted, true, 'edit beats delete')
        } else if (winXY !== undefined) {
          assert.equal(winXY, winYX)
        }
      }
    }
    assert.ok(conflicts > 0)
  })
})

describe('conflictPath', () => {
  it('formats NAME.conflict-<device>-<utc time>.EXT', () => {
    assert.equal(conflictTimestamp(Date.UTC(1999, 11, 31, 23, 59, 58, 999)), '19991231-235958')
    assert.equal(conflictPath('a.txt', B, 0), `a.conflict-${B.slice(-8)}-19700101-000000.txt`)
    assert.equal(conflictPath('dir/archive.tar.gz', B, 0), `dir/archive.tar.conflict-${B.slice(-8)}-19700101-000000.gz`)
    assert.equal(conflictPath('.bashrc', B, 0), `.bashrc.conflict-${B.slice(-8)}-19700101-000000`)
    assert.equal(conflictPath('Makefile', B, 0), `Makefile.conflict-${B.slice(-8)}-19700101-000000`)
  })

  it('keeps names within 255 bytes and valid, even for hostile device ids', () => {
    const long = `${'é'.repeat(120)}.txt`
    const p = conflictPath(`d/${long}`, B, 0)
    assert.ok(new TextEncoder().encode(p.slice(2)).byteLength <= 255)
    assert.ok(p.endsWith('.txt'))
    assert.equal(checkSharePath(p), p)
    const evil = conflictPath('a.txt', '../../etc/x:*', 0)
    assert.equal(checkSharePath(evil), evil)
    assert.ok(!evil.includes('/'))
  })
})
