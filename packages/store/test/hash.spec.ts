import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import { base32 } from 'multiformats/bases/base32'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import * as Digest from 'multiformats/hashes/digest'
import { blockKey, chunkCid, keyToCid } from '../src/hash.js'

describe('blockKey', () => {
  it('is the text multiformats base32 gives (keys already on disk use it), for every digest length', () => {
    for (let length = 0; length <= 70; length++) {
      const cid = CID.createV1(raw.code, Digest.create(0x12, randomBytes(length)))
      assert.equal(blockKey(cid), base32.encode(cid.multihash.bytes), `digest of ${length} bytes`)
    }
  })

  it('round-trips through keyToCid', async () => {
    const cid = await chunkCid(randomBytes(100))
    assert.ok(keyToCid(blockKey(cid)).equals(cid))
  })
})
