import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { ShareStatus } from '@homecloud/node'
import { formatRevert, formatShareStatus, formatWaiting } from '../src/commands/share.js'

const NOW = 1_800_000_000_000

function status (extra: Partial<ShareStatus> = {}): ShareStatus {
  return {
    share: { id: 'f'.repeat(32), name: 'docs', swarm: 'family', path: '/srv/docs', mode: 'send-receive', createdAt: NOW - 60_000 },
    state: 'idle',
    files: 2,
    bytes: 2048,
    needFiles: 0,
    needBytes: 0,
    progress: 1,
    peers: [{ device: 'P1', name: 'box-a', online: true, retrying: false, inSync: false, applied: false, seq: 3 }],
    locallyChanged: 0,
    pathErrors: [],
    watcher: 'watching',
    historyBytes: 0,
    waitingFiles: 0,
    ...extra
  }
}

describe('share output', () => {
  it('a pull waiting for chunks no member serves: how many files and when the next try is', () => {
    const text = formatShareStatus(status({ waitingFiles: 3, nextRetryAt: NOW + 125_000 }), NOW)
    assert.match(text, /\n {2}waiting\s+3 files for chunks no member online serves; next try in 2m 5s \(at once when a member connects or has new content\)\n/)
    assert.equal(formatWaiting({ waitingFiles: 1, nextRetryAt: NOW - 10 }, NOW), '1 file for chunks no member online serves; next try now (at once when a member connects or has new content)')
  })

  it('nothing waiting: no such line', () => {
    const text = formatShareStatus(status(), NOW)
    assert.doesNotMatch(text, /waiting/)
    assert.match(text, /^docs \(send-receive\) \/srv\/docs\n/)
  })

  it('a revert names the paths that failed', () => {
    assert.equal(formatRevert('docs', { reverted: 2, failed: [], failedTotal: 0 }), 'reverted 2 paths of docs\n')
    assert.match(formatRevert('docs', { reverted: 1, failed: [{ path: 'added', code: 'ERR_LOCAL_CHANGED', message: 'holds keep.tmp' }], failedTotal: 3 }),
      /^reverted 1 path of docs; 3 paths failed \(the first 1 below\):\n {2}added {2}ERR_LOCAL_CHANGED {2}holds keep\.tmp\n$/)
  })
})
