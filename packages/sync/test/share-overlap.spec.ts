/**
 * A newer head while the pull of the one before is still applying (a member
 * publishing partial heads during a long scan): the new entries are pulled
 * beside it, the ones it is writing wait for it, and the newer head is
 * recorded as applied once both are in. Real libp2p on loopback, the real
 * share protocol, service and chunk exchange; the member serves one chunk
 * only when the test lets it, so the first pull is held mid-apply.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createChunkExchange } from '@homecloud/exchange'
import { chunkCid } from '@homecloud/store'
import { SHARE_PROTOCOL, encodeSnapshot, exchangeAnnounce, serveShareStream, signHead, type ShareEntry } from '../src/index.js'
import { removeDir, tempDir, waitFor } from './helpers.js'
import { createDevice, stopDevice, type TestDevice } from './share-devices.js'
import type { CID } from 'multiformats/cid'

const BOUND = { timeout: 15_000, interval: 20 }

describe('a pull beside the apply of an earlier one', () => {
  let root: string
  let dirA: string
  let a: TestDevice
  let m: TestDevice
  let shareId: string
  let swarm: string
  const blocks = new Map<string, Uint8Array>()
  let announced: Array<{ id: string, name: string, swarm: string, head: Uint8Array }> = []
  const chunks = new Map<string, Uint8Array>()
  const slow = randomBytes(100 * 1024)
  const fast = Buffer.from('a small file of the newer head\n')
  let slowCid: CID
  const gate = Promise.withResolvers<void>()
  let slowAsked = false

  const file = async (path: string, bytes: Uint8Array): Promise<ShareEntry> => {
    const cid = await chunkCid(bytes)
    chunks.set(cid.toString(), bytes)
    const device = m.peerId.toString()
    return { path, type: 'file', size: bytes.byteLength, mtime: 1_700_000_000_000, mode: 0o644, version: { [device]: 1 }, modifiedBy: device, chunks: [{ cid, length: bytes.byteLength }] }
  }

  async function publish (entries: ShareEntry[], seq: number): Promise<void> {
    const snapshot = await encodeSnapshot(entries)
    for (const b of snapshot.blocks) blocks.set(b.cid.toString(), b.bytes)
    const head = await signHead({ share: shareId, device: m.peerId.toString(), seq, snapshot: snapshot.root }, m.privateKey)
    announced = [{ id: shareId, name: 'docs', swarm, head }]
    const { stream, release } = await m.swarms.gate.dial(swarm, a.peerId, SHARE_PROTOCOL)
    try {
      await exchangeAnnounce(stream, announced, { signal: AbortSignal.timeout(5000) })
    } finally {
      release()
    }
  }

  before(async () => {
    root = await tempDir('hc-overlap-')
    dirA = join(root, 'a', 'docs')
    await mkdir(dirA, { recursive: true })
    a = await createDevice('a', join(root, 'a'))
    m = await createDevice('m', join(root, 'm'), {}, false)
    swarm = (await a.swarms.create('family')).id
    await m.swarms.join((await a.swarms.invite('family')).code)
    shareId = (await a.shares.addShare(dirA, { swarm: 'family', name: 'docs' })).id
    slowCid = await chunkCid(slow)
    await m.swarms.gate.handle(SHARE_PROTOCOL, async (stream) => {
      await serveShareStream(stream, {
        announce: async () => announced,
        bindShare: () => {},
        block: async (_share, cid) => blocks.get(cid.toString())
      }, { signal: AbortSignal.timeout(5000) })
    })
    // the member's chunk server: the slow file's chunk only once the test lets it go
    await m.exchange.stop()
    m.exchange = createChunkExchange({
      registrar: m.node,
      connectionManager: { openStream: async (peer, protocol, options) => m.node.dialProtocol(peer, protocol, options) }
    }, {
      serve: {
        source: {
          get: async (cid) => {
            if (cid.equals(slowCid)) {
              slowAsked = true
              await gate.promise
            }
            return chunks.get(cid.toString())
          }
        },
        policy: () => true
      }
    })
    await m.exchange.start()
  })

  after(async () => {
    gate.resolve()
    await stopDevice(a)
    await stopDevice(m)
    await removeDir(root)
  })

  it('the newer head\'s new file arrives while the older pull still waits for its chunk; then both, and the newer head is applied', async () => {
    const slowEntry = await file('slow.bin', slow)
    await publish([slowEntry], 1)
    await waitFor(() => slowAsked, BOUND)
    await publish([slowEntry, await file('fast.txt', fast)], 2)
    await waitFor(async () => (await readFile(join(dirA, 'fast.txt')).catch(() => undefined))?.equals(fast), BOUND)
    assert.equal(await readFile(join(dirA, 'slow.bin')).catch(() => undefined), undefined, 'the first pull is still held')
    const during = a.shares.status(shareId)
    assert.equal(during.peers.find(p => p.device === m.peerId.toString())?.applied, false, 'not applied while slow.bin is missing')
    gate.resolve()
    await waitFor(async () => (await readFile(join(dirA, 'slow.bin')).catch(() => undefined))?.equals(slow), BOUND)
    await waitFor(() => a.shares.status(shareId).peers.find(p => p.device === m.peerId.toString())?.applied === true, BOUND)
    const status = a.shares.status(shareId)
    assert.equal(status.files, 2)
    assert.deepEqual(status.pathErrors, [])
    assert.equal(status.peers.find(p => p.device === m.peerId.toString())?.seq, 2)
  })
})
