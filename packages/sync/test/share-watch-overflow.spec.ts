/**
 * The kernel drops inotify events past `fs.inotify.max_queued_events` while the
 * process is busy, and Node never says so. A share scans only the folders its
 * watcher names; after an overflow it must scan everything, or a change whose
 * events were dropped waits for the hourly rescan.
 */
import assert from 'node:assert/strict'
import { mkdirSync, writeFileSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { inotifyQueueLimit } from '../src/index.js'
import { inTempDir, skipQueueOverflow, waitFor } from './helpers.js'
import { createDevice, stopDevice } from './share-devices.js'

describe('a share after its watcher\'s queue overflowed', { skip: skipQueueOverflow() }, () => {
  it('finds a change whose events the kernel dropped, and says so in status', async () => {
    await inTempDir(async (root) => {
      const dir = join(root, 'docs')
      await mkdir(join(dir, 'many'), { recursive: true })
      await mkdir(join(dir, 'late'))
      const a = await createDevice('a', join(root, 'a'))
      try {
        await a.swarms.create('family')
        await a.shares.addShare(dir, { swarm: 'family', name: 'docs' })
        await waitFor(() => a.shares.status('docs').state === 'idle' && a.shares.status('docs').lastScanAt !== undefined, { timeout: 15_000 })
        assert.equal(a.shares.status('docs').watcher, 'watching')
        // written without yielding, two events a file (created, written): the queue fills, and
        // the events of the last file, in a folder of its own, are dropped
        const files = Math.ceil(inotifyQueueLimit() / 2) + 500
        for (let i = 0; i < files; i++) writeFileSync(join(dir, 'many', `f${i}`), `${i}`)
        writeFileSync(join(dir, 'late', 'last.txt'), 'its events never arrive')
        mkdirSync(join(dir, 'late', 'nor-these'))
        await waitFor(() => a.shares.status('docs').files === files + 1 && a.shares.status('docs').state === 'idle', { timeout: 60_000, interval: 50 })
        assert.match(a.shares.status('docs').watcherError ?? '', /watch queue overflowed .*rescanned everything/)
        assert.equal(a.shares.status('docs').watcher, 'watching', 'the watcher goes on')
      } finally {
        await stopDevice(a)
      }
    })
  })
})
