/**
 * Driving real `homecloud` processes from tests: the loopback-only daemon arguments, one
 * CLI command that must succeed (and its `--json` answer), and a device's loopback address.
 */
import assert from 'node:assert/strict'
import type { DeviceIdentity } from '@homecloud/interface'
import { runCli, type ChildOptions } from '../src/child.js'

/** `homecloud start` arguments for loopback only: no LAN discovery (mDNS), no router (UPnP); `extra` after them (a `--dht` mode). */
export function loopbackArgs (...extra: string[]): string[] {
  return ['--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0', '--no-mdns', '--no-upnp', ...extra]
}

/** Runs one CLI command against `repo`, which must succeed; its stdout. */
export async function ok (repo: string, args: string[], options?: ChildOptions): Promise<string> {
  const result = await runCli(['--repo', repo, ...args], options)
  assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`)
  return result.stdout
}

/** `ok` with `--json`: the parsed answer. */
export async function cliJson <T> (repo: string, args: string[], options?: ChildOptions): Promise<T> {
  return JSON.parse(await ok(repo, [...args, '--json'], options)) as T
}

/** A device's loopback TCP address with its /p2p/ (its first address when none is on loopback). */
export function loopbackAddress (id: DeviceIdentity): string {
  const address = id.addresses.find((a) => a.startsWith('/ip4/127.0.0.1/tcp/')) ?? id.addresses[0]
  return address.includes('/p2p/') ? address : `${address}/p2p/${id.peerId}`
}
