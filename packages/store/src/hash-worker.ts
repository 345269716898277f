/**
 * Worker thread of HashPool: hashes chunks straight out of the chunker's
 * SharedArrayBuffer (no copy) while the main thread runs the Gear loop.
 */
import { parentPort } from 'node:worker_threads'
import { hashRanges } from './hash-ranges.js'
import type { HashReply, HashRequest } from './hash-pool.js'

const buffers = new Map<number, Uint8Array>()
/** When the last job was done: the gap to the next one is time this thread waited for work. */
let lastDone: number | undefined

parentPort?.on('message', (msg: HashRequest) => {
  if (msg.type === 'attach') {
    buffers.set(msg.buffer, new Uint8Array(msg.memory))
  } else if (msg.type === 'detach') {
    buffers.delete(msg.buffer)
  } else {
    const idleMs = lastDone === undefined ? 0 : performance.now() - lastDone
    const bytes = buffers.get(msg.buffer)
    const digests = bytes == null ? undefined : hashRanges(bytes, msg.ranges)
    lastDone = performance.now()
    parentPort?.postMessage({ job: msg.job, digests, idleMs } satisfies HashReply, digests == null ? [] : [digests.buffer])
  }
})
