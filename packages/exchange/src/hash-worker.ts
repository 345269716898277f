/**
 * sha-256 on a worker thread, so the event loop keeps decrypting the next
 * block while the last one is hashed (the exchange's main cost on a 2-core box).
 * A buffer is transferred to the worker and back, never copied; callers only
 * hand over buffers nobody else holds.
 */
import { Worker } from 'node:worker_threads'

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads')
const { createHash } = require('node:crypto')
parentPort.on('message', ({ id, buffer, offset, length }) => {
  const digest = createHash('sha256').update(new Uint8Array(buffer, offset, length)).digest()
  parentPort.postMessage({ id, buffer, digest }, [buffer])
})
`

interface Pending {
  resolve(result: { buffer: ArrayBuffer, digest: Uint8Array }): void
  reject(err: Error): void
}

export class HashWorker {
  private worker?: Worker
  private failed = false
  private nextId = 0
  private readonly pending = new Map<number, Pending>()

  /** False once the worker could not start or crashed: callers then hash in place. */
  get available (): boolean {
    return !this.failed
  }

  /** Hashes `length` bytes at `offset` of `buffer`, which is detached until the returned one comes back. */
  async sha256 (buffer: ArrayBuffer, offset: number, length: number): Promise<{ buffer: ArrayBuffer, digest: Uint8Array }> {
    const worker = this.start()
    const id = this.nextId++
    const result = new Promise<{ buffer: ArrayBuffer, digest: Uint8Array }>((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
    })
    worker.postMessage({ id, buffer, offset, length }, [buffer])
    return result
  }

  async close (): Promise<void> {
    const worker = this.worker
    this.worker = undefined
    this.fail(new Error('the hash worker stopped'))
    this.failed = false
    await worker?.terminate()
  }

  private start (): Worker {
    if (this.worker !== undefined) {
      return this.worker
    }
    let worker: Worker
    try {
      worker = new Worker(WORKER_SOURCE, { eval: true })
    } catch (err) {
      this.failed = true
      throw err
    }
    worker.unref()
    worker.on('message', ({ id, buffer, digest }: { id: number, buffer: ArrayBuffer, digest: Uint8Array }) => {
      const pending = this.pending.get(id)
      this.pending.delete(id)
      pending?.resolve({ buffer, digest })
    })
    worker.on('error', err => {
      this.failed = true
      this.fail(err)
    })
    worker.on('exit', () => {
      if (this.worker === worker) {
        this.worker = undefined
        this.fail(new Error('the hash worker exited'))
      }
    })
    this.worker = worker
    return worker
  }

  private fail (err: Error): void {
    for (const pending of this.pending.values()) {
      pending.reject(err)
    }
    this.pending.clear()
  }
}
