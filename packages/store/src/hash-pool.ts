import { Worker } from 'node:worker_threads'
import { logger } from '@libp2p/logger'
import * as Digest from 'multiformats/hashes/digest'
import { sha256 } from 'multiformats/hashes/sha2'
import { HASH_WORKER_IDLE_MS } from './constants.js'
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
  /** How long the worker waited for this job since its last one (0 for its first). */
  idleMs: number
}

/** Digests of a `hashTimed` job and how long the worker waited for it. */
export interface TimedDigests {
  digests: Sha256Digest[]
  /** 0 when the job ran on this thread (no worker). */
  workerIdleMs: number
}

export type Sha256Digest = MultihashDigest<typeof sha256.code>

/**
 * Runs `onIdle` once a resource stays unused for `timeout` ms (at once if 0):
 * `start()` when its last user is done, `cancel()` when a new one comes.
 */
export class IdleTimer {
  readonly #timeout: number
  readonly #onIdle: () => void
  #timer: ReturnType<typeof setTimeout> | undefined
  #since = 0

  constructor (timeout: number, onIdle: () => void) {
    this.#timeout = timeout
    this.#onIdle = onIdle
  }

  start (): void {
    if (this.#timeout <= 0) {
      this.#onIdle()
      return
    }
    this.#since = performance.now()
    if (this.#timer === undefined) this.#timer = this.#schedule(this.#timeout)
  }

  cancel (): void {
    this.#since = Number.POSITIVE_INFINITY
  }

  // one timer per idle period, not one per use: on firing it checks how long the resource has been idle
  #schedule (delay: number): ReturnType<typeof setTimeout> {
    const timer = setTimeout(() => {
      this.#timer = undefined
      if (this.#since === Number.POSITIVE_INFINITY) return // in use: its next start() schedules again
      const left = this.#since + this.#timeout - performance.now()
      if (left > 0) this.#timer = this.#schedule(left)
      else this.#onIdle()
    }, delay)
    // never keeps the process alive
    timer.unref()
    return timer
  }
}

export interface HashPoolInit {
  /** The worker ends after this many ms without a job (0: as soon as none is left). */
  idleTimeout?: number
}

/**
 * sha2-256 (node:crypto) on one worker thread, over ranges of shared buffers:
 * the main thread only posts offsets, so chunking and hashing use two cores
 * and no byte is copied. The worker starts on first use, does not keep the
 * process alive while idle, and ends after `idleTimeout` without a job (an
 * idle daemon keeps no thread); the next job starts a new one, which is told
 * of every attached buffer. If it cannot run (a bundle without
 * hash-worker.js, a crash), hashing falls back to this thread.
 */
export class HashPool {
  #worker: Worker | undefined
  #broken = false
  #started = 0
  readonly #idle: IdleTimer
  readonly #buffers = new Map<number, Uint8Array>()
  readonly #jobs = new Map<number, PromiseWithResolvers<TimedDigests>>()
  #nextJob = 0
  #nextBuffer = 0

  constructor (init: HashPoolInit = {}) {
    this.#idle = new IdleTimer(init.idleTimeout ?? HASH_WORKER_IDLE_MS, () => { this.#stop() })
  }

  /** Whether a worker thread is running now. */
  get running (): boolean {
    return this.#worker != null
  }

  /** Worker threads started so far. */
  get started (): number {
    return this.#started
  }

  #start (): Worker {
    if (this.#worker != null) return this.#worker
    const worker = new Worker(new URL('./hash-worker.js', import.meta.url))
    this.#started++
    worker.on('message', (reply: HashReply) => {
      const job = this.#jobs.get(reply.job)
      this.#jobs.delete(reply.job)
      if (reply.digests == null) job?.reject(new Error('the hash worker lost the buffer'))
      else job?.resolve({ digests: toDigests(reply.digests), workerIdleMs: reply.idleMs })
      if (this.#jobs.size === 0 && this.#worker === worker) {
        worker.unref()
        this.#idle.start()
      }
    })
    const fail = (err: Error): void => {
      // a worker ended for being idle is no failure; its jobs were all done
      if (this.#worker !== worker) return
      log.error('hash worker failed, hashing on the main thread from now on: %e', err)
      this.#broken = true
      this.#worker = undefined
      this.#idle.cancel()
      for (const job of this.#jobs.values()) job.reject(err)
      this.#jobs.clear()
    }
    worker.on('error', fail)
    worker.on('exit', code => { fail(new Error(`the hash worker exited with code ${code}`)) })
    worker.unref()
    this.#worker = worker
    // a restarted worker learns of the buffers attached before it
    for (const [buffer, bytes] of this.#buffers) {
      worker.postMessage({ type: 'attach', buffer, memory: bytes.buffer as SharedArrayBuffer } satisfies HashRequest)
    }
    return worker
  }

  /**
   * Ends the worker; only called with no job in flight. It is forgotten at
   * once, so a job submitted while it is still shutting down starts a new one.
   */
  #stop (): void {
    const worker = this.#worker
    if (worker == null) return
    this.#worker = undefined
    this.#idle.cancel()
    log('hash worker idle, ending it')
    worker.terminate().catch(err => { log.error('could not end the hash worker: %e', err) })
  }

  /** Makes `memory` readable by the worker; returns its id for `hash`. */
  attach (memory: SharedArrayBuffer): number {
    const buffer = this.#nextBuffer++
    this.#buffers.set(buffer, new Uint8Array(memory))
    // a stopped worker is told when the next job starts it
    this.#worker?.postMessage({ type: 'attach', buffer, memory } satisfies HashRequest)
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
    return (await this.hashTimed(buffer, ranges)).digests
  }

  /** `hash`, also telling how long the worker had waited for the job (the chunker balances the two threads by it). */
  async hashTimed (buffer: number, ranges: number[]): Promise<TimedDigests> {
    const bytes = this.#buffers.get(buffer)
    if (bytes == null) throw new Error(`buffer ${buffer} is not attached`)
    if (this.#broken) return { digests: toDigests(hashRanges(bytes, ranges)), workerIdleMs: 0 }
    const worker = this.#start()
    const job = this.#nextJob++
    const pending = Promise.withResolvers<TimedDigests>()
    this.#jobs.set(job, pending)
    this.#idle.cancel()
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
