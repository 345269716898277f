import { Worker } from 'node:worker_threads'
import { logger } from '@libp2p/logger'
import * as Digest from 'multiformats/hashes/digest'
import { sha256 } from 'multiformats/hashes/sha2'
import { hashRanges } from './hash-ranges.js'
import type { MultihashDigest } from 'multiformats/hashes/interface'

const log = logger('homecloud:store:hash')

export type HashRequest =
  | { type: 'attach', buffer: number, memory: SharedArrayBuffer }
  | { type: 'detach', buffer: number }
  /** `ranges` holds offset, length pairs. */
  | { type: 'hash', job: number, buffer: number, ranges: number[] }

export interface HashReply {
  job: number
  /** 32 bytes per range, in order; absent if the buffer was not attached. */
  digests?: Uint8Array
}

export type Sha256Digest = MultihashDigest<typeof sha256.code>

/**
 * sha2-256 (node:crypto) on one worker thread, over ranges of shared buffers:
 * the main thread only posts offsets, so chunking and hashing use two cores
 * and no byte is copied. The worker starts on first use and does not keep the
 * process alive while idle. If it cannot run (a bundle without
 * hash-worker.js, a crash), hashing falls back to this thread.
 */
class HashPool {
  #worker: Worker | undefined
  #broken = false
  readonly #buffers = new Map<number, Uint8Array>()
  readonly #jobs = new Map<number, PromiseWithResolvers<Sha256Digest[]>>()
  #nextJob = 0
  #nextBuffer = 0

  #start (): Worker {
    if (this.#worker != null) return this.#worker
    const worker = new Worker(new URL('./hash-worker.js', import.meta.url))
    worker.on('message', (reply: HashReply) => {
      const job = this.#jobs.get(reply.job)
      this.#jobs.delete(reply.job)
      if (reply.digests == null) job?.reject(new Error('the hash worker lost the buffer'))
      else job?.resolve(toDigests(reply.digests))
      if (this.#jobs.size === 0) worker.unref()
    })
    const fail = (err: Error): void => {
      log.error('hash worker failed, hashing on the main thread from now on: %e', err)
      this.#broken = true
      this.#worker = undefined
      for (const job of this.#jobs.values()) job.reject(err)
      this.#jobs.clear()
    }
    worker.on('error', fail)
    worker.on('exit', code => { fail(new Error(`the hash worker exited with code ${code}`)) })
    worker.unref()
    this.#worker = worker
    return worker
  }

  /** Makes `memory` readable by the worker; returns its id for `hash`. */
  attach (memory: SharedArrayBuffer): number {
    const buffer = this.#nextBuffer++
    this.#buffers.set(buffer, new Uint8Array(memory))
    if (!this.#broken) this.#start().postMessage({ type: 'attach', buffer, memory } satisfies HashRequest)
    return buffer
  }

  detach (buffer: number): void {
    this.#buffers.delete(buffer)
    this.#worker?.postMessage({ type: 'detach', buffer } satisfies HashRequest)
  }

  /**
   * Hashes ranges (offset, length pairs) of an attached buffer in one message;
   * leave those bytes alone until it resolves.
   */
  async hash (buffer: number, ranges: number[]): Promise<Sha256Digest[]> {
    const bytes = this.#buffers.get(buffer)
    if (bytes == null) throw new Error(`buffer ${buffer} is not attached`)
    if (this.#broken) return toDigests(hashRanges(bytes, ranges))
    const worker = this.#start()
    const job = this.#nextJob++
    const pending = Promise.withResolvers<Sha256Digest[]>()
    this.#jobs.set(job, pending)
    worker.ref()
    worker.postMessage({ type: 'hash', job, buffer, ranges } satisfies HashRequest)
    return pending.promise
  }
}

/** Hashes ranges (offset, length pairs) of `bytes` on this thread: cheaper than a worker round trip for a few KiB. */
export function hashHere (bytes: Uint8Array, ranges: number[]): Sha256Digest[] {
  return toDigests(hashRanges(bytes, ranges))
}

function toDigests (bytes: Uint8Array): Sha256Digest[] {
  const digests: Sha256Digest[] = []
  for (let at = 0; at < bytes.length; at += 32) {
    digests.push(Digest.create(sha256.code, bytes.subarray(at, at + 32)))
  }
  return digests
}

export const hashPool = new HashPool()
