import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { chmod, mkdir, readdir, stat, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { drain, inTempDir, loopbackNode, removeDir, seededBytes, seededRandom, tempDir, waitFor, type LoopbackNode } from '../src/index.js'

describe('waitFor', () => {
  it('returns the first truthy value; a throw counts as "not yet"', async () => {
    let calls = 0
    const value = await waitFor(() => {
      calls++
      if (calls === 1) throw new Error('not there yet')
      return calls >= 3 ? { calls } : undefined
    }, { interval: 1 })
    assert.deepEqual(value, { calls: 3 })
  })

  it('fails after the bound, naming what it waited for, with the last throw as cause', async () => {
    const started = Date.now()
    const last = new Error('still missing')
    await assert.rejects(waitFor(() => { throw last }, { timeout: 50, interval: 5, what: 'the file' }), (err: Error) => {
      assert.equal(err.message, 'timed out after 50 ms waiting for the file')
      assert.equal(err.cause, last)
      return true
    })
    assert.ok(Date.now() - started < 2_000, 'bounded')
  })
})

describe('seededRandom and seededBytes', () => {
  it('replay from the seed: the same seed, the same draws, all in [0, 1)', () => {
    const draws = (seed: number): number[] => { const r = seededRandom(seed); return Array.from({ length: 100 }, () => r()) }
    assert.deepEqual(draws(7), draws(7))
    assert.notDeepEqual(draws(7), draws(8))
    assert.ok(draws(7).every(x => x >= 0 && x < 1))
    // mulberry32's first draw for seed 1: seeds printed by failing runs must keep meaning the same data
    assert.equal(seededRandom(1)(), 0.6270739405881613)
  })

  it('gives exactly `size` bytes, the same for the same seed', () => {
    const a = seededBytes(seededRandom(3), 1027)
    assert.equal(a.byteLength, 1027)
    assert.deepEqual(seededBytes(seededRandom(3), 1027), a)
    assert.notDeepEqual(seededBytes(seededRandom(4), 1027), a)
  })
})

describe('tempDir and removeDir', () => {
  it('makes a fresh empty folder with the prefix; removeDir removes it with its content, twice is fine', async () => {
    const dir = await tempDir('hc-support-')
    assert.ok(basename(dir).startsWith('hc-support-'))
    assert.ok((await stat(dir)).isDirectory())
    assert.deepEqual(await readdir(dir), [])
    await writeFile(join(dir, 'x'), 'x')
    await removeDir(dir)
    await assert.rejects(stat(dir), { code: 'ENOENT' })
    await removeDir(dir)
  })
})

/**
 * Puts a file in `dir` that `rm -r` cannot remove: in a read-only folder, or (as root, whom
 * modes do not stop) marked immutable. Returns the undo, or why it cannot be done here.
 */
async function blockRemoval (dir: string): Promise<(() => Promise<void>) | string> {
  const locked = join(dir, 'locked')
  await mkdir(locked)
  await writeFile(join(locked, 'f'), 'x')
  if (process.getuid?.() !== 0) {
    await chmod(locked, 0o500)
    return async () => { await chmod(locked, 0o700) }
  }
  try {
    execFileSync('chattr', ['+i', join(locked, 'f')], { stdio: 'ignore' })
  } catch (err) {
    return `running as root without a working chattr: ${(err as Error).message}`
  }
  return async () => { execFileSync('chattr', ['-i', join(locked, 'f')]) }
}

describe('inTempDir', () => {
  it('runs fn in a fresh folder with the prefix, returns its value and removes the folder', async () => {
    let seen = ''
    const value = await inTempDir(async (dir) => {
      seen = dir
      assert.ok(basename(dir).startsWith('hc-in-'))
      assert.deepEqual(await readdir(dir), [])
      await writeFile(join(dir, 'x'), 'x')
      return { answer: 42 }
    }, 'hc-in-')
    assert.deepEqual(value, { answer: 42 })
    await assert.rejects(stat(seen), { code: 'ENOENT' })
  })

  it('removes the folder when fn throws, and rejects with fn\'s own error', async () => {
    let seen = ''
    const failure = new Error('the test failed')
    await assert.rejects(inTempDir(async (dir) => {
      seen = dir
      await writeFile(join(dir, 'x'), 'x')
      throw failure
    }), (err: unknown) => err === failure)
    await assert.rejects(stat(seen), { code: 'ENOENT' })
  })

  it('a folder it cannot remove: fn\'s error still wins; after a success the removal error rejects', async (t) => {
    const failure = new Error('the test failed')
    const dirs: string[] = []
    const undos: Array<() => Promise<void>> = []
    let cannot: string | undefined
    // fn makes its folder unremovable, then throws or returns
    const blocking = (fail: boolean) => async (dir: string): Promise<string> => {
      dirs.push(dir)
      const undo = await blockRemoval(dir)
      if (typeof undo === 'string') cannot = undo
      else undos.push(undo)
      if (fail) throw failure
      return 'done'
    }
    try {
      await assert.rejects(inTempDir(blocking(true)), (err: unknown) => err === failure)
      if (cannot != null) {
        t.skip(cannot)
        return
      }
      assert.ok((await stat(dirs[0])).isDirectory(), 'the removal did fail')
      // the code depends on the platform and on what stopped the removal (EPERM, EACCES, ENOTDIR...)
      await assert.rejects(inTempDir(blocking(false)), (err: Error) => typeof (err as { code?: unknown }).code === 'string')
      assert.ok((await stat(dirs[1])).isDirectory(), 'the removal did fail')
    } finally {
      for (const undo of undos) await undo()
      for (const dir of dirs) await removeDir(dir)
    }
  })
})

describe('loopbackNode and drain', () => {
  const PROTOCOL = '/homecloud-test/sink/1.0.0'
  let a: LoopbackNode
  let b: LoopbackNode
  const got: Array<Promise<{ bytes: number, reset: boolean }>> = []

  before(async () => {
    [a, b] = await Promise.all([loopbackNode(), loopbackNode()])
    await b.handle(PROTOCOL, (stream) => { got.push(drain(stream)) })
  })
  after(async () => { await Promise.all([a?.stop(), b?.stop()]) })

  it('listens on loopback only, with identify', () => {
    assert.ok(a.getMultiaddrs().length > 0)
    assert.ok(a.getMultiaddrs().every(ma => ma.toString().startsWith('/ip4/127.0.0.1/tcp/')))
    assert.ok(a.getProtocols().includes('/ipfs/id/1.0.0'))
  })

  it('drain counts the bytes of a stream closed by its writer, and sees a reset', async () => {
    const closed = await a.dialProtocol(b.getMultiaddrs(), PROTOCOL)
    closed.send(new Uint8Array(3))
    await closed.close()
    assert.deepEqual(await waitFor(() => got[0]), { bytes: 3, reset: false })

    const reset = await a.dialProtocol(b.getMultiaddrs(), PROTOCOL)
    reset.send(new Uint8Array(1))
    await waitFor(() => got[1] != null, { what: 'the second stream' })
    reset.abort(new Error('gone'))
    assert.equal((await got[1]).reset, true)
  })
})
