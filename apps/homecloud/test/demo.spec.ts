import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { access } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { describe, it } from 'node:test'
import { folderTree } from '@homecloud/sync'
import { waitFor } from '../src/child.js'

const DEMO = fileURLToPath(new URL('../src/demo.js', import.meta.url))

/** `npm start`'s demo, without a terminal: two devices connect and sync a folder, Ctrl-C stops both and cleans up. */
describe('demo', () => {
  it('connects two devices, syncs the sample folder, then stops them and removes its folder on SIGINT', async () => {
    const child = spawn(process.execPath, [DEMO], { stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.setEncoding('utf8').on('data', (text: string) => { output += text })
    child.stderr.setEncoding('utf8').on('data', (text: string) => { output += text })
    const exited = new Promise<number | null>((resolve) => { child.once('exit', (code) => { resolve(code) }) })
    try {
      await waitFor(() => output.includes('Press Ctrl-C') || child.exitCode !== null, 60_000, 'the demo was not ready')
      assert.match(output, /home-box \(12D3KooW\w+\) is connected to parents-box/)
      assert.match(output, /parents-box \(12D3KooW\w+\) is connected to home-box/)
      assert.match(output, /API http:\/\/127\.0\.0\.1:\d+ {2}token file \S+\/token/)
      const dir = /two devices on this machine, in (\S+)/.exec(output)?.[1]
      assert.ok(dir !== undefined, output)

      assert.match(output, /Both folders are identical \(4 files, compared by SHA-256\)/)
      const mine = /\n {2}home-box: (\S+)\n/.exec(output)?.[1]
      const theirs = /\n {2}parents-box: (\S+)\n/.exec(output)?.[1]
      assert.ok(mine !== undefined && theirs !== undefined, output)
      const tree = await folderTree(theirs)
      assert.deepEqual(Object.keys(tree), ['README.txt', 'notes', 'notes/ideas.md', 'notes/todo.txt', 'photos', 'photos/holiday.bin'])
      assert.deepEqual(tree, await folderTree(mine))
      assert.match(output, /Edit a file in one/)
      child.kill('SIGINT')
      assert.equal(await exited, 0, output)
      assert.match(output, /home-box stopped \(exit 0\)/)
      assert.match(output, /parents-box stopped \(exit 0\)/)
      await assert.rejects(access(dir), { code: 'ENOENT' })
    } finally {
      // on a failure, let the demo stop its own (detached) daemons before the hard kill
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM')
        await waitFor(() => child.exitCode !== null || child.signalCode !== null, 30_000, 'the demo did not stop').catch(() => { child.kill('SIGKILL') })
      }
    }
  })
})
