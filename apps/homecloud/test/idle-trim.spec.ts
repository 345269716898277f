import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { Worker } from 'node:worker_threads'
import { runCli, spawnDaemon, waitFor } from '../src/child.js'
import type { DaemonChild } from '../src/child.js'
import { IdleDetector, idleTrimFromEnv, loadMemoryReleasers, sampleActivity, startIdleTrim } from '../src/idle-trim.js'
import type { ActivitySample, TrimResult } from '../src/idle-trim.js'
import { repoPaths } from '../src/repo.js'

const OPTIONS = { quietMs: 10_000, maxCpuFraction: 0.05, maxIoBytesPerSecond: 64 * 1024 }

/** A detector that has seen its first sample (nothing used yet) at 0 s, and the state `feed` advances. */
function observing (): { detector: IdleDetector, state: { at: number, sample: ActivitySample } } {
  const detector = new IdleDetector(OPTIONS)
  const state = { at: 0, sample: { cpuMicros: 0, ioBytes: 0 } }
  detector.observe(state.sample, 0)
  return { detector, state }
}

/** Feeds `detector` one sample a second from `start`, each adding `cpuMs` of CPU and `io` bytes; the seconds at which it fired. */
function feed (detector: IdleDetector, state: { at: number, sample: ActivitySample }, seconds: number, cpuMs: number, io = 0): number[] {
  const fired: number[] = []
  for (let i = 0; i < seconds; i++) {
    state.at += 1000
    state.sample = { cpuMicros: state.sample.cpuMicros + cpuMs * 1000, ioBytes: (state.sample.ioBytes ?? 0) + io }
    if (detector.observe(state.sample, state.at)) {
      fired.push(state.at / 1000)
    }
  }
  return fired
}

