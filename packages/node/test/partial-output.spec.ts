import assert from 'node:assert/strict'
import { open } from 'node:fs/promises'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { removeDir, tempDir } from '@homecloud/test-support'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { PartialOutput, SYNC_EVERY_BYTES } from '../src/partial-output.js'

describe('partial output', () => {
  const dirs: string[] = []
  after(async () => { await Promise.all(dirs.map(removeDir)) })

  it('a failed background datasync fails the get: the next write and close throw it', async () => {
    const root = await tempDir('hc-partial-')
    dirs.push(root)
    // a writeback error is only reported to a descriptor open when it happened: the one
    // settleFile opens later would never see it, so the writer must keep it
    const probe = await open(join(root, 'probe'), 'w')
    const proto = Object.getPrototypeOf(probe) as { datasync: () => Promise<void> }
    await probe.close()
    const original = proto.datasync
    const failure = Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' })
    proto.datasync = async () => { throw failure }
    try {
      const output = new PartialOutput({ root, localCopy: async () => undefined, onChunk: () => {} })
      const chunk = new Uint8Array(4 * 1024 * 1024).fill(7)
      const cid = CID.createV1(raw.code, await sha256.digest(chunk))
      const file = join(root, 'big.bin')
      let offset = 0
      // enough bytes to start a background datasync
      for (; offset < SYNC_EVERY_BYTES; offset += chunk.length) await output.write({ file, offset, length: chunk.length }, chunk, cid)
      await assert.rejects(output.close(), (err: Error) => err === failure)
      await assert.rejects(output.write({ file, offset, length: chunk.length }, chunk, cid), (err: Error) => err === failure)
    } finally {
      proto.datasync = original
    }
  })

  it('without failures close resolves and the bytes are in place', async () => {
    const root = await tempDir('hc-partial-')
    dirs.push(root)
    const output = new PartialOutput({ root, localCopy: async () => undefined, onChunk: () => {} })
    const chunk = new Uint8Array(4 * 1024 * 1024).fill(9)
    const cid = CID.createV1(raw.code, await sha256.digest(chunk))
    const file = join(root, 'big.bin')
    for (let offset = 0; offset < SYNC_EVERY_BYTES + chunk.length; offset += chunk.length) await output.write({ file, offset, length: chunk.length }, chunk, cid)
    await output.close()
    const handle = await open(file)
    try {
      assert.equal((await handle.stat()).size, SYNC_EVERY_BYTES + chunk.length)
    } finally {
      await handle.close()
    }
  })
})
