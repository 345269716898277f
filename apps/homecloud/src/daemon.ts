/**
 * `homecloud start`: lock the repo, start the device and its control API, write
 * `<repo>/api`, run until SIGINT/SIGTERM, then undo all of it in reverse order.
 */
import { readFileSync, unlinkSync } from 'node:fs'
import { rename, unlink, writeFile } from 'node:fs/promises'
import { isIP } from 'node:net'
import { createControlApi } from '@homecloud/gateway'
import type { ControlApi } from '@homecloud/gateway'
import { HomecloudError } from '@homecloud/interface'
import { createHomecloudNode, parseStunServers } from '@homecloud/node'
import type { HomecloudNode } from '@homecloud/node'
import { enable, logger } from '@libp2p/logger'
import type { Io } from './command.js'
import { parseHostPort } from './config.js'
import { IDLE_TRIM_ENV, idleTrimFromEnv, startIdleTrim } from './idle-trim.js'
import type { IdleTrimOptions } from './idle-trim.js'
import { lockRepo } from './lock.js'
import type { RepoLock } from './lock.js'
import { openRepo, repoPaths } from './repo.js'
import type { RepoPaths } from './repo.js'

const log = logger('homecloud:daemon')

/** A stop that takes longer than this is abandoned and the process exits 1. */
export const STOP_TIMEOUT_MS = 15_000

export interface DaemonOptions {
  repoPath: string
  /** Each option left undefined falls back to the repo's config.json. */
  listen?: string[]
  api?: { host: string, port: number }
  bootstrap?: string[]
  /** CIDR ranges counted as public (`--public-range`); replaces the config's list when given. */
  publicAddressRanges?: string[]
  mdns?: boolean
  upnp?: boolean
  /** Forces the relay server on or off; the config's choice (by default `auto`) when undefined. */
  relayServer?: boolean
  /** Kademlia DHT mode; the device's default (`auto`) when undefined. */
  dht?: 'auto' | 'server' | 'client' | 'off'
  /** Accept every share offered by a member into `<autoAccept>/<share>` (absolute). */
  autoAccept?: string
  /** WebRTC hole punching (`--no-webrtc` turns it off); the device's default (on) when undefined. */
  webrtc?: boolean
  /** Run a STUN server for the members (`--stun-server`). */
  stunServer?: boolean
  /** STUN servers for WebRTC (`--stun HOST:PORT`), normalised by `parseStunServers`. */
  stunServers?: string[]
  /**
   * Trims the process's memory once it has been quiet after activity (idle-trim.ts); on by
   * default, `false` turns it off. `runDaemon` takes it from $HOMECLOUD_IDLE_TRIM.
   */
  idleTrim?: Partial<IdleTrimOptions> | false
  debug?: boolean
  io: Io
}

export interface RunningDaemon {
  readonly node: HomecloudNode
  readonly apiUrl: string
  readonly paths: RepoPaths
  stop(): Promise<void>
}

