/**
 * Idle memory trim (issue 5 f: an idle daemon ≤ 100 MiB RSS). After a burst of work (the
 * start itself, a transfer, a scan) V8 keeps the pages it freed and glibc keeps its freed
 * heap, so an idle daemon sits at its high-water mark (bench/idle-rss.mjs). Once the
 * process has been quiet for `quietMs` (every sample below both the CPU and the I/O
 * threshold), one full GC with memory reduction runs (V8's `gc`, which the daemon exposes
 * with --expose-gc, DAEMON_NODE_FLAGS) and glibc returns its free pages to the OS
 * (`malloc_trim`, through the optional dependency `koffi`), and the clean pages of the
 * program's code it touched are unmapped (file-pages.ts); each part is skipped where it is missing. Not `v8.setFlagsFromString('--expose-gc')` at run time: measured, it
 * made the next bulk transfer cost about twice the CPU. It fires once per busy episode and never while the process is busy:
 * a transfer or a scan shows as CPU time or as bytes through read/write calls.
 */
import { readFileSync } from 'node:fs'
import { InvalidParametersError } from '@homecloud/interface'
import { logger } from '@libp2p/logger'
import { ConfigError } from './errors.js'
import { filePageDropper } from './file-pages.js'
import type { NativeLibrary } from './file-pages.js'

const log = logger('homecloud:daemon:trim')

/** Cumulative activity counters of the process. */
export interface ActivitySample {
  /** CPU time of all threads (user + system), µs. */
  cpuMicros: number
  /** Bytes through the process's read and write calls, sockets and files (`/proc/self/io`); undefined where unknown. */
  ioBytes?: number
}

export interface IdleDetectorOptions {
  /** Quiet time after activity before the trim fires. */
  quietMs: number
  /** A sample is busy above this share of one core. */
  maxCpuFraction: number
  /** A sample is busy above this many bytes read + written per second. */
  maxIoBytesPerSecond: number
}

/**
 * A lone busy sample (the one before it quiet) with at most this much CPU and I/O is
 * ignored: neither activity nor the end of the quiet time. An idle daemon still has lone
 * bursts (a GC of a big heap, pings and peer store writes): measured after a pull of
 * 10000 files, one second of 110 ms CPU (and up to 225 KB of I/O) 35–38 s after the pull
 * restarted the 60 s quiet time, so the receiver stayed at ~450 MiB past the 90 s idle
 * measurement of bench/vs-syncthing (f). A transfer or a scan lasts longer or costs more.
 */
export const BLIP = Object.freeze({ maxCpuMs: 250, maxIoBytes: 256 * 1024 })

export interface IdleTrimOptions extends IdleDetectorOptions {
  /** How often activity is sampled. */
  intervalMs: number
}

/**
 * Defaults: a sample each second; trimmed after 60 s below 5 % of a core and 64 KiB/s.
 * An idle daemon (pings, identify, timers) stays far below both; a transfer at 1 MB/s
 * is far above the I/O one. A trim blocks the daemon ~0.1–0.4 s, and the first bulk
 * transfer after it costs the trimmed side more CPU while V8's heap grows back (measured
 * on loopback, 256 MiB get: +50–100 % CPU-s/GB on that side, bench/idle-rss.mjs): a
 * minute of quiet keeps that to real idle periods, not the pauses between bursts.
 */
export const DEFAULT_IDLE_TRIM: Readonly<IdleTrimOptions> = Object.freeze({
  intervalMs: 1_000,
  quietMs: 60_000,
  maxCpuFraction: 0.05,
  maxIoBytesPerSecond: 64 * 1024
})

/**
 * Decides, sample by sample, when the process has just turned idle after activity.
 * Pure (no clock, no timers) so its rules are tested directly.
 */
export class IdleDetector {
  private last?: { at: number, sample: ActivitySample }
  /** Start of the current run of quiet samples. */
  private quietSince?: number
  /** Busy since the last trim; the start of the process counts as activity. */
  private armed = true
  /** The last sample was busy (a busy sample after it is not a lone blip). */
  private lastBusy = true

  constructor (private readonly options: IdleDetectorOptions) {}

  /** Feeds one sample taken at `now` (ms); true when the trim should run now. */
  observe (sample: ActivitySample, now: number): boolean {
    const previous = this.last
    this.last = { at: now, sample }
    if (previous === undefined) {
      return false
    }
    const elapsedMs = now - previous.at
    if (elapsedMs <= 0) {
      return false
    }
    const cpu = (sample.cpuMicros - previous.sample.cpuMicros) / 1000 / elapsedMs
    const io = sample.ioBytes === undefined || previous.sample.ioBytes === undefined
      ? 0
      : (sample.ioBytes - previous.sample.ioBytes) * 1000 / elapsedMs
    if (cpu > this.options.maxCpuFraction || io > this.options.maxIoBytesPerSecond) {
      const blip = !this.lastBusy &&
        cpu * elapsedMs <= BLIP.maxCpuMs && io * elapsedMs / 1000 <= BLIP.maxIoBytes
      this.lastBusy = true
      if (blip) {
        return this.quietLongEnough(now)
      }
      this.armed = true
      this.quietSince = undefined
      return false
    }
    this.lastBusy = false
    this.quietSince ??= previous.at
    return this.quietLongEnough(now)
  }

