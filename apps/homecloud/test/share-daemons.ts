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
import { connectToDaemon } from '../src/api-client.js'
import { runCli, spawnDaemon, waitFor } from '../src/child.js'
import type { DaemonChild } from '../src/child.js'
import { folderTree } from '../src/folder-tree.js'
import { repoPaths } from '../src/repo.js'

export const DAEMON_ARGS: readonly string[] = ['--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0', '--no-mdns', '--no-upnp', '--dht', 'off']
/** Apply's temp files (TEMP_PREFIX of @homecloud/sync): never a real name. */
export const TEMP_PREFIX = '.homecloud-tmp-'

/** Runs one CLI command, which must succeed; its stdout. */
export async function ok (repo: string, args: string[]): Promise<string> {
  const result = await runCli(['--repo', repo, ...args])
  assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`)
  return result.stdout
}

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
    const id = await api<DeviceIdentity>(repo, 'id')
    const address = id.addresses.find((a) => a.startsWith('/ip4/127.0.0.1/tcp/')) ?? id.addresses[0]
    return address.includes('/p2p/') ? address : `${address}/p2p/${id.peerId}`
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
    const { code } = JSON.parse(await ok(repos[0], ['swarm', 'invite', swarm, '--json'])) as { code: string }
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

/** mulberry32: a seeded PRNG, so a failing run can be replayed with its seed. */
export function seededRandom (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** `size` bytes from a seeded PRNG (incompressible, different for every draw). */
export function seededBytes (random: () => number, size: number): Buffer {
  const out = Buffer.allocUnsafe(Math.ceil(size / 4) * 4)
  const next = seededRandom(Math.floor(random() * 2 ** 32))
  for (let i = 0; i < out.byteLength; i += 4) out.writeUInt32LE(Math.floor(next() * 2 ** 32), i)
  return out.subarray(0, size)
}
