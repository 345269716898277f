/**
 * Worker thread of HashPool: hashes chunks straight out of the chunker's
 * SharedArrayBuffer (no copy) while the main thread runs the Gear loop.
 */
import { parentPort } from 'node:worker_threads'
import { hashRanges } from './hash-ranges.js'
import type { HashReply, HashRequest } from './hash-pool.js'

const buffers = new Map<number, Uint8Array>()

parentPort?.on('message', (msg: HashRequest) => {
  if (msg.type === 'attach') {
    buffers.set(msg.buffer, new Uint8Array(msg.memory))
  } else if (msg.type === 'detach') {
    buffers.delete(msg.buffer)
  } else {
    const bytes = buffers.get(msg.buffer)
    const digests = bytes == null ? undefined : hashRanges(bytes, msg.ranges)
    parentPort?.postMessage({ job: msg.job, digests } satisfies HashReply, digests == null ? [] : [digests.buffer])
  }
})
