// Preloaded into a daemon by bench/idle-rss.mjs (NODE_OPTIONS=--import): every second,
// the main thread's own view of its memory (V8 heap, external, ArrayBuffers) goes to
// $HOMECLOUD_BENCH_MEMLOG.<pid>, so RSS can be split into what V8 holds and what it does
// not. With --expose-gc, SIGUSR2 runs a full GC first, of the kind the daemon's idle trim runs
// (`last-resort`: it also returns V8's pooled pages; apps/homecloud/src/idle-trim.ts).
import { createRequire } from 'node:module'
import { renameSync, writeFileSync } from 'node:fs'
import { getHeapStatistics } from 'node:v8'
import { isMainThread } from 'node:worker_threads'

/**
 * glibc's mallinfo2() through koffi (the daemon's optional dependency), when both are there:
 * what malloc holds in use (`mallocUsed`, every arena, mmapped chunks included) and free
 * inside its arenas (`mallocFree`), to tell live native memory (LevelDB caches, OpenSSL,
 * libuv) from fragmentation that malloc_trim could not return.
 */
function loadMallinfo () {
  try {
    const koffi = createRequire(import.meta.url)('koffi')
    const info = koffi.struct('mallinfo2_hc', {
      arena: 'size_t', ordblks: 'size_t', smblks: 'size_t', hblks: 'size_t', hblkhd: 'size_t',
      usmblks: 'size_t', fsmblks: 'size_t', uordblks: 'size_t', fordblks: 'size_t', keepcost: 'size_t'
    })
    const fn = koffi.load('libc.so.6').func('mallinfo2', info, [])
    return () => {
      const m = fn()
      return { mallocUsed: Number(m.uordblks) + Number(m.hblkhd), mallocFree: Number(m.fordblks) }
    }
  } catch {
    return () => ({})
  }
}

const file = `${process.env.HOMECLOUD_BENCH_MEMLOG}.${process.pid}`
function write () {
  const { heapTotal, heapUsed, external, arrayBuffers, rss } = process.memoryUsage()
  const { malloced_memory: malloced, total_physical_size: physical } = getHeapStatistics()
  // written aside and renamed, so the reader never sees half a file
  writeFileSync(`${file}.tmp`, JSON.stringify({ rss, heapTotal, heapUsed, physical, external, arrayBuffers, malloced, ...mallinfo() }))
  renameSync(`${file}.tmp`, file)
}
// workers (the hash worker) run preloads too: only the main thread reports
const mallinfo = isMainThread ? loadMallinfo() : () => ({})
if (isMainThread) {
  setInterval(write, 1000).unref()
  if (typeof globalThis.gc === 'function') {
    process.on('SIGUSR2', () => {
      globalThis.gc({ type: 'major', execution: 'sync', flavor: 'last-resort' })
      write()
    })
  }
}
