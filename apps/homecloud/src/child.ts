/**
 * Running `homecloud` as child processes: used by the demo and by the
 * integration tests, which drive the real binary.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { access, readFile } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { repoPaths } from './repo.js'

/** The compiled `homecloud` binary next to this file. */
export const BIN_PATH = fileURLToPath(new URL('./bin.js', import.meta.url))

/**
 * V8 flags every daemon runs with (the launcher bin/homecloud.js sets the same).
 * A 2 MiB young generation makes chunk buffers die in cheap scavenges instead of
 * full collections: measured in bench/get.mjs, GC CPU fell from 4–6.6 to ~0.8
 * CPU-s/GB and the fetching daemon's peak RSS on a 4 GiB get from 353 to 231 MiB.
 * Tried for idle RSS (issue 5 f) and left out, each measured with bench/idle-rss.mjs or
 * vs-syncthing in the same run: `--heap-growing-percent=20` (V8 heap after the share
 * scenarios 144/162 → 83/86 MiB, but ~2× the CPU per GB of a get), `--optimize-for-size`
 * (−30–40 MiB, 2–3× the CPU per GB); in the environment, MALLOC_MMAP_THRESHOLD_=8192
 * (−35–50 MiB, +30–50 % CPU per GB on a plain libp2p stream and on get) and
 * MALLOC_ARENA_MAX=2 or 1 (no change after the trim: the same memory moves into fewer arenas),
 * and LevelDB's block cache off on every database (no change, measured before the idle trim
 * existed; the share database's is now capped, share-kv.ts). What landed instead works at run time, only when the
 * daemon is quiet: idle-trim.ts (a `last-resort` GC, glibc's malloc_trim, and the clean code pages dropped: file-pages.ts). --expose-gc
 * gives it V8's `gc`; setting that flag at run time instead made transfers cost ~2× the CPU.
 */
export const DAEMON_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2', '--expose-gc']

export interface CliResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export interface ChildOptions {
  env?: NodeJS.ProcessEnv
  timeoutMs?: number
  /** Working folder of the child (relative paths on its command line resolve against it). */
  cwd?: string
}

/** Environment for a child: the parent's, without a repo or debug selection leaking in. */
function childEnv (env: NodeJS.ProcessEnv | undefined): NodeJS.ProcessEnv {
  const { HOMECLOUD_REPO: _repo, DEBUG: _debug, ...rest } = process.env
  return { ...rest, ...env }
}

/** Run one CLI command to completion (killed after `timeoutMs`). */
export async function runCli (args: string[], options: ChildOptions = {}): Promise<CliResult> {
  const child = spawn(process.execPath, [BIN_PATH, ...args], {
    env: childEnv(options.env),
    cwd: options.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: options.timeoutMs ?? 60_000
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (text: string) => { stdout += text })
  child.stderr.setEncoding('utf8').on('data', (text: string) => { stderr += text })
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (c, s) => { resolve([c, s]) })
  })
  return { code, signal, stdout, stderr }
}

export interface DaemonChild {
  readonly child: ChildProcess
  readonly repo: string
  readonly apiUrl: string
  /** Everything the daemon printed so far (stdout and stderr). */
  output(): string
  /** Resolves when the process has exited. */
  readonly exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  /** Send `signal` (SIGTERM by default) and wait for the exit, SIGKILL after `timeoutMs`. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}

export interface DaemonChildOptions extends ChildOptions {
  /** Run in its own process group, so a terminal's Ctrl-C reaches only the parent. */
  detached?: boolean
  /** Each line the daemon prints. */
  onLine?(line: string, stream: 'stdout' | 'stderr'): void
  /** Node/V8 flags of the daemon (DAEMON_NODE_FLAGS unless given; benchmarks compare others). */
  nodeFlags?: readonly string[]
}

/**
 * Start `homecloud start` for `repo` and resolve once `<repo>/api` exists; rejects
 * (and kills the child) when it exits first or `timeoutMs` passes.
 */
export async function spawnDaemon (repo: string, args: string[], options: DaemonChildOptions = {}): Promise<DaemonChild> {
  const paths = repoPaths(repo)
  const child = spawn(process.execPath, [...(options.nodeFlags ?? DAEMON_NODE_FLAGS), BIN_PATH, '--repo', repo, 'start', ...args], {
    env: childEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false
  })
  let output = ''
  for (const [stream, name] of [[child.stdout, 'stdout'], [child.stderr, 'stderr']] as const) {
    createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
      output += line + '\n'
      options.onLine?.(line, name)
    })
  }
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => { resolve({ code, signal }) })
  })
  let hasExited = false
  void exited.then(() => { hasExited = true })

  const stop = async (signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 20_000): Promise<{ code: number | null, signal: NodeJS.Signals | null }> => {
    if (!hasExited) {
      child.kill(signal)
    }
    const timer = setTimeout(() => { child.kill('SIGKILL') }, timeoutMs)
    try {
      return await exited
    } finally {
      clearTimeout(timer)
    }
  }

  try {
    await waitFor(async () => {
      if (hasExited) {
        throw new Error(`homecloud start exited before it was ready:\n${output}`)
      }
      return access(paths.api).then(() => true, () => false)
    }, options.timeoutMs ?? 30_000, `homecloud start for ${repo} was not ready`)
  } catch (err) {
    await stop('SIGKILL')
    throw err
  }
  const apiUrl = (await readFile(paths.api, 'utf8')).trim()
  return { child, repo, apiUrl, output: () => output, exited, stop }
}

/** Poll `condition` until it holds, at most `timeoutMs`; never an unbounded wait. */
export async function waitFor (condition: () => boolean | Promise<boolean>, timeoutMs: number, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) {
      throw new Error(`${what} within ${timeoutMs} ms`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
