// Preloaded into each Home Cloud daemon by run.mjs --mem-trace (NODE_OPTIONS=--import):
// every MEM_TRACE_MS the main thread appends its own view of its memory (RSS, V8 heap,
// external, ArrayBuffers) to $HOMECLOUD_BENCH_MEMTRACE.<pid> as one JSON line with a
// wall-clock time, so run.mjs can say which part of RSS made a scenario's peak. With
// $HOMECLOUD_BENCH_SNAPSHOT_MIB set, the first time RSS passes it a heap snapshot is written
// beside the trace (once per process: a snapshot costs seconds and about the heap again).
// SIGUSR2 starts V8's sampling heap profiler, counting what a major GC collects too (the
// garbage that lived long enough to be promoted: what grows the old generation between
// major GCs); the next SIGUSR2 writes the profile beside the trace (.N.heapprofile, for
// DevTools' Memory tab) and stops it.
import { appendFileSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { writeHeapSnapshot } from 'node:v8'
import { isMainThread } from 'node:worker_threads'

const MEM_TRACE_MS = 100
const file = `${process.env.HOMECLOUD_BENCH_MEMTRACE}.${process.pid}`
const snapshotAt = Number(process.env.HOMECLOUD_BENCH_SNAPSHOT_MIB ?? 0) * 1024 * 1024
let snapshotTaken = false

function sample () {
  const { rss, heapTotal, heapUsed, external, arrayBuffers } = process.memoryUsage()
  appendFileSync(file, JSON.stringify({ t: Date.now(), rss, heapTotal, heapUsed, external, arrayBuffers }) + '\n')
  if (snapshotAt > 0 && !snapshotTaken && rss >= snapshotAt) {
    snapshotTaken = true
    writeHeapSnapshot(`${file}.heapsnapshot`)
  }
}
let session
let profiles = 0
async function toggleProfile () {
  if (session == null) {
    session = new Session()
    session.connect()
    await session.post('HeapProfiler.enable')
    await session.post('HeapProfiler.startSampling', { samplingInterval: 32 * 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: false })
    return
  }
  const { profile } = await session.post('HeapProfiler.stopSampling')
  writeFileSync(`${file}.${++profiles}.heapprofile`, JSON.stringify(profile))
  session.disconnect()
  session = undefined
}

// only daemons: the CLI runs of the setup preload this too
if (isMainThread && process.argv.includes('start')) {
  setInterval(sample, MEM_TRACE_MS).unref()
  process.on('SIGUSR2', () => { toggleProfile().catch(err => appendFileSync(`${file}.errors`, `${err.stack}\n`)) })
}
