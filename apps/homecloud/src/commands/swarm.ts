/**
 * `homecloud swarm ...`: private swarms (issue 4). Each subcommand is one call to the daemon's
 * `/api/v1/swarm/` routes; the daemon does the work, this prints the answer.
 */
import type { CreatedInvite, SwarmInfo, SwarmMemberInfo } from '@homecloud/node'
import { apiCommand } from '../api-command.js'
import { JSON_FLAG } from '../command.js'
import type { Command } from '../command.js'
import { UsageError } from '../errors.js'
import { formatDuration, table } from '../output.js'
import { CONNECT_TIMEOUT_MS } from './connect.js'

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** `90s`, `15m`, `24h`, `7d` → milliseconds; anything else is a usage error. */
export function parseExpiry (value: string): number {
  const match = /^(\d{1,6})([smhd])$/.exec(value.trim())
  if (match === null || Number(match[1]) === 0) {
    throw new UsageError(`--expires ${JSON.stringify(value)} is not a duration like 30m, 24h or 7d`)
  }
  return Number(match[1]) * UNITS[match[2]]
}

/** A positive whole number for `--uses`. */
export function parseUses (value: string): number {
  if (!/^\d{1,4}$/.test(value) || Number(value) === 0) {
    throw new UsageError(`--uses ${JSON.stringify(value)} is not a positive whole number`)
  }
  return Number(value)
}

/** One swarm subcommand: the call it makes, and how its answer reads for a person. */
const subcommand = apiCommand

const create = subcommand({
  name: 'create',
  summary: 'create a private swarm with this device as its only member',
  usage: 'homecloud swarm create NAME [--json]',
  flags: JSON_FLAG,
  positionals: ['NAME']
}, ({ positionals }) => ({ route: 'swarm/create', body: { name: positionals[0] } }),
(answer) => {
  const info = answer as SwarmInfo
  return `created swarm ${info.name} (id ${info.id})\ninvite a device with \`homecloud swarm invite ${info.name}\`\n`
})

const invite = subcommand({
  name: 'invite',
  summary: 'print a one-line invite code (single use, expiring) for another device',
  usage: 'homecloud swarm invite NAME [--expires 24h] [--uses 1] [--qr] [--json]',
  flags: [
    ['--expires DURATION', 'how long the code works: 30m, 24h, 7d (default 24h, at most 30d)'],
    ['--uses N', 'how many devices may join with it (default 1)'],
    ['--qr', 'also print the code as a QR code'],
    ...JSON_FLAG
  ],
  options: { expires: { type: 'string' }, uses: { type: 'string' }, qr: { type: 'boolean' } },
  positionals: ['NAME']
}, ({ positionals, values }) => {
  const body: Record<string, unknown> = { swarm: positionals[0], qr: values.qr === true }
  if (values.expires !== undefined) body.expiresInMs = parseExpiry(values.expires as string)
  if (values.uses !== undefined) body.uses = parseUses(values.uses as string)
  return { route: 'swarm/invite', body }
}, (answer) => {
  const created = answer as CreatedInvite & { qr?: string }
  // the code alone on its line, so `$(homecloud swarm invite family | head -1)` works
  const lines = [created.code]
  if (created.qr !== undefined) lines.push(created.qr.trimEnd())
  const uses = created.uses === 1 ? 'one device' : `${created.uses} devices`
  lines.push(`for ${uses}, until ${new Date(created.expires).toISOString()}; on the other device: homecloud swarm join CODE`)
  return lines.join('\n') + '\n'
})

const join = subcommand({
  name: 'join',
  summary: 'join the private swarm of an invite code (contacts a member it names)',
  usage: 'homecloud swarm join CODE [--name NAME] [--json]',
  flags: [['--name NAME', 'this device\'s name on the roster (default: the device name)'], ...JSON_FLAG],
  options: { name: { type: 'string' } },
  positionals: ['CODE']
}, ({ positionals, values }) => {
  const body: Record<string, unknown> = { code: positionals[0] }
  if (values.name !== undefined) body.name = values.name
  // a little more than the daemon's bound on one operation, so its error arrives first
  return { route: 'swarm/join', body, timeoutMs: CONNECT_TIMEOUT_MS }
}, (answer) => {
  const info = answer as SwarmInfo
  return `joined swarm ${info.name} (${info.members} members)\n`
})

const list = subcommand({
  name: 'list',
  summary: 'list the private swarms of this device',
  usage: 'homecloud swarm list [--json]',
  flags: JSON_FLAG,
  positionals: []
}, () => ({ route: 'swarm/list' }),
(answer) => {
  const { swarms } = answer as { swarms: SwarmInfo[] }
  if (swarms.length === 0) return 'no swarms: create one with `homecloud swarm create NAME` or join one with `homecloud swarm join CODE`\n'
  return table([['NAME', 'MEMBERS', 'ID'], ...swarms.map((s) => [s.name, String(s.members), s.id])]) + '\n'
})

const members = subcommand({
  name: 'members',
  summary: 'list the devices on a swarm\'s roster: name, peer id, online, last seen, direct/relayed',
  usage: 'homecloud swarm members NAME [--json]',
  flags: JSON_FLAG,
  positionals: ['NAME']
}, ({ positionals }) => ({ route: `swarm/members?swarm=${encodeURIComponent(positionals[0])}` }),
(answer) => formatMembers((answer as { members: SwarmMemberInfo[] }).members) + '\n')

const remove = subcommand({
  name: 'remove',
  summary: 'take a device (name or peer id) off a swarm; the members drop it and rotate the secret',
  usage: 'homecloud swarm remove NAME DEVICE [--json]',
  flags: JSON_FLAG,
  positionals: ['NAME', 'DEVICE']
}, ({ positionals }) => ({ route: 'swarm/remove', body: { swarm: positionals[0], device: positionals[1] } }),
(answer, { positionals }) => {
  const { removed } = answer as { removed: { peerId?: string, name?: string } }
  return `removed ${removed.name ?? positionals[1]} (${removed.peerId ?? '?'}) from ${positionals[0]}\n`
})

const leave = subcommand({
  name: 'leave',
  summary: 'take this device off a swarm and forget it',
  usage: 'homecloud swarm leave NAME [--json]',
  flags: JSON_FLAG,
  positionals: ['NAME']
}, ({ positionals }) => ({ route: 'swarm/leave', body: { swarm: positionals[0] } }),
(_answer, { positionals }) => `left swarm ${positionals[0]}\n`)

export const swarm: Command = {
  name: 'swarm',
  summary: 'private swarms: create, invite, join, list, members, remove, leave',
  usage: 'homecloud swarm SUBCOMMAND [ARGS] [flags]',
  flags: [],
  options: {},
  positionals: [],
  subcommands: [create, invite, join, list, members, remove, leave],
  async run () {
    throw new UsageError('missing subcommand')
  }
}

export function formatMembers (rows: SwarmMemberInfo[], now = Date.now()): string {
  return table([
    ['NAME', 'PEER ID', 'ONLINE', 'PATH', 'LAST SEEN'],
    ...rows.map((m) => [
      m.self ? `${m.name} (this device)` : m.name,
      m.peerId,
      m.online ? 'yes' : 'no',
      m.path ?? '-',
      m.self || m.online ? 'now' : m.lastSeen === undefined ? 'never' : `${formatDuration(Math.max(0, now - m.lastSeen))} ago`
    ])
  ])
}