  private quietLongEnough (now: number): boolean {
    if (this.armed && this.quietSince !== undefined && now - this.quietSince >= this.options.quietMs) {
      this.armed = false
      return true
    }
    return false
  }

  /** Restarts the measurement from `sample` without judging it: the trim's own CPU is not activity. */
  rebase (sample: ActivitySample, now: number): void {
    this.last = { at: now, sample }
  }
}

/** Where `/proc/self/io` cannot be read (not Linux, a restricted /proc), I/O is not counted. */
let procIoReadable = true

/** The process's counters now. */
export function sampleActivity (): ActivitySample {
  const { user, system } = process.cpuUsage()
  let ioBytes: number | undefined
  if (procIoReadable) {
    try {
      const text = readFileSync('/proc/self/io', 'latin1')
      ioBytes = Number(/^rchar: (\d+)$/m.exec(text)?.[1]) + Number(/^wchar: (\d+)$/m.exec(text)?.[1])
      if (!Number.isFinite(ioBytes)) {
        throw new Error('no rchar/wchar in /proc/self/io')
      }
    } catch (err) {
      procIoReadable = false
      ioBytes = undefined
      log('I/O is not counted: %e', err)
    }
  }
  return { cpuMicros: user + system, ioBytes }
}

type GcFunction = (options?: { type: 'major', execution: 'sync', flavor: 'last-resort' }) => void

/** What the trim can release: V8's heap where `gc` is exposed, glibc's and the code pages where libc could be loaded. */
export interface MemoryReleasers {
  gc?: GcFunction
  mallocTrim?: () => void
  /** Drops the clean pages of the program's code (file-pages.ts); returns the bytes dropped. */
  dropCodePages?: () => number
}

/** V8's `gc`, present when Node runs with --expose-gc (as `homecloud start` does). */
function gcFunction (): GcFunction | undefined {
  const exposed = (globalThis as { gc?: unknown }).gc
  if (typeof exposed === 'function') {
    return exposed as GcFunction
  }
  log('gc is not exposed (node without --expose-gc), the V8 heap is not trimmed')
  return undefined
}

/** The subset of `koffi` used here (an optional dependency: imported by name, typed here). */
interface Koffi {
  load(path: string): NativeLibrary
}

/** glibc through koffi; undefined without either. */
async function loadLibc (): Promise<NativeLibrary | undefined> {
  if (process.platform !== 'linux') {
    return undefined
  }
  // a variable, so that the build does not need the optional package
  const name = 'koffi'
  try {
    const imported = await import(name) as { default?: Koffi }
    const koffi = imported.default ?? imported as unknown as Koffi
    return koffi.load('libc.so.6')
  } catch (err) {
    log('libc is unavailable (koffi or glibc missing): only the V8 heap is trimmed - %e', err)
    return undefined
  }
}

/** glibc's `malloc_trim(0)`: gives every free page of every arena back to the OS. */
function mallocTrimFunction (libc: NativeLibrary): (() => void) | undefined {
  try {
    const trim = libc.func('int malloc_trim(size_t pad)')
    return () => { trim(0) }
  } catch (err) {
    log('malloc_trim is unavailable - %e', err)
    return undefined
  }
}

export async function loadMemoryReleasers (): Promise<MemoryReleasers> {
  const libc = await loadLibc()
  return {
    gc: gcFunction(),
    mallocTrim: libc === undefined ? undefined : mallocTrimFunction(libc),
    dropCodePages: libc === undefined ? undefined : filePageDropper(libc)
  }
}

export interface TrimResult {
  rssBefore: number
  rssAfter: number
  /** Time the process was blocked (GC, malloc_trim, dropping code pages), ms. */
  pauseMs: number
  v8Trimmed: boolean
  mallocTrimmed: boolean
  /** Bytes of clean code pages dropped; 0 where that is unavailable. */
  codePagesDropped: number
}

/**
 * One trim: a full GC that also releases V8's pooled pages (`last-resort`), then
 * malloc_trim, then the code pages the work touched (last: the GC and malloc_trim run code too).
 */
export function trimMemory (releasers: MemoryReleasers): TrimResult {
  const rssBefore = process.memoryUsage.rss()
  const started = performance.now()
  releasers.gc?.({ type: 'major', execution: 'sync', flavor: 'last-resort' })
  releasers.mallocTrim?.()
  const codePagesDropped = releasers.dropCodePages?.() ?? 0
  const pauseMs = performance.now() - started
  return {
    rssBefore,
    rssAfter: process.memoryUsage.rss(),
    pauseMs,
    v8Trimmed: releasers.gc !== undefined,
    mallocTrimmed: releasers.mallocTrim !== undefined,
    codePagesDropped
  }
}

