/**
 * Partial heads between two real devices (libp2p on loopback, LevelDB, real
 * files): while A's scan is held on a big file, B already has the small files
 * A hashed before it (a partial head applied before the final one), and a
 * file moved in that same scan reaches B as a rename (same inode, no chunk
 * fetched, never gone under both names), held back to the final head.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { lstat, mkdir, rename, stat, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { shareService, type ShareServiceComponents } from '../src/index.js'
import { removeDir, tempDir, waitFor } from './helpers.js'
import { readText, sameTree, stopDevice, twoDevicesSharing, type TestDevice } from './share-devices.js'

const BOUND = { timeout: 15_000, interval: 10 }
const SMALL = 8

const exists = async (path: string): Promise<boolean> => lstat(path).then(() => true, () => false)

describe('partial heads between two devices', { timeout: 90_000 }, () => {
  let root: string
  let dirA: string
  let dirB: string
  let a: TestDevice | undefined
  let b: TestDevice | undefined
  let shareId: string
  // A's hashing of big.bin waits on this once armed: its scan cannot end before the test lets it
  let hold: PromiseWithResolvers<void> | undefined
  let bigHeld = false

  before(async () => {
    root = await tempDir('hc-partial-')
    dirA = join(root, 'a', 'docs')
    dirB = join(root, 'b', 'docs')
    await mkdir(join(dirA, 'old'), { recursive: true })
    await writeFile(join(dirA, 'seed.txt'), 'seed\n')
    await writeFile(join(dirA, 'old', 'm.bin'), randomBytes(512 * 1024))
    const devices = await twoDevicesSharing(root, { name: 'b' }, {
      // scans only when the test asks (no watcher, no poll during the test)
      watch: false,
      pollIntervalMs: 600_000,
      partialHeadAfterMs: 20
    }, {
      chunkFile: async (path, options, next) => {
        if (hold != null && basename(path) === 'big.bin') {
          bigHeld = true
          await hold.promise
        }
        return next(path, options)
      }
    })
    a = devices.a
    b = devices.b
    shareId = (await a.shares.addShare(dirA, { swarm: 'family', name: 'docs' })).id
    await waitFor(() => b?.shares.offers().some(o => o.id === shareId), BOUND)
    await b.shares.acceptShare(shareId, dirB)
    await waitFor(async () => sameTree(dirA, dirB), BOUND)
  })

  after(async () => {
    hold?.resolve()
    await stopDevice(a)
    await stopDevice(b)
    await removeDir(root)
  })

  it('rejects a partialHeadAfterMs that is not a positive integer', () => {
    const components = { peerId: a?.peerId } as unknown as ShareServiceComponents
    for (const partialHeadAfterMs of [0, -1, 1.5, Number.NaN]) {
      assert.throws(() => shareService({ partialHeadAfterMs })(components), { code: 'ERR_INVALID_PARAMETERS' })
    }
  })

  it('sends the files hashed so far before the scan ends, and a move in that scan as a rename', async () => {
    assert.ok(a != null && b != null)
    const moved = { from: join(dirB, 'old', 'm.bin'), to: join(dirB, 'moved.bin') }
    const inode = (await stat(moved.from)).ino
    const received = b.exchange.stats().bytesReceived

    // one scan finds: a move (root, first in name order), small new files, then the big file in zz/ (walked last)
    await rename(join(dirA, 'old', 'm.bin'), join(dirA, 'moved.bin'))
    let smallBytes = 0
    for (let i = 0; i < SMALL; i++) {
      const bytes = randomBytes(1024 + i * 512)
      smallBytes += bytes.byteLength
      await writeFile(join(dirA, `s${i}.txt`), bytes)
    }
    const big = randomBytes(2 * 1024 * 1024)
    await mkdir(join(dirA, 'zz'))
    await writeFile(join(dirA, 'zz', 'big.bin'), big)

    // B never has neither name of the moved file (a delete then a new file would show that gap); stops with the test, bounded
    let gap = false
    const watch = new AbortController()
    const watcher = (async () => {
      const until = Date.now() + BOUND.timeout * 3
      while (!watch.signal.aborted && Date.now() < until) {
        if (!(await exists(moved.from)) && !(await exists(moved.to))) gap = true
        await new Promise(resolve => setTimeout(resolve, 1))
      }
    })()
    try {
      await scanAndCheck()
    } finally {
      watch.abort()
      await watcher
    }
    assert.equal(gap, false, 'the moved file was always on B under one of its names')
    assert.equal(await exists(moved.from), false)
    assert.equal((await stat(moved.to)).ino, inode, 'B renamed its copy rather than writing a new one')
    // only the new files' chunks crossed the wire, none of the moved file's
    const fetched = b.exchange.stats().bytesReceived - received
    assert.ok(fetched >= smallBytes + big.byteLength, `fetched ${fetched}`)
    assert.ok(fetched < smallBytes + big.byteLength + 512 * 1024, `fetched ${fetched}`)
    assert.ok(await sameTree(dirA, dirB))

    async function scanAndCheck (): Promise<void> {
      assert.ok(a != null && b != null)
      hold = Promise.withResolvers<void>()
      let scanned = false
      const scan = a.shares.rescan(shareId).finally(() => { scanned = true })
      scan.catch(() => {}) // awaited below; a failed assertion before that must not leave it unhandled
      try {
        // every small file reaches B while A's scan is still held on big.bin: a partial head, applied
        await waitFor(async () => {
          for (let i = 0; i < SMALL; i++) if (!(await exists(join(dirB, `s${i}.txt`)))) return false
          return true
        }, BOUND)
        assert.ok(bigHeld, 'A is hashing big.bin')
        assert.equal(scanned, false, 'A\'s scan has not ended')
        for (let i = 0; i < SMALL; i++) assert.deepEqual(await readText(join(dirB, `s${i}.txt`)), await readText(join(dirA, `s${i}.txt`)))
        assert.equal(await exists(join(dirB, 'zz', 'big.bin')), false, 'the file being hashed is not sent')
        // the move is held back for the final head: B neither copied it nor lost the source
        assert.equal(await exists(moved.to), false, 'the moved file waits for the final head')
        assert.equal((await stat(moved.from)).ino, inode)
      } finally {
        hold.resolve()
      }
      await scan

      await waitFor(async () => sameTree(dirA, dirB), BOUND)
    }
  })
})
