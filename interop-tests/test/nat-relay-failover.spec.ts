/**
 * Issue 6, scenario 7: the relay (the public member device) dies in the middle of a share's sync.
 * With a direct WebRTC path between the homes the sync completes; with none (a symmetric NAT)
 * the share's status says so. Root only, like nat-lab.spec.ts.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { waitFor } from '@homecloud/test-support'
import { formatReport, labSkipReason, type ReportRow } from '../src/index.js'
import { buildWebRTCLab, connectRelayed, isWebRTC, peersOf, sha256, teardown, type Id, type WebRTCLab } from './webrtc-lab.js'

const SKIP = labSkipReason()
if (SKIP !== undefined) {
  console.log(`# NAT lab (relay failover) skipped: ${SKIP}`)
}

const rows: ReportRow[] = []
/** Big enough that the sync is still running when the relay is killed: ~3 s over the direct path, ~3 s through the relay. */
const FILE_BYTES = 32 * 1024 * 1024
const RELAYED_FILE_BYTES = 16 * 1024 * 1024

interface ShareStatus {
  state: 'idle' | 'scanning' | 'syncing' | 'paused' | 'error'
  files: number
  needBytes: number
  progress: number
  peers: Array<{ device: string, online: boolean, inSync: boolean }>
  lastError?: { code: string, message: string }
}

function summarise (s: ShareStatus | undefined): string {
  if (s === undefined) return 'no status'
  const peers = s.peers.map(p => `${p.device.slice(-6)} ${p.online ? 'online' : 'offline'}`).join(', ')
  return `share status ${s.state}, peers ${peers}${s.lastError === undefined ? '' : `, last error ${String(s.lastError.code)} ${s.lastError.message}`}`
}

async function shareStatus (l: WebRTCLab, name: string): Promise<ShareStatus> {
  return l.b.json<ShareStatus>(['share', 'status', name])
}

/**
 * A shares a folder holding one file of `bytes` with the swarm, B accepts it; resolves once B's
 * sync is under way (bytes still needed), with the path of A's file and of B's copy.
 */
async function startSync (l: WebRTCLab, bytes = FILE_BYTES): Promise<{ source: string, copy: string, name: string }> {
  const folder = join(l.lab.dir, 'a-photos')
  mkdirSync(folder)
  const source = join(folder, 'video.bin')
  writeFileSync(source, randomBytes(bytes))
  const { name } = await l.a.json<{ name: string }>(['share', 'add', folder, '--swarm', 'family'])
  await waitFor(async () => (await l.b.json<{ offers: Array<{ name: string }> }>(['share', 'list'])).offers.some(o => o.name === name),
    { timeout: 20_000, interval: 250, what: 'B to see the share offer' })
  const target = join(l.lab.dir, 'b-photos')
  await l.b.json(['share', 'accept', name, target])
  await waitFor(async () => {
    const s = await shareStatus(l, name)
    // needBytes counts whole files: it stays at the file's size until the file is written
    return s.state === 'syncing' && s.needBytes > 0 ? s : undefined
  }, { timeout: 30_000, interval: 100, what: 'B\'s sync to be under way' })
  return { source, copy: join(target, 'video.bin'), name }
}

describe('NAT lab: the relay dies mid-transfer (scenario 7)', { skip: SKIP ?? false }, () => {
  after(() => {
    if (rows.length > 0) console.log(`\nNAT lab report (relay failover)\n\n${formatReport(rows)}`)
  })

  describe('with a direct WebRTC path between the homes', () => {
    let l: WebRTCLab | undefined
    after(async () => { await teardown(l?.lab, l?.devices ?? []) })

    it('7: the sync completes without the relay', { timeout: 60_000 }, async () => {
      l = await buildWebRTCLab('typical', 'typical')
      await connectRelayed(l)
      await waitFor(async () => (await peersOf(l!.b)).some(p => p.peerId === l!.aId && isWebRTC(p)),
        { timeout: 20_000, interval: 100, what: 'a direct WebRTC connection from B to A' })
      const { source, copy, name } = await startSync(l)
      const killed = performance.now()
      l.pub.kill()
      const done = await waitFor(async () => {
        const s = await shareStatus(l!, name)
        return s.state === 'idle' && s.needBytes === 0 && s.files === 1 ? s : undefined
      }, { timeout: 30_000, interval: 250, what: 'B\'s sync to complete after the relay died' })
      const afterKillMs = performance.now() - killed
      assert.equal(sha256(copy), sha256(source))
      assert.ok(done.peers.some(p => p.online && p.inSync), JSON.stringify(done.peers))
      rows.push({
        scenario: '7 relay killed mid-sync',
        nat: 'typical / typical',
        path: 'direct (WebRTC)',
        note: `32 MiB share sync completed ${(afterKillMs / 1000).toFixed(1)} s after the relay died`
      })
    })
  })

  describe('with no path but the relay (a symmetric NAT)', () => {
    let l: WebRTCLab | undefined
    after(async () => { await teardown(l?.lab, l?.devices ?? []) })

    // once the relay is dead B has no connection left: A offline, the share in `error` with a
    // named cause, and the files not yet written still counted as needed
    it('7: the share status says A is offline and the sync cannot go on', {
      timeout: 60_000
    }, async () => {
      l = await buildWebRTCLab('typical', 'symmetric')
      await connectRelayed(l)
      const aDevice = (await l.a.json<Id>(['id'])).peerId
      const { source, copy, name } = await startSync(l, RELAYED_FILE_BYTES)
      l.pub.kill()
      // what the status says once B has noticed (A offline, the sync stopped), or after 20 s
      let last: ShareStatus | undefined
      await waitFor(async () => {
        last = await shareStatus(l!, name)
        return last.peers.find(p => p.device === aDevice)?.online === false && (last.state === 'error' || last.state === 'paused')
      }, { timeout: 20_000, interval: 500, what: 'B\'s share status to show A offline and the sync stopped' }).catch(() => {})
      const complete = existsSync(copy) && sha256(copy) === sha256(source)
      rows.push({
        scenario: '7 relay killed mid-sync',
        nat: 'typical / symmetric',
        path: 'relayed (then none)',
        note: `${complete ? 'copy complete (the sync beat the kill)' : 'copy incomplete'}; ${summarise(last)}`
      })
      assert.ok(last !== undefined)
      assert.equal(last.peers.find(p => p.device === aDevice)?.online, false, 'A shows offline')
      if (!complete) {
        assert.ok(last.state === 'paused' || last.state === 'error', `state ${last.state} while the copy is incomplete`)
        assert.ok(last.lastError !== undefined && last.lastError.code !== 'ERR_UNKNOWN', `a specific error code: ${JSON.stringify(last.lastError)}`)
        assert.ok(last.needBytes > 0 && last.progress < 1, `what is missing is still needed: ${last.needBytes} bytes, progress ${last.progress}`)
      }
    })
  })
})
