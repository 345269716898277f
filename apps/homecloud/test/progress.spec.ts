import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Io } from '../src/command.js'
import { formatBytes, formatProgress, progressBar } from '../src/progress.js'

function capture (stderrIsTty: boolean): Io & { err: string } {
  const io = { err: '', stdout: () => {}, stderr: (text: string) => { io.err += text }, env: {}, stderrIsTty }
  return io
}

describe('progress bar', () => {
  it('formats bytes, totals, chunks, reused bytes, rate and peers on one line', () => {
    assert.equal(formatBytes(512), '512 B')
    assert.equal(formatBytes(3 * 1024 * 1024 + 300 * 1024), '3.3 MiB')
    const line = formatProgress('get', {
      phase: 'data', bytes: 512 * 1024, bytesTotal: 1024 * 1024, chunks: 2, chunksTotal: 4, reusedBytes: 256 * 1024, peers: [{}, {}]
    }, 2 * 1024 * 1024)
    assert.equal(line, 'get  data       [##########----------]  50%  512.0 KiB / 1.0 MiB  2/4 chunks  256.0 KiB reused  2.0 MiB/s  2 peers')
    assert.equal(formatProgress('gc', { phase: 'gc', bytes: 2048, chunks: 3 }, 0), 'gc  gc         2.0 KiB  3 chunks')
  })

  it('is silent when stderr is not a terminal', () => {
    const io = capture(false)
    const bar = progressBar(io, 'add')
    bar.update({ phase: 'index', bytes: 10, chunks: 1 })
    bar.done()
    assert.equal(io.err, '')
  })

  it('draws on a terminal, ignores malformed snapshots, and clears its line when done', () => {
    const io = capture(true)
    const bar = progressBar(io, 'add')
    bar.update({ phase: 'index', bytes: 'lots', chunks: 1 })
    assert.equal(io.err, '', 'a snapshot without numbers is not drawn')
    bar.update({ phase: 'index\u001b[2J', bytes: 1024, bytesTotal: 2048, chunks: 1 })
    assert.match(io.err, /^\radd {2}index {6}\[#{10}-{10}\] {2}50%/)
    assert.doesNotMatch(io.err, /\[2J/, 'no escape sequence from the daemon reaches the terminal')
    bar.done()
    assert.ok(io.err.endsWith('\r\u001b[K'))
  })
})
