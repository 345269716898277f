import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { before, describe, it } from 'node:test'
import { chunkCid } from '@homecloud/store'
import { SERVICE } from '../src/libp2p-options.js'
import { InvalidParametersError, PublicContent, resolveShareConfig, type HomecloudNode } from '../src/index.js'
import { addressOf, startDevice, useDevices, waitFor } from './helpers.js'
import type { ChunkExchange, ChunkSink } from '@homecloud/exchange'
import type { CID } from 'multiformats/cid'
import { generateKeyPair } from '@libp2p/crypto/keys'

/** A sink that holds nothing and keeps what arrives: a fetch into it always asks the peer. */
function collector (): ChunkSink & { got: Map<string, Uint8Array> } {
  const got = new Map<string, Uint8Array>()
  return { got, has: async () => false, put: async (cid, bytes) => { got.set(cid.toString(), bytes) } }
}

function exchangeOf (device: HomecloudNode): ChunkExchange {
  return device.libp2p.services[SERVICE.chunks] as ChunkExchange
}

/** Fetches `cid` from `from` into a fresh sink: the bytes, or undefined when refused. */
async function fetchFrom (device: HomecloudNode, from: HomecloudNode, cid: CID): Promise<Uint8Array | undefined> {
  const sink = collector()
  await exchangeOf(device).fetch([cid], { peers: [from.peerId], sink, signal: AbortSignal.timeout(10_000) }).catch(() => {})
  return sink.got.get(cid.toString())
}

describe('shares on the device', () => {
  const { devices, tempPath } = useDevices()
  let a: HomecloudNode
  let b: HomecloudNode
  let outsider: HomecloudNode
  let shareA: string
  let shareB: string
  const secret = randomBytes(40 * 1024)
  const published = randomBytes(50 * 1024)

  before(async () => {
    shareA = tempPath('a-docs')
    shareB = tempPath('b-docs')
    await mkdir(shareA)
    await writeFile(join(shareA, 'secret.bin'), secret)
    await mkdir(tempPath('public'))
    await writeFile(tempPath('public', 'page.bin'), published)
    const tuning = { watchDebounceMs: 50, retryIntervalMs: 300 }
    a = await startDevice(devices, 'box-a', { storePath: tempPath('a-store'), shareDatastorePath: tempPath('a-shares'), shares: tuning })
    b = await startDevice(devices, 'box-b', { storePath: tempPath('b-store'), shares: tuning })
    outsider = await startDevice(devices, 'outsider', { storePath: tempPath('c-store') })
    await a.swarms.create('family')
    const { code } = await a.swarms.invite('family')
    await b.swarms.join(code)
    await outsider.connect(addressOf(a))
  })

  it('a share added on A is offered to B, accepted into B\'s folder and synced byte for byte', async () => {
    const info = await a.shares.addShare(shareA, { swarm: 'family', name: 'docs' })
    assert.deepEqual(a.shares.list().map(s => s.name), ['docs'])
    await waitFor(() => b.shares.offers().some(o => o.id === info.id), { timeout: 10_000, what: 'the offer to reach B' })
    assert.deepEqual(outsider.shares.offers(), [], 'an outsider is offered nothing')
    await b.shares.acceptShare('docs', shareB)
    await waitFor(async () => (await readFile(join(shareB, 'secret.bin')).catch(() => undefined))?.equals(secret), { timeout: 15_000, what: 'the file on B' })
    await waitFor(() => a.shares.status('docs').peers.some(p => p.inSync), { timeout: 10_000, what: 'A to see B in sync' })
  })

  it('serves share chunks only to members; content added with `add` to anyone', async () => {
    const shareChunk = await chunkCid(secret)
    const publicChunk = await chunkCid(published)
    assert.ok(await a.store.has(shareChunk), 'A holds the share chunk (indexed in place)')
    const denied = exchangeOf(a).stats().denied
    assert.equal(await fetchFrom(outsider, a, shareChunk), undefined, 'an outsider gets no share chunk')
    assert.ok(exchangeOf(a).stats().denied > denied, 'A counted the denial')
    assert.ok(secret.equals(await fetchFrom(b, a, shareChunk) ?? new Uint8Array()), 'a member of the share\'s swarm does')

    assert.equal(await fetchFrom(outsider, a, publicChunk), undefined, 'not public before it is added')
    await a.add(tempPath('public'))
    assert.ok(published.equals(await fetchFrom(outsider, a, publicChunk) ?? new Uint8Array()), 'public once added')
  })

  it('stops and starts with the device; the share and its state come back from LevelDB', async () => {
    const before = a.shares.status('docs')
    await a.stop()
    await a.start()
    const again = a.shares.status('docs')
    assert.deepEqual({ ...again.share, files: again.files, head: again.head }, { ...before.share, files: before.files, head: before.head })
  })

  it('refuses bad share options before anything is built', async () => {
    const privateKey = await generateKeyPair('Ed25519')
    for (const [patch, message] of [
      [{ shareDatastorePath: 'relative' }, /shareDatastorePath must be an absolute path/],
      [{ shareDatastorePath: '/x', storePath: '/x' }, /must differ/],
      [{ shares: { autoAcceptDir: 'rel' } }, /autoAcceptDir must be an absolute path/],
      [{ shares: { autoAcceptMode: 'mirror' } }, /autoAcceptMode must be one of/],
      [{ shares: { bogus: 1 } }, /unknown share option "bogus"/]
    ] as const) {
      assert.throws(() => resolveShareConfig({ privateKey, name: 'pi', ...patch } as never), (err: Error & { code?: string }) => {
        assert.equal(err.code, InvalidParametersError.code)
        assert.match(err.message, message)
        return true
      })
    }
  })

  it('the public set: dag-cbor never, raw only under a UnixFS pin, rebuilt when pins change', async () => {
    const chunk = await chunkCid(randomBytes(10))
    let pins: CID[] = []
    const pc = new PublicContent({ store: () => ({ get: async () => { throw new Error('absent') }, pins: async function * () { yield * pins } }), recheckMs: 0 })
    assert.equal(await pc.has(chunk), false)
    pins = [chunk]
    assert.equal(await pc.has(chunk), true, 'a pinned raw root is public')
    pins = []
    pc.invalidate()
    assert.equal(await pc.has(chunk), false, 'unpinned: no longer public')
  })
})
