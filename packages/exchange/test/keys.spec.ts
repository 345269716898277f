import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { bytesKey } from '../src/index.js'

describe('bytesKey (map keys of CIDs)', () => {
  it('is the same for the same CID decoded twice, different for different CIDs, one character per byte', async () => {
    const a = CID.createV1(raw.code, await sha256.digest(new TextEncoder().encode('a')))
    const b = CID.createV1(raw.code, await sha256.digest(new TextEncoder().encode('b')))
    const again = CID.decode(a.bytes.slice())
    assert.notEqual(again, a)
    assert.equal(bytesKey(again.bytes), bytesKey(a.bytes))
    assert.notEqual(bytesKey(a.bytes), bytesKey(b.bytes))
    assert.equal(bytesKey(a.bytes).length, a.bytes.byteLength)
    assert.deepEqual([...bytesKey(a.bytes)].map(c => c.charCodeAt(0)), [...a.bytes])
    // a version 0 and a version 1 CID of the same digest are different keys (the exchange asks for what it was given)
    const v0 = CID.createV0(a.multihash)
    assert.notEqual(bytesKey(v0.bytes), bytesKey(CID.createV1(0x70, a.multihash).bytes))
  })

  it('maps every byte value to the character of that code, also for a view into a bigger buffer', () => {
    const every = Uint8Array.from({ length: 256 }, (_, i) => i)
    assert.equal(bytesKey(every), String.fromCharCode(...every))
    const within = new Uint8Array(300)
    within.set(every, 20)
    const view = within.subarray(20, 276)
    assert.equal(bytesKey(view), String.fromCharCode(...every), 'only the view\'s bytes')
    assert.equal(bytesKey(new Uint8Array(0)), '')
  })
})
