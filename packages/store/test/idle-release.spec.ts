import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { inTempDir, waitFor } from '@homecloud/test-support'
import { ChunkReader } from '../src/chunker.js'
import { HashPool, hashHere, hashPool } from '../src/hash-pool.js'
import { TEMP_PREFIX, pseudoRandomBytes, streamedChunks, writeBytes } from './helpers.js'

/** A shared buffer of pseudo-random bytes and ranges over it. */
function sharedBytes (size: number, seed: number): SharedArrayBuffer {
  const memory = new SharedArrayBuffer(size)
  new Uint8Array(memory).set(pseudoRandomBytes(size, seed))
  return memory
}

const RANGES = [0, 1000, 1000, 70_000, 71_000, 129_000]

function hex (digests: Array<{ bytes: Uint8Array }>): string[] {
  return digests.map(d => Buffer.from(d.bytes).toString('hex'))
}

describe('hash worker ends when idle', () => {
  it('completes a job submitted while the previous worker is shutting down', async () => {
    // idleTimeout 0: each worker is terminated as its last job resolves, so every next job arrives mid-shutdown
    const pool = new HashPool({ idleTimeout: 0 })
    const memory = sharedBytes(200_000, 3)
    const buffer = pool.attach(memory)
    const expected = hex(hashHere(new Uint8Array(memory), RANGES))
    for (let i = 0; i < 10; i++) {
      assert.deepEqual(hex(await pool.hash(buffer, RANGES)), expected)
      assert.equal(pool.running, false)
    }
    assert.equal(pool.started, 10)
    pool.detach(buffer)
  })

  it('is not ended while jobs are in flight', async () => {
    const pool = new HashPool({ idleTimeout: 0 })
    const memory = sharedBytes(200_000, 4)
    const buffer = pool.attach(memory)
    const expected = hex(hashHere(new Uint8Array(memory), RANGES))
    const results = await Promise.all(Array.from({ length: 8 }, async () => pool.hash(buffer, RANGES)))
    for (const digests of results) assert.deepEqual(hex(digests), expected)
    assert.equal(pool.started, 1)
    assert.equal(pool.running, false)
    pool.detach(buffer)
  })

  it('ends after the idle timeout and a new worker sees buffers attached before and after', async () => {
    const pool = new HashPool({ idleTimeout: 50 })
    const before = sharedBytes(200_000, 5)
    const a = pool.attach(before)
    assert.deepEqual(hex(await pool.hash(a, RANGES)), hex(hashHere(new Uint8Array(before), RANGES)))
    assert.equal(pool.running, true)
    await waitFor(() => !pool.running, { interval: 5 })
    const after = sharedBytes(200_000, 6)
    const b = pool.attach(after)
    assert.deepEqual(hex(await pool.hash(a, RANGES)), hex(hashHere(new Uint8Array(before), RANGES)))
    assert.deepEqual(hex(await pool.hash(b, RANGES)), hex(hashHere(new Uint8Array(after), RANGES)))
    assert.equal(pool.started, 2)
    pool.detach(a)
    pool.detach(b)
    await waitFor(() => !pool.running, { interval: 5 })
  })

  it('an unknown buffer is refused and starts no worker', async () => {
    const pool = new HashPool({ idleTimeout: 0 })
    await assert.rejects(pool.hash(42, [0, 1]), /not attached/)
    assert.equal(pool.started, 0)
  })
})

describe('chunking buffer is freed when idle', () => {
  it('is kept across back-to-back files, freed after the timeout, and chunking still agrees after', async () => {
    await inTempDir(async (dir) => {
      const paths: string[] = []
      for (let i = 0; i < 4; i++) {
        paths.push(join(dir, `f${i}`))
        await writeBytes(paths[i], pseudoRandomBytes(1_500_000 + i * 100_000, 10 + i))
      }
      const reference = await Promise.all(paths.map(async path => streamedChunks(path, new ChunkReader({ idleTimeout: 0 }))))
      const reader = new ChunkReader({ idleTimeout: 1000 })
      assert.equal(reader.bufferBytes, 0)
      const started = hashPool.started
      const held: number[] = []
      for (const [i, path] of paths.entries()) {
        assert.deepEqual(await streamedChunks(path, reader), reference[i])
        held.push(reader.bufferBytes)
      }
      // one buffer, one worker for the whole run of files
      assert.ok(held.every(bytes => bytes === held[0] && bytes > 0), `buffer held between files: ${held.join(', ')}`)
      assert.ok(hashPool.started - started <= 1, `hash workers started: ${hashPool.started - started}`)
      await waitFor(() => reader.bufferBytes === 0, { interval: 5 })
      assert.deepEqual(await streamedChunks(paths[0], reader), reference[0])
      assert.ok(reader.bufferBytes > 0)
    }, TEMP_PREFIX)
  })

  it('with idleTimeout 0 holds no buffer after each file', async () => {
    await inTempDir(async (dir) => {
      const path = join(dir, 'f')
      await writeBytes(path, pseudoRandomBytes(300_000, 20))
      const reader = new ChunkReader({ idleTimeout: 0 })
      const chunks = await streamedChunks(path, reader)
      assert.ok(chunks.length > 0)
      assert.equal(reader.bufferBytes, 0)
    }, TEMP_PREFIX)
  })
})
