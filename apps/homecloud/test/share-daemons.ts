/**
 * Real `homecloud` daemons for the share fault tests: start, kill -9,
 * reconnect, and the daemon's answers over its control API (no CLI process
 * per poll, so a tight loop of restarts stays fast). Loopback only: mDNS,
 * UPnP and the DHT are off.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { DeviceIdentity } from '@homecloud/interface'
import type { ShareStatus } from '@homecloud/node'
import { folderTree } from '@homecloud/sync'
import { connectToDaemon } from '../src/api-client.js'
import { spawnDaemon, waitFor } from '../src/child.js'
import type { DaemonChild } from '../src/child.js'
import { repoPaths } from '../src/repo.js'
import { cliJson, loopbackAddress, loopbackArgs, ok } from './daemon-cli.js'

const DAEMON_ARGS: readonly string[] = loopbackArgs('--dht', 'off')
/** Apply's temp files (TEMP_PREFIX of @homecloud/sync): never a real name. */
export const TEMP_PREFIX = '.homecloud-tmp-'

/** A daemon's answer to one GET. */
export async function api <T> (repo: string, route: string): Promise<T> {
  return await (await connectToDaemon(repoPaths(repo))).get(route, { signal: AbortSignal.timeout(10_000) }) as T
}

/** A daemon's answer to one POST. */
export async function post <T> (repo: string, route: string, body: unknown): Promise<T> {
  return await (await connectToDaemon(repoPaths(repo))).post(route, body, { signal: AbortSignal.timeout(30_000) }) as T
}

export async function shareStatus (repo: string, share: string): Promise<ShareStatus> {
  return api<ShareStatus>(repo, `share/status?share=${encodeURIComponent(share)}`)
}

export function sha (bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/** Daemons by repo; `killAll` in `after` leaves no process behind, whatever failed. */
export class Daemons {
  readonly #running = new Map<string, DaemonChild>()

  async start (repo: string, extra: string[] = []): Promise<void> {
    assert.ok(!this.#running.has(repo), `${repo} runs already`)
    this.#running.set(repo, await spawnDaemon(repo, [...DAEMON_ARGS, ...extra]))
  }

  /** SIGKILL: no cleanup at all, like a power loss. */
  async kill (repo: string): Promise<void> {
    const daemon = this.#running.get(repo)
    this.#running.delete(repo)
    await daemon?.stop('SIGKILL')
    // the killed daemon could not remove it; spawnDaemon waits for the next daemon's
    await rm(repoPaths(repo).api, { force: true })
  }

  async killAll (): Promise<void> {
    await Promise.all([...this.#running.keys()].map(async (repo) => this.kill(repo)))
  }

  isRunning (repo: string): boolean {
    return this.#running.has(repo)
  }

  output (repo: string): string {
    return this.#running.get(repo)?.output() ?? ''
  }

  async addressOf (repo: string): Promise<string> {
    return loopbackAddress(await api<DeviceIdentity>(repo, 'id'))
  }

  /** A restarted daemon listens on a new port and knows no addresses: it dials the others. */
  async connect (repo: string, others: string[]): Promise<void> {
    for (const other of others) {
      if (other !== repo && this.#running.has(other)) await post(repo, 'connect', { multiaddr: await this.addressOf(other) })
    }
  }
}

/** `init`s the repos, starts their daemons, and puts them all in swarm `swarm` (created by the first). */
export async function startSwarm (daemons: Daemons, repos: string[], swarm = 'family'): Promise<void> {
  await Promise.all(repos.map(async (repo, i) => ok(repo, ['init', '--name', `box-${i}`])))
  await Promise.all(repos.map(async (repo) => daemons.start(repo)))
  await ok(repos[0], ['swarm', 'create', swarm])
  for (const repo of repos.slice(1)) {
    const { code } = await cliJson<{ code: string }>(repos[0], ['swarm', 'invite', swarm])
    await ok(repo, ['swarm', 'join', code])
  }
}

/** `from` shares `dir` as `name`; `to` accepts it into `into` once offered. */
export async function shareBetween (from: string, to: string, name: string, dir: string, into: string): Promise<void> {
  await post(from, 'share/add', { path: dir, swarm: 'family', name })
  await waitFor(async () => (await api<{ offers: Array<{ name: string }> }>(to, 'share/offers')).offers.some((o) => o.name === name), 10_000, `the offer of ${name}`)
  await post(to, 'share/accept', { share: name, path: into })
}

/** Waits until every folder holds the same tree (compared by hashes); returns it. */
export async function converged (dirs: string[], what: string, timeoutMs = 20_000): Promise<Record<string, string>> {
  let last: string[] = []
  await waitFor(async () => {
    last = await Promise.all(dirs.map(async (d) => JSON.stringify(await folderTree(d))))
    return last.every((t) => t === last[0])
  }, timeoutMs, what).catch((err: Error) => {
    throw new Error(`${err.message}: trees differ ${last.join(' | ').slice(0, 3000)}`, { cause: err })
  })
  return JSON.parse(last[0]) as Record<string, string>
}

/** Temp files of apply anywhere below `root` (symlinks are not followed). */
export async function tempFiles (root: string): Promise<string[]> {
  const found: string[] = []
  const stack = ['']
  while (stack.length > 0) {
    const dir = stack.pop() as string
    for (const d of await readdir(join(root, dir), { withFileTypes: true }).catch(() => [])) {
      const path = dir === '' ? d.name : `${dir}/${d.name}`
      if (d.name.startsWith(TEMP_PREFIX)) found.push(path)
      else if (d.isDirectory()) stack.push(path)
    }
  }
  return found
}
