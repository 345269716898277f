/**
 * Type changes with two real daemons on loopback: a directory replaced by a
 * file on A reaches B (its files deleted into history, the file created),
 * and a concurrent type conflict (A makes `x` a file while B, stopped, makes
 * `x` a directory with files) ends with the same winner and the losing
 * directory kept under its conflict name on both devices.
 */
import assert from 'node:assert/strict'
import { mkdir, readFile, rm, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { removeDir, tempDir } from '@homecloud/test-support'
import type { HistoryVersion } from '@homecloud/node'
import { waitFor } from '../src/child.js'
import { cliJson } from './daemon-cli.js'
import { Daemons, converged, sha, shareBetween, shareStatus, startSwarm } from './share-daemons.js'

/** x.conflict-<device>-<yyyymmdd-hhmmss> (a directory name has no extension) */
const X_COPY = /^x\.conflict-[^/]+-\d{8}-\d{6}$/

describe('share type changes (real daemons)', async () => {
  const base = await tempDir('homecloud-share-types-')
  const [repoA, repoB] = ['a', 'b'].map((name) => join(base, name))
  const dirA = join(base, 'types-a')
  const dirB = join(base, 'types-b')
  const daemons = new Daemons()

  /** No path error on either device mentions `path` (or anything below it). */
  const noPathErrors = async (path: string): Promise<void> => {
    for (const repo of [repoA, repoB]) {
      const { pathErrors } = await shareStatus(repo, 'types')
      const mine = pathErrors.filter((e) => e.path === path || e.path.startsWith(`${path}/`))
      assert.deepEqual(mine, [], `${repo}: ${JSON.stringify(mine)}`)
    }
  }

  before(async () => {
    await startSwarm(daemons, [repoA, repoB])
    await mkdir(join(dirA, 'd', 'sub'), { recursive: true })
    await writeFile(join(dirA, 'd', 'f1.txt'), 'f1 in the directory\n')
    await writeFile(join(dirA, 'd', 'sub', 'f2.txt'), 'f2 deeper\n')
    await writeFile(join(dirA, 'other.txt'), 'other\n')
    await shareBetween(repoA, repoB, 'types', dirA, dirB)
    await converged([dirA, dirB], 'initial sync')
  })

  after(async () => {
    await daemons.killAll()
    await removeDir(base)
  })

  it('a directory with files replaced by a file on A: on B the files go to history, the directory goes, the file comes', async () => {
    await rm(join(dirA, 'd'), { recursive: true })
    await writeFile(join(dirA, 'd'), 'd is a file now\n')
    const synced = await converged([dirA, dirB], 'directory replaced by a file')
    assert.equal(synced.d, sha('d is a file now\n'))
    assert.equal(Object.keys(synced).some((p) => p.startsWith('d/')), false, JSON.stringify(synced))
    assert.equal(await readFile(join(dirB, 'd'), 'utf8'), 'd is a file now\n')
    const { versions } = await cliJson<{ versions: HistoryVersion[] }>(repoB, ['history', 'types', 'd/f1.txt'])
    assert.deepEqual(versions.map((v) => v.reason), ['deleted'], 'the synced file is kept in history')
    await noPathErrors('d')
  })

  it('concurrent type conflict: A makes x a file, B (stopped) makes x a directory with files; the file wins on both, the directory is kept as x.conflict-…', async () => {
    await daemons.kill(repoB)
    await writeFile(join(dirA, 'x'), 'x is a file on A\n')
    await waitFor(async () => (await shareStatus(repoA, 'types')).files === 3, 15_000, 'A scans x')
    await mkdir(join(dirB, 'x', 'sub'), { recursive: true })
    await writeFile(join(dirB, 'x', 'one.txt'), 'one on B\n')
    await writeFile(join(dirB, 'x', 'sub', 'two.txt'), 'two on B\n')
    // the earlier change loses the tie-break: the directory, an hour back
    const earlier = new Date(Date.now() - 3600_000)
    await utimes(join(dirB, 'x'), earlier, earlier)
    await daemons.start(repoB)
    await daemons.connect(repoB, [repoA])
    const synced = await converged([dirA, dirB], 'type conflict', 30_000)
    assert.equal(synced.x, sha('x is a file on A\n'))
    const copies = Object.keys(synced).filter((p) => X_COPY.test(p))
    assert.equal(copies.length, 1, JSON.stringify(synced))
    assert.equal(synced[copies[0]], 'dir')
    assert.equal(synced[`${copies[0]}/one.txt`], sha('one on B\n'))
    assert.equal(synced[`${copies[0]}/sub/two.txt`], sha('two on B\n'))
    assert.equal(Object.keys(synced).some((p) => p.startsWith('x/')), false, JSON.stringify(synced))
    // both devices settle on the same snapshot, with no error left for x
    await waitFor(async () => {
      const [a, b] = await Promise.all([shareStatus(repoA, 'types'), shareStatus(repoB, 'types')])
      return a.head?.snapshot != null && a.head.snapshot === b.head?.snapshot
    }, 20_000, 'A and B announce the same snapshot')
    await noPathErrors('x')
  })
})
