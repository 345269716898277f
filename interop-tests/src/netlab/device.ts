/**
 * A real `homecloud` daemon in a lab namespace: its repo in the lab's folder, started with the
 * project's node (`process.execPath apps/homecloud/dist/src/bin.js`) through `ip netns exec`,
 * driven by the same CLI a person uses (run in the same namespace, where the daemon's control
 * API listens on loopback).
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { LabCommandError, LabConfigError } from './errors.js'
import { INTERNET_RANGE, type ExecResult, type Host, type Lab } from './lab.js'
import type { ChildProcess } from 'node:child_process'

/** The CLI of this checkout (interop-tests/dist/src/netlab → apps/homecloud/dist/src/bin.js). */
export const HOMECLOUD_BIN = fileURLToPath(new URL('../../../../apps/homecloud/dist/src/bin.js', import.meta.url))
/** The control API helper that times one request inside a namespace. */
const API_CALL = fileURLToPath(new URL('./api-call.js', import.meta.url))

/** The TCP port every lab device listens on (routers forward it in the `forward` preset). */
export const DEVICE_PORT = 4001
/** Bound on a daemon's start (first start loads libp2p and opens LevelDB). */
const START_TIMEOUT_MS = 20_000
const STOP_TIMEOUT_MS = 10_000
/** Output kept per daemon for error messages. */
const MAX_LOG_CHARS = 64 * 1024

export interface DeviceOptions {
  /** Serve circuit relay reservations (a public member). */
  relayServer?: boolean
  dht?: 'auto' | 'server' | 'client' | 'off'
  /** mDNS stays off unless a test is about it. */
  mdns?: boolean
  bootstrap?: string[]
  /** Also listen on `/p2p-circuit`: reserve a slot on a relay (a device behind NAT). */
  relayClient?: boolean
  /** UPnP stays off unless a test is about it (a home with miniupnpd, upnp.ts). */
  upnp?: boolean
  /** WebRTC hole punching stays off (`--no-webrtc`) unless a test is about it (nat-webrtc.spec.ts). */
  webrtc?: boolean
  /** Run the device's STUN server for members (`--stun-server`, UDP 3478). */
  stunServer?: boolean
  /** STUN servers to use (`--stun HOST:PORT`); members' servers are learned anyway. */
  stun?: string[]
}

export class LabDevice {
  readonly repo: string
  private child?: ChildProcess
  private output = ''
  private exited?: Promise<number | null>

  constructor (readonly lab: Lab, readonly host: Host, private readonly options: DeviceOptions = {}) {
    if (!existsSync(HOMECLOUD_BIN)) {
      throw new LabConfigError(`${HOMECLOUD_BIN} is missing: build the project first (npm run build)`)
    }
    this.repo = join(lab.dir, host.name)
  }

  get name (): string {
    return this.host.name
  }

  /** `homecloud init` then `homecloud start`, resolved once the daemon says it is ready. */
  async start (): Promise<void> {
    if (!existsSync(this.repo)) {
      await this.run(['init', '--name', this.name])
    }
    const { relayServer = false, dht = 'auto', mdns = false, bootstrap = [], relayClient = false, upnp = false } = this.options
    const args = [
      HOMECLOUD_BIN, '--repo', this.repo, 'start',
      '--listen', `/ip4/0.0.0.0/tcp/${DEVICE_PORT}`,
      ...(relayClient ? ['--listen', '/p2p-circuit'] : []),
      ...(upnp ? [] : ['--no-upnp']),
      ...(mdns ? [] : ['--no-mdns']),
      '--public-range', INTERNET_RANGE,
      '--dht', dht,
      ...(relayServer ? ['--relay-server'] : ['--no-relay-server']),
      ...bootstrap.flatMap(b => ['--bootstrap', b]),
      ...(this.options.webrtc === true ? [] : ['--no-webrtc']),
      ...(this.options.stunServer === true ? ['--stun-server'] : []),
      ...(this.options.stun ?? []).flatMap(s => ['--stun', s])
    ]
    this.output = ''
    const child = this.lab.spawn(this.host, process.execPath, args)
    this.child = child
    const keep = (chunk: Buffer): void => {
      this.output = (this.output + chunk.toString('utf8')).slice(-MAX_LOG_CHARS)
    }
    child.stdout?.on('data', keep)
    child.stderr?.on('data', keep)
    this.exited = new Promise(resolve => child.once('exit', code => { resolve(code) }))
    const ready = await Promise.race([
      new Promise<boolean>(resolve => {
        const check = (): void => {
          if (this.output.includes('homecloud daemon ready')) {
            child.stdout?.off('data', check)
            resolve(true)
          }
        }
        child.stdout?.on('data', check)
      }),
      this.exited.then(() => false),
      new Promise<boolean>(resolve => setTimeout(() => { resolve(false) }, START_TIMEOUT_MS).unref())
    ])
    if (!ready) {
      await this.stop()
      throw new LabCommandError(`daemon ${this.name} did not start within ${START_TIMEOUT_MS / 1000} s:\n${this.output}`)
    }
  }

  /** SIGTERM and wait for a clean stop; SIGKILL after a bound. */
  async stop (): Promise<void> {
    const child = this.child
    if (child === undefined || this.exited === undefined) return
    this.child = undefined
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const stopped = await Promise.race([this.exited.then(() => true), new Promise<boolean>(resolve => setTimeout(() => { resolve(false) }, STOP_TIMEOUT_MS).unref())])
      if (!stopped) child.kill('SIGKILL')
    }
  }

  /** SIGKILL, no clean stop (a device that dies). */
  kill (): void {
    this.child?.kill('SIGKILL')
    this.child = undefined
  }

  /** What the daemon printed (bounded), for failure messages. */
  log (): string {
    return this.output
  }

  /** `homecloud --repo REPO ARGS` in the device's namespace. */
  async run (args: readonly string[], timeoutMs = 60_000): Promise<ExecResult> {
    return this.lab.exec(this.host, process.execPath, [HOMECLOUD_BIN, '--repo', this.repo, ...args], timeoutMs)
  }

  /** `homecloud ARGS --json`, parsed; throws with stderr when the command fails. */
  async json<T = unknown> (args: readonly string[], timeoutMs?: number): Promise<T> {
    const result = await this.run([...args, '--json'], timeoutMs)
    if (result.code !== 0) {
      throw new LabCommandError(`${this.name}: homecloud ${args.join(' ')} exited ${String(result.code)}: ${result.stderr.trim()}`)
    }
    try {
      return JSON.parse(result.stdout) as T
    } catch (err) {
      throw new LabCommandError(`${this.name}: homecloud ${args.join(' ')} printed no JSON: ${result.stdout.slice(0, 200)}`, { cause: err })
    }
  }

  /**
   * One control API request, timed inside the namespace (no CLI start-up in the figure):
   * `{ elapsedMs, answer }`.
   */
  async api<T = unknown> (method: 'GET' | 'POST', route: string, body?: unknown, timeoutMs = 120_000): Promise<{ elapsedMs: number, answer: T }> {
    const args = [API_CALL, this.repo, method, route, ...(body === undefined ? [] : [JSON.stringify(body)])]
    const result = await this.lab.exec(this.host, process.execPath, args, timeoutMs)
    if (result.code !== 0) {
      throw new LabCommandError(`${this.name}: ${method} ${route} failed: ${result.stderr.trim()}`)
    }
    return JSON.parse(result.stdout) as { elapsedMs: number, answer: T }
  }
}
