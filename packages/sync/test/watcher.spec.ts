import assert from 'node:assert/strict'
import { mkdirSync, writeFileSync } from 'node:fs'
import { mkdir, rename, rm, writeFile } from 'node:fs/promises'
import { describe, it } from 'node:test'
import { inotifyQueueLimit, ShareWatcher, type ShareWatcherInit } from '../src/index.js'
import { inTempDir, removeDir, skipQueueOverflow, tempDir, waitFor } from './helpers.js'

/** A per-folder watcher (the Linux path, on any platform) counting the scans it asks for. */
function watcher (root: string, init: Partial<ShareWatcherInit> = {}): { w: ShareWatcher, changes: () => number, failures: Error[] } {
  let changes = 0
  const failures: Error[] = []
  const w = new ShareWatcher({
    root,
    debounceMs: 20,
    perFolder: true,
    onChange: () => { changes++ },
    onFailure: (err) => { failures.push(err) },
    ...init
  })
  return { w, changes: () => changes, failures }
}

/** A share folder and a staging folder beside it, both removed after `fn`. */
async function inTwoTempDirs (fn: (root: string, stage: string) => Promise<void>): Promise<void> {
  await inTempDir(async (root) => { await inTempDir(async (stage) => { await fn(root, stage) }) })
}

describe('ShareWatcher (one watch per folder)', () => {
  it('watches folders moved in (and below them), asks for a scan on changes inside, and drops the watches of removed folders', async () => {
    await inTwoTempDirs(async (root, stage) => {
    const { w, changes, failures } = watcher(root)
    try {
      await mkdir(`${root}/old/inner`, { recursive: true })
      assert.equal(w.start(), true)
      await waitFor(() => w.watchedFolders === 3)
      await mkdir(`${stage}/tree/a/b`, { recursive: true })
      await writeFile(`${stage}/tree/a/b/f`, 'x')
      await rename(`${stage}/tree`, `${root}/tree`)
      await waitFor(() => w.watchedFolders === 6, { timeout: 5000 })
      await waitFor(() => changes() >= 1 && !w.busy) // the move asked for a scan; nothing else is due
      const settled = changes()
      await writeFile(`${root}/tree/a/b/new`, 'deep change')
      await waitFor(() => changes() > settled, { timeout: 5000 })
      await rm(`${root}/old`, { recursive: true })
      await waitFor(() => w.watchedFolders === 4 && !w.busy, { timeout: 5000 })
      await rename(`${root}/tree/a`, `${root}/moved`)
      await waitFor(() => w.watchedFolders === 4 && !w.busy, { timeout: 5000 })
      const afterMove = changes()
      await writeFile(`${root}/moved/b/again`, 'inside the renamed folder')
      await waitFor(() => changes() > afterMove, { timeout: 5000 })
      assert.deepEqual(failures, [])
    } finally {
      w.stop()
    }
    })
  })

  it('says in which folders changes were seen: the folder of a changed file, the parent of a folder moved in, everything past the cap', async () => {
    await inTwoTempDirs(async (root, stage) => {
    const asked: Array<string[] | undefined> = []
    // a 200 ms pause ends a burst: each step below is one burst
    const { w, failures } = watcher(root, { onChange: (folders) => { asked.push(folders?.sort()) }, maxChangedFolders: 3, debounceMs: 1000, quietMs: 200 })
    try {
      await mkdir(`${root}/a/deep`, { recursive: true })
      await mkdir(`${root}/b`, { recursive: true })
      assert.equal(w.start(), true)
      await waitFor(() => w.watchedFolders === 4)
      await writeFile(`${root}/a/deep/f`, 'x')
      await writeFile(`${root}/b/g`, 'y')
      await waitFor(() => asked.length > 0 && !w.busy, { timeout: 5000 })
      assert.deepEqual(asked.flatMap(f => f ?? ['(all)']).sort(), ['a/deep', 'b'])
      asked.length = 0
      await mkdir(`${stage}/tree/x`, { recursive: true })
      await rename(`${stage}/tree`, `${root}/a/tree`)
      await waitFor(() => w.watchedFolders === 6 && asked.length > 0 && !w.busy, { timeout: 5000 })
      assert.ok(asked.every(f => f !== undefined && f.every(folder => folder === 'a' || folder.startsWith('a/'))), JSON.stringify(asked))
      assert.ok(asked.some(f => f?.includes('a') === true), 'the folder it came into')
      asked.length = 0
      await writeFile(`${root}/top`, 'at the root')
      await waitFor(() => asked.length > 0 && !w.busy, { timeout: 5000 })
      assert.deepEqual(asked, [['']])
      asked.length = 0
      for (const folder of ['a', 'a/deep', 'b', 'a/tree']) await writeFile(`${root}/${folder}/more`, 'past the cap of 3 folders')
      await waitFor(() => asked.length > 0 && !w.busy, { timeout: 5000 })
      assert.deepEqual(asked, [undefined])
      assert.deepEqual(failures, [])
    } finally {
      w.stop()
    }
    })
  })

  it('a lone change is scanned once changes pause, not a debounce later; a stream of changes at most a debounce after it began', async () => {
    const root = await tempDir()
    const { w, changes, failures } = watcher(root, { debounceMs: 1000, quietMs: 20 })
    try {
      assert.equal(w.start(), true)
      const lone = performance.now()
      await writeFile(`${root}/one`, 'x')
      await waitFor(() => changes() === 1, { timeout: 5000 })
      const loneMs = performance.now() - lone
      assert.ok(loneMs < 800, `a lone change scanned after ${Math.round(loneMs)} ms, not sooner than the 1000 ms debounce`)
      await waitFor(() => !w.busy)
      // a write every 5 ms for 2 s: no 20 ms pause (unless the machine is very busy), so the debounce ends the burst
      let writes = 0
      let writesBeforeScan = -1
      const started = performance.now()
      while (performance.now() - started < 2000) {
        await writeFile(`${root}/stream`, String(writes++))
        if (changes() > 1 && writesBeforeScan === -1) writesBeforeScan = writes
        await new Promise(resolve => setTimeout(resolve, 5))
      }
      assert.ok(writesBeforeScan > 0 && writesBeforeScan < writes, `the scan was asked for while the writes went on (${writesBeforeScan} of ${writes})`)
      assert.deepEqual(failures, [])
    } finally {
      w.stop()
      await removeDir(root)
    }
  })

  it('more folders than the cap fail over to rescans, once, and watch nothing', async () => {
    const root = await tempDir()
    const { w, failures } = watcher(root, { maxFolders: 3 })
    try {
      for (const d of ['a', 'b', 'c']) await mkdir(`${root}/${d}`)
      w.start()
      await waitFor(() => failures.length > 0)
      assert.equal(failures[0].name, 'LimitExceededError')
      assert.equal(w.failed, true)
      assert.equal(w.watchedFolders, 0)
      await mkdir(`${root}/d`)
      assert.equal(failures.length, 1)
    } finally {
      w.stop()
      await removeDir(root)
    }
  })

  it('a turn of the event loop that delivers a full queue of events asks every running watcher for everything, and says so', async () => {
    await inTwoTempDirs(async (root, other) => {
      const asked: Array<string[] | undefined> = []
      const overflows: number[] = []
      const { w, failures } = watcher(root, { queueLimit: 40, onChange: (folders) => { asked.push(folders) }, onOverflow: (events) => { overflows.push(events) } })
      const otherAsked: Array<string[] | undefined> = []
      const { w: otherWatcher } = watcher(other, { onChange: (folders) => { otherAsked.push(folders) }, onOverflow: (events) => { overflows.push(events) } })
      try {
        await mkdir(`${root}/burst`)
        await mkdir(`${root}/calm`)
        assert.equal(w.start(), true)
        assert.equal(otherWatcher.start(), true)
        await waitFor(() => w.watchedFolders === 3 && otherWatcher.watchedFolders === 1)
        await writeFile(`${root}/calm/one`, 'a lone change')
        await waitFor(() => asked.length > 0 && !w.busy, { timeout: 5000 })
        assert.deepEqual(asked, [['calm']], 'a few events: the folder they came from')
        asked.length = 0
        // written without yielding: the events wait in the kernel and arrive in one turn
        for (let i = 0; i < 30; i++) writeFileSync(`${root}/burst/f${i}`, 'x')
        await waitFor(() => asked.length > 0 && otherAsked.length > 0 && !w.busy && !otherWatcher.busy, { timeout: 5000 })
        assert.equal(overflows.length, 2, 'each running watcher is told once')
        assert.ok(overflows.every(n => n >= 40), `events counted: ${overflows.join(', ')}`)
        assert.deepEqual(asked, [undefined], 'everything, not the folder the events named')
        assert.deepEqual(otherAsked, [undefined], 'a watcher without events of its own rescans too: the queue is shared')
        asked.length = 0
        await writeFile(`${root}/calm/two`, 'the next turn counts afresh')
        await waitFor(() => asked.length > 0 && !w.busy, { timeout: 5000 })
        assert.deepEqual(asked, [['calm']])
        assert.equal(overflows.length, 2)
        assert.deepEqual(failures, [])
      } finally {
        w.stop()
        otherWatcher.stop()
      }
    })
  })

  it('a real overflow of the kernel\'s queue (fs.inotify.max_queued_events) is noticed', { skip: skipQueueOverflow() }, async () => {
    await inTempDir(async (root) => {
      const asked: Array<string[] | undefined> = []
      const overflows: number[] = []
      const { w, failures } = watcher(root, { onChange: (folders) => { asked.push(folders) }, onOverflow: (events) => { overflows.push(events) } })
      try {
        mkdirSync(`${root}/many`)
        assert.equal(w.start(), true)
        await waitFor(() => w.watchedFolders === 2)
        // two events a file (created, written): past the queue while this turn blocks the loop
        const files = Math.ceil(inotifyQueueLimit() / 2) + 1000
        for (let i = 0; i < files; i++) writeFileSync(`${root}/many/f${i}`, 'x')
        await waitFor(() => overflows.length > 0 && asked.length > 0 && !w.busy, { timeout: 30_000 })
        assert.equal(overflows.length, 1)
        assert.ok(overflows[0] >= inotifyQueueLimit(), `${overflows[0]} events in one turn`)
        assert.ok(asked.includes(undefined), 'a scan of everything')
        assert.deepEqual(failures, [])
      } finally {
        w.stop()
      }
    })
  })

  it('a missing share folder fails at start', async () => {
    const root = await tempDir()
    await removeDir(root)
    const { w, failures } = watcher(root)
    assert.equal(w.start(), false)
    assert.equal(failures.length, 1)
    assert.equal(w.failed, true)
  })
})