/** Start everything; on a failure, whatever was started is stopped again before the error is thrown. */
export async function startDaemon (options: DaemonOptions): Promise<RunningDaemon> {
  const repo = await openRepo(options.repoPath)
  const { paths, config } = repo
  const undo: Array<() => Promise<void>> = []
  const stop = async (): Promise<void> => {
    // reverse order; every step runs even if an earlier one failed
    const errors: unknown[] = []
    for (const step of undo.reverse().splice(0)) {
      await step().catch((err: unknown) => { errors.push(err) })
    }
    if (errors.length > 0) {
      throw new HomecloudError(`daemon stopped with errors: ${errors.map((err) => (err as Error).message).join('; ')}`, 'ERR_STOP', { cause: errors[0] })
    }
  }
  try {
    const lock: RepoLock = await lockRepo(paths)
    undo.push(async () => { await lock.release() })

    const node = await createHomecloudNode({
      privateKey: repo.privateKey,
      name: config.name,
      datastorePath: paths.datastore,
      swarmDatastorePath: paths.swarms,
      storePath: paths.store,
      shareDatastorePath: paths.shares,
      ...(options.autoAccept === undefined ? {} : { shares: { autoAcceptDir: options.autoAccept } }),
      listen: options.listen ?? config.listen,
      bootstrap: options.bootstrap ?? config.bootstrap,
      publicAddressRanges: options.publicAddressRanges ?? config.publicAddressRanges,
      services: {
        mdns: options.mdns ?? config.services.mdns,
        upnp: options.upnp ?? config.services.upnp,
        relayServer: options.relayServer ?? config.services.relayServer,
        dht: options.dht,
        webrtc: options.webrtc ?? config.services.webrtc,
        stunServer: options.stunServer ?? config.services.stunServer
      },
      stunServers: options.stunServers ?? (config.stunServers === undefined ? undefined : parseStunServers(config.stunServers, 'config field "stunServers"'))
    })
    undo.push(async () => { await node.stop() })
    await node.start()

    const { host, port } = options.api ?? parseHostPort(config.api)
    const api: ControlApi = createControlApi({ node, token: repo.token, host, port })
    await api.start().catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
        throw new HomecloudError(`the API address ${host}:${port} is in use (another daemon?): choose another with --api HOST:PORT`, 'ERR_API_ADDRESS_IN_USE', { cause: err })
      }
      throw err
    })
    undo.push(async () => { await api.stop() })
    if (!isLoopback(host)) {
      options.io.stderr(`warning: the control API listens on ${host}, beyond this machine; it is protected only by the token in ${paths.token}\n`)
    }

    // written last and atomically: a CLI that finds the file finds a daemon ready to answer
    const tmp = `${paths.api}.${process.pid}.tmp`
    await writeFile(tmp, api.url + '\n', { mode: 0o600 })
    await rename(tmp, paths.api)
    undo.push(async () => { await unlink(paths.api).catch(() => {}) })

    if (options.idleTrim !== false) {
      const trim = startIdleTrim({ ...options.idleTrim, beforeTrim: async () => { await node.releaseCaches() } })
      undo.push(async () => { trim.stop() })
    }

    return { node, apiUrl: api.url, paths, stop }
  } catch (err) {
    await stop().catch((stopErr: unknown) => { log.error('cleanup after failed start: %e', stopErr) })
    throw err
  }
}

/** The foreground daemon: resolves to the exit code once a signal has stopped it. */
export async function runDaemon (options: DaemonOptions): Promise<number> {
  const { io } = options
  if (options.debug === true) {
    enable('homecloud:*')
  }
  const idleTrim = options.idleTrim ?? idleTrimFromEnv(process.env[IDLE_TRIM_ENV])
  // installed before starting, so a signal during start still stops cleanly
  let signalled: NodeJS.Signals | undefined
  const { promise: stopRequested, resolve: requestStop } = Promise.withResolvers<NodeJS.Signals>()
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled !== undefined) {
      io.stderr(`${signal} again: exiting without a clean stop\n`)
      abandon(repoPaths(options.repoPath))
      process.exit(1)
    }
    signalled = signal
    requestStop(signal)
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  try {
    const daemon = await startDaemon({ ...options, idleTrim })
    const identity = daemon.node.identity()
    io.stdout(`homecloud daemon ready: ${identity.name} ${identity.peerId}\n`)
    for (const address of identity.addresses) {
      io.stdout(`  listening on ${address}\n`)
    }
    io.stdout(`  API ${daemon.apiUrl} (token in ${daemon.paths.token})\n`)

    const signal = await stopRequested
    io.stdout(`${signal}: stopping\n`)
    const timeout = setTimeout(() => {
      io.stderr(`the daemon did not stop within ${STOP_TIMEOUT_MS / 1000} s: exiting\n`)
      abandon(daemon.paths)
      process.exit(1)
    }, STOP_TIMEOUT_MS)
    timeout.unref()
    try {
      await daemon.stop()
    } finally {
      clearTimeout(timeout)
    }
    io.stdout('stopped\n')
    return 0
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

/** Before a forced exit: remove the api file and our lock, synchronously, so the repo is not left claimed. */
function abandon (paths: RepoPaths): void {
  try {
    unlinkSync(paths.api)
  } catch {
    // already gone
  }
  try {
    if (Number(readFileSync(paths.lock, 'utf8').trim()) === process.pid) {
      unlinkSync(paths.lock)
    }
  } catch {
    // no lock of ours to remove
  }
}

function isLoopback (host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'))
}