describe('idle trim', () => {
  describe('IdleDetector', () => {
    it('fires once, quietMs after the start, and not again while the process stays quiet', () => {
      const detector = new IdleDetector(OPTIONS)
      const state = { at: 0, sample: { cpuMicros: 0, ioBytes: 0 } }
      assert.equal(detector.observe(state.sample, 0), false)
      // 1 % of a core and a few bytes a second: an idle daemon
      assert.deepEqual(feed(detector, state, 60, 10, 500), [10])
    })

    it('never fires while busy, however long; fires quietMs after the last busy second', () => {
      const { detector, state } = observing()
      assert.deepEqual(feed(detector, state, 120, 300), [], 'a transfer at 30 % of a core')
      assert.deepEqual(feed(detector, state, 9, 0), [])
      assert.deepEqual(feed(detector, state, 5, 0), [130])
    })

    it('counts I/O as activity even without CPU (a slow transfer), and quiet starts over after each busy second', () => {
      const { detector, state } = observing()
      // 1 MB/s at almost no CPU, with a 9 s pause in the middle
      assert.deepEqual(feed(detector, state, 30, 1, 1_000_000), [])
      assert.deepEqual(feed(detector, state, 9, 0), [])
      assert.deepEqual(feed(detector, state, 30, 1, 1_000_000), [])
      assert.deepEqual(feed(detector, state, 10, 0), [79])
    })

    it('fires again only after new activity', () => {
      const { detector, state } = observing()
      assert.deepEqual(feed(detector, state, 15, 0), [10])
      assert.deepEqual(feed(detector, state, 100, 0), [])
      assert.deepEqual(feed(detector, state, 1, 900), [])
      assert.deepEqual(feed(detector, state, 15, 0), [126])
    })

    it('a lone small burst (a GC, a ping) neither ends the quiet time nor re-arms; two in a row do', () => {
      const { detector, state } = observing()
      assert.deepEqual(feed(detector, state, 120, 300), [], 'a pull')
      assert.deepEqual(feed(detector, state, 5, 0), [])
      // the measured blip: 110 ms of CPU and 225 KB of I/O in one second, 5 s into the quiet time
      assert.deepEqual(feed(detector, state, 1, 110, 225_000), [])
      assert.deepEqual(feed(detector, state, 5, 0), [130], 'quietMs after the pull, not after the blip')
      assert.deepEqual(feed(detector, state, 1, 110, 225_000), [], 'a blip after the trim does not re-arm')
      assert.deepEqual(feed(detector, state, 30, 0), [])
      // two busy seconds in a row are activity
      assert.deepEqual(feed(detector, state, 2, 110), [])
      assert.deepEqual(feed(detector, state, 9, 0), [])
      assert.deepEqual(feed(detector, state, 2, 0), [174])
    })

    it('a blocked event loop (a long gap full of CPU) is activity', () => {
      const detector = new IdleDetector(OPTIONS)
      detector.observe({ cpuMicros: 0 }, 0)
      assert.equal(detector.observe({ cpuMicros: 12_000_000 }, 12_000), false)
      assert.equal(detector.observe({ cpuMicros: 12_000_000 }, 13_000), false)
    })

    it('rebase: the CPU of the trim itself does not count as activity', () => {
      const { detector, state } = observing()
      assert.deepEqual(feed(detector, state, 10, 0), [10])
      // the trim took 300 ms of CPU; the next sample starts after it
      state.sample = { ...state.sample, cpuMicros: state.sample.cpuMicros + 300_000 }
      detector.rebase(state.sample, state.at)
      assert.deepEqual(feed(detector, state, 60, 0), [])
    })
  })

  describe('HOMECLOUD_IDLE_TRIM', () => {
    it('unset: defaults; off: no trim; a number: the quiet time in ms', () => {
      assert.deepEqual(idleTrimFromEnv(undefined), {})
      assert.equal(idleTrimFromEnv('off'), false)
      assert.deepEqual(idleTrimFromEnv('2000'), { quietMs: 2000, intervalMs: 500 })
      assert.deepEqual(idleTrimFromEnv('60000'), { quietMs: 60_000, intervalMs: 1000 })
    })

    it('anything else is a ConfigError naming the variable', () => {
      for (const value of ['0', '-5', '1.5', 'soon', '1e3', '99999999999']) {
        assert.throws(() => idleTrimFromEnv(value), (err: Error & { code?: string }) => {
          assert.equal(err.code, 'ERR_CONFIG')
          assert.match(err.message, /HOMECLOUD_IDLE_TRIM/)
          return true
        }, value)
      }
    })

    it('startIdleTrim refuses bad options with a stable code', () => {
      for (const bad of [{ quietMs: -1 }, { intervalMs: Number.NaN }, { maxCpuFraction: 0 }, { quietMs: 100, intervalMs: 1000 }]) {
        assert.throws(() => startIdleTrim(bad), { code: 'ERR_INVALID_PARAMETERS' }, JSON.stringify(bad))
      }
    })
  })

  describe('in this process', () => {
    const dirs: string[] = []
    after(async () => { await Promise.all(dirs.map(async (dir) => rm(dir, { recursive: true, force: true }))) })

    it('sampleActivity counts CPU and, on Linux, the bytes written', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'homecloud-trim-'))
      dirs.push(dir)
      const before = sampleActivity()
      await writeFile(join(dir, 'f'), Buffer.alloc(1 << 20))
      const end = performance.now() + 20
      while (performance.now() < end) { /* burn a little CPU */ }
      const later = sampleActivity()
      assert.ok(later.cpuMicros > before.cpuMicros)
      if (process.platform === 'linux') {
        assert.ok((later.ioBytes ?? 0) - (before.ioBytes ?? 0) >= 1 << 20, `${String(later.ioBytes)} - ${String(before.ioBytes)}`)
      }
    })

    it('malloc_trim is loaded where glibc and koffi are (this machine)', async (t) => {
      const glibc = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime
      if (process.platform !== 'linux' || glibc === undefined) {
        t.skip('not glibc: only the V8 heap is trimmed')
        return
      }
      const releasers = await loadMemoryReleasers()
      assert.equal(typeof releasers.mallocTrim, 'function')
      assert.equal(typeof releasers.dropCodePages, 'function')
      // V8's part only where node runs with --expose-gc (the daemon does; this test runner does not)
      assert.equal(releasers.gc, (globalThis as { gc?: unknown }).gc)
    })

    it('never trims while a thread burns CPU; trims once it has stopped and the quiet time passed', { timeout: 30_000 }, async () => {
      const busyMs = 1500
      const worker = new Worker(`const end = Date.now() + ${busyMs}; while (Date.now() < end) {}`, { eval: true })
      const workerDone = new Promise<number>((resolve) => { worker.once('exit', () => { resolve(performance.now()) }) })
      const trims: Array<{ at: number, result: TrimResult }> = []
      const trim = startIdleTrim({ intervalMs: 100, quietMs: 400, onTrim: (result) => { trims.push({ at: performance.now(), result }) } })
      try {
        const doneAt = await workerDone
        assert.equal(trims.length, 0, 'trimmed while busy')
        await waitFor(() => trims.length > 0, 10_000, 'a trim after the worker stopped')
        // the worker stops burning a little before its exit event: allow one sample interval
        assert.ok(trims[0].at - doneAt >= 400 - 100, `${trims[0].at - doneAt} ms after`)
        assert.ok(trims[0].result.rssAfter > 0 && trims[0].result.pauseMs >= 0)
        assert.equal(trim.trims, 1)
      } finally {
        trim.stop()
      }
    })
  })

  describe('caches released before a trim', () => {
    it('calls beforeTrim just before each trim, and trims even when it throws', { timeout: 20_000 }, async () => {
      const events: string[] = []
      const trim = startIdleTrim({
        intervalMs: 50,
        quietMs: 200,
        beforeTrim: () => {
          events.push('release')
          throw new Error('a cache that cannot be released')
        },
        onTrim: () => { events.push('trim') }
      })
      try {
        await waitFor(() => events.includes('trim'), 10_000, 'a trim')
        assert.deepEqual(events, ['release', 'trim'])
        assert.equal(trim.trims, 1)
      } finally {
        trim.stop()
      }
    })

    it('waits for an asynchronous release (a database flush) before it trims', { timeout: 20_000 }, async () => {
      const events: string[] = []
      const trim = startIdleTrim({
        intervalMs: 50,
        quietMs: 200,
        beforeTrim: async () => {
          events.push('release')
          await new Promise((resolve) => setTimeout(resolve, 300))
          events.push('released')
        },
        onTrim: () => { events.push('trim') }
      })
      try {
        await waitFor(() => events.includes('trim'), 10_000, 'a trim')
        assert.deepEqual(events, ['release', 'released', 'trim'])
      } finally {
        trim.stop()
      }
    })
  })

  describe('a real daemon', () => {
    const daemons: DaemonChild[] = []
    const dirs: string[] = []
    after(async () => {
      await Promise.all(daemons.map(async (daemon) => daemon.stop('SIGKILL')))
      await Promise.all(dirs.map(async (dir) => rm(dir, { recursive: true, force: true })))
    })
    const ARGS = ['--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0', '--no-mdns', '--no-upnp', '--dht', 'off']

    async function repo (): Promise<string> {
      const dir = await mkdtemp(join(tmpdir(), 'homecloud-trim-daemon-'))
      dirs.push(dir)
      const { code, stderr } = await runCli(['--repo', dir, 'init', '--name', 'trim'])
      assert.equal(code, 0, stderr)
      return dir
    }

    it('trims after start once quiet, and has not loaded WebRTC (loaded on demand)', { timeout: 60_000 }, async () => {
      const daemon = await spawnDaemon(await repo(), ARGS, { env: { HOMECLOUD_IDLE_TRIM: '1000', DEBUG: 'homecloud:daemon:trim' } })
      daemons.push(daemon)
      await waitFor(() => /trimmed: RSS \d+ → \d+ MiB/.test(daemon.output()), 30_000, 'a trim in the daemon log')
      // every part: V8's gc (DAEMON_NODE_FLAGS has --expose-gc), malloc_trim and the code pages (koffi)
      assert.doesNotMatch(daemon.output(), /V8 only|malloc only/)
      const dropped = Number(/\((\d+) MiB of code pages dropped\)/.exec(daemon.output())?.[1])
      assert.ok(dropped >= 10, `code pages dropped: ${dropped} MiB`)
      // the daemon runs on from the page cache: it still answers its API
      const status = await runCli(['--repo', daemon.repo, 'status', '--json'])
      assert.equal(status.code, 0, status.stderr)
      assert.equal(typeof (JSON.parse(status.stdout) as { peerId?: unknown }).peerId, 'string')
      const maps = await readFile(`/proc/${daemon.child.pid}/maps`, 'utf8')
      assert.ok(!maps.includes('node_datachannel'), 'node-datachannel is mapped in an idle daemon')
      assert.deepEqual(await daemon.stop(), { code: 0, signal: null })
    })

    it('a bad HOMECLOUD_IDLE_TRIM stops the start with a clear message and leaves no api file', async () => {
      const dir = await repo()
      await assert.rejects(spawnDaemon(dir, ARGS, { env: { HOMECLOUD_IDLE_TRIM: 'sometimes' }, timeoutMs: 20_000 }), /HOMECLOUD_IDLE_TRIM must be "off" or a quiet time in ms/)
      await assert.rejects(readFile(repoPaths(dir).api), { code: 'ENOENT' })
    })
  })
})
