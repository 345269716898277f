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
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createChunkExchange } from '@homecloud/exchange'
import { chunkCid } from '@homecloud/store'
import type { ShareEntry } from '../src/index.js'
import { waitFor } from './helpers.js'
import { shareWithCraftedMember, stopFixture, type MemberFixture } from './share-devices.js'
import type { CID } from 'multiformats/cid'

const BOUND = { timeout: 15_000, interval: 20 }

describe('a pull beside the apply of an earlier one', () => {
  let t: MemberFixture
  const chunks = new Map<string, Uint8Array>()
  const slow = randomBytes(100 * 1024)
  const fast = Buffer.from('a small file of the newer head\n')
  let slowCid: CID
  const gate = Promise.withResolvers<void>()
  let slowAsked = false

  const file = async (path: string, bytes: Uint8Array): Promise<ShareEntry> => {
    const cid = await chunkCid(bytes)
    chunks.set(cid.toString(), bytes)
    return t.member.file(path, { cid, length: bytes.byteLength })
  }

  before(async () => {
    t = await shareWithCraftedMember('hc-overlap-')
    slowCid = await chunkCid(slow)
    // the member's chunk server: the slow file's chunk only once the test lets it go
    await t.m.exchange.stop()
    t.m.exchange = createChunkExchange({
      registrar: t.m.node,
      connectionManager: { openStream: async (peer, protocol, options) => t.m.node.dialProtocol(peer, protocol, options) }
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
    await t.m.exchange.start()
  })

  after(async () => {
    gate.resolve()
    await stopFixture(t)
  })

  it('the newer head\'s new file arrives while the older pull still waits for its chunk; then both, and the newer head is applied', async () => {
    const slowEntry = await file('slow.bin', slow)
    await t.member.publish([slowEntry], 1)
    await waitFor(() => slowAsked, BOUND)
    await t.member.publish([slowEntry, await file('fast.txt', fast)], 2)
    await waitFor(async () => (await readFile(join(t.dir, 'fast.txt')).catch(() => undefined))?.equals(fast), BOUND)
    assert.equal(await readFile(join(t.dir, 'slow.bin')).catch(() => undefined), undefined, 'the first pull is still held')
    const during = t.a.shares.status(t.shareId)
    assert.equal(during.peers.find(p => p.device === t.m.peerId.toString())?.applied, false, 'not applied while slow.bin is missing')
    gate.resolve()
    await waitFor(async () => (await readFile(join(t.dir, 'slow.bin')).catch(() => undefined))?.equals(slow), BOUND)
    await waitFor(() => t.a.shares.status(t.shareId).peers.find(p => p.device === t.m.peerId.toString())?.applied === true, BOUND)
    const status = t.a.shares.status(t.shareId)
    assert.equal(status.files, 2)
    assert.deepEqual(status.pathErrors, [])
    assert.equal(status.peers.find(p => p.device === t.m.peerId.toString())?.seq, 2)
  })
})