export interface IdleTrimInit extends Partial<IdleTrimOptions> {
  /** Counters of the process; `sampleActivity` by default. */
  sample?(): ActivitySample
  /**
   * Called just before each trim: drops what the process caches only for speed (the device's
   * `releaseCaches`), so the GC and malloc_trim that follow can free it. Awaited for at most
   * `BEFORE_TRIM_TIMEOUT_MS`; an error is logged, and the trim runs either way.
   */
  beforeTrim?(): void | Promise<void>
  /** Called after each trim. */
  onTrim?(result: TrimResult): void
}

export interface IdleTrim {
  /** Trims run so far. */
  readonly trims: number
  stop(): void
}

/** Bound on `beforeTrim`: a release that hangs must not keep the trim from running. */
export const BEFORE_TRIM_TIMEOUT_MS = 10_000

async function releaseBeforeTrim (release: () => void | Promise<void>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    await Promise.race([
      (async () => { await release() })(),
      new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          log.error('releasing caches before the trim took over %d ms: trimming without waiting', BEFORE_TRIM_TIMEOUT_MS)
          resolve()
        }, BEFORE_TRIM_TIMEOUT_MS)
        timer.unref()
      })
    ])
  } catch (err) {
    log.error('releasing caches before the trim failed - %e', err)
  } finally {
    clearTimeout(timer)
  }
}

function checkOptions (options: IdleTrimOptions): void {
  for (const key of ['intervalMs', 'quietMs', 'maxCpuFraction', 'maxIoBytesPerSecond'] as const) {
    const value = options[key]
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      throw new InvalidParametersError(`idle trim: ${key} must be a positive number, got ${String(value)}`)
    }
  }
  if (options.quietMs < options.intervalMs) {
    throw new InvalidParametersError(`idle trim: quietMs (${options.quietMs}) must be at least intervalMs (${options.intervalMs})`)
  }
}

/**
 * Samples the process every `intervalMs` and trims its memory once it has been quiet for
 * `quietMs` after activity. The timer does not keep the process alive.
 *
 * @throws {InvalidParametersError} on a non-positive or non-finite option
 */
export function startIdleTrim (init: IdleTrimInit = {}): IdleTrim {
  const options: IdleTrimOptions = {
    intervalMs: init.intervalMs ?? DEFAULT_IDLE_TRIM.intervalMs,
    quietMs: init.quietMs ?? DEFAULT_IDLE_TRIM.quietMs,
    maxCpuFraction: init.maxCpuFraction ?? DEFAULT_IDLE_TRIM.maxCpuFraction,
    maxIoBytesPerSecond: init.maxIoBytesPerSecond ?? DEFAULT_IDLE_TRIM.maxIoBytesPerSecond
  }
  checkOptions(options)
  const sample = init.sample ?? sampleActivity
  const detector = new IdleDetector(options)
  let releasers: Promise<MemoryReleasers> | undefined
  let trimming = false
  let stopped = false
  let trims = 0

  const trim = async (): Promise<void> => {
    // loaded at the first trim: a daemon that never idles never loads koffi
    releasers ??= loadMemoryReleasers()
    const loaded = await releasers
    if (stopped) {
      return
    }
    if (init.beforeTrim !== undefined) {
      await releaseBeforeTrim(init.beforeTrim)
      if (stopped) {
        return
      }
    }
    const result = trimMemory(loaded)
    trims++
    detector.rebase(sample(), performance.now())
    log('trimmed: RSS %d → %d MiB in %d ms (%d MiB of code pages dropped)%s', Math.round(result.rssBefore / 2 ** 20), Math.round(result.rssAfter / 2 ** 20),
      Math.round(result.pauseMs), Math.round(result.codePagesDropped / 2 ** 20), result.v8Trimmed ? (result.mallocTrimmed ? '' : ' (V8 only)') : ' (malloc only)')
    init.onTrim?.(result)
  }

  const timer = setInterval(() => {
    if (trimming) {
      return
    }
    if (detector.observe(sample(), performance.now())) {
      trimming = true
      trim().catch((err: unknown) => { log.error('idle trim failed - %e', err) }).finally(() => { trimming = false })
    }
  }, options.intervalMs)
  timer.unref()
  detector.observe(sample(), performance.now())

  return {
    get trims () { return trims },
    stop () {
      stopped = true
      clearInterval(timer)
    }
  }
}

/** The environment variable that turns the trim off (`off`) or sets its quiet time in ms. */
export const IDLE_TRIM_ENV = 'HOMECLOUD_IDLE_TRIM'

/**
 * `HOMECLOUD_IDLE_TRIM`: unset → the defaults, `off` → no trim, a number of ms → that quiet
 * time (sampled four times within it, at most once a second).
 *
 * @throws {ConfigError} on any other value
 */
export function idleTrimFromEnv (value: string | undefined): Partial<IdleTrimOptions> | false {
  if (value === undefined || value === '') {
    return {}
  }
  if (value === 'off') {
    return false
  }
  const quietMs = /^\d{1,9}$/.test(value) ? Number(value) : NaN
  if (!(quietMs >= 1)) {
    throw new ConfigError(`${IDLE_TRIM_ENV} must be "off" or a quiet time in ms (a positive integer), got ${JSON.stringify(value)}`)
  }
  return { quietMs, intervalMs: Math.min(DEFAULT_IDLE_TRIM.intervalMs, quietMs / 4) }
}
