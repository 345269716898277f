// Preloaded into a daemon by bench/idle-rss.mjs (NODE_OPTIONS=--import): every second,
// the main thread's own view of its memory (V8 heap, external, ArrayBuffers) goes to
// $HOMECLOUD_BENCH_MEMLOG.<pid>, so RSS can be split into what V8 holds and what it does
// not. With --expose-gc, SIGUSR2 runs a full GC first, of the kind the daemon's idle trim runs
// (`last-resort`: it also returns V8's pooled pages; apps/homecloud/src/idle-trim.ts).
import { renameSync, writeFileSync } from 'node:fs'
import { getHeapStatistics } from 'node:v8'
import { isMainThread } from 'node:worker_threads'

const file = `${process.env.HOMECLOUD_BENCH_MEMLOG}.${process.pid}`
function write () {
  const { heapTotal, heapUsed, external, arrayBuffers, rss } = process.memoryUsage()
  const { malloced_memory: malloced, total_physical_size: physical } = getHeapStatistics()
  // written aside and renamed, so the reader never sees half a file
  writeFileSync(`${file}.tmp`, JSON.stringify({ rss, heapTotal, heapUsed, physical, external, arrayBuffers, malloced }))
  renameSync(`${file}.tmp`, file)
}
// workers (the hash worker) run preloads too: only the main thread reports
if (isMainThread) {
  setInterval(write, 1000).unref()
  if (typeof globalThis.gc === 'function') {
    process.on('SIGUSR2', () => {
      globalThis.gc({ type: 'major', execution: 'sync', flavor: 'last-resort' })
      write()
    })
  }
}
