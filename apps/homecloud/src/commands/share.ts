/**
 * `homecloud share ...`: shares (issue 5), folders kept identical on every
 * member of a private swarm. Each subcommand is one call to the daemon's
 * `/api/v1/share/` routes; paths are resolved here (the daemon's working
 * folder means nothing to the user).
 */
import { resolve } from 'node:path'
import type { ShareInfo, ShareOffer, ShareService, ShareStatus } from '@homecloud/node'
import { apiCommand } from '../api-command.js'
import { JSON_FLAG } from '../command.js'
import type { Command } from '../command.js'
import { UsageError } from '../errors.js'
import { formatDuration, table } from '../output.js'
import { formatBytes } from '../progress.js'

/** The modes a share can have (the daemon checks them again). */
export const SHARE_MODE_NAMES = ['send-receive', 'receive-only', 'send-only'] as const

/** A scan or a revert of a large share takes a while; the daemon bounds neither by the read timeout. */
const LONG_TIMEOUT_MS = 60 * 60 * 1000

const MODE_FLAG: [string, string] = ['--mode MODE', `send-receive (default), receive-only (a backup: local changes are not sent) or send-only`]

function mode (value: unknown): Record<string, string> {
  if (value === undefined) return {}
  if (!SHARE_MODE_NAMES.includes(value as typeof SHARE_MODE_NAMES[number])) {
    throw new UsageError(`--mode must be one of ${SHARE_MODE_NAMES.join(', ')}, got ${JSON.stringify(value)}`)
  }
  return { mode: value as string }
}

const add = apiCommand({
  name: 'add',
  summary: 'share a folder with the members of a swarm (they see it in `share list` and accept it)',
  usage: 'homecloud share add PATH --swarm NAME [--name SHARE] [--mode MODE] [--json]',
  flags: [
    ['--swarm NAME', 'the private swarm whose members get the share (required)'],
    ['--name SHARE', 'the share\'s name (default: the folder\'s name)'],
    MODE_FLAG,
    ...JSON_FLAG
  ],
  options: { swarm: { type: 'string' }, name: { type: 'string' }, mode: { type: 'string' } },
  positionals: ['PATH']
}, ({ positionals, values }) => {
  if (typeof values.swarm !== 'string') throw new UsageError('--swarm NAME is required')
  const body: Record<string, unknown> = { path: resolve(positionals[0]), swarm: values.swarm, ...mode(values.mode) }
  if (values.name !== undefined) body.name = values.name
  return { route: 'share/add', body }
}, (answer) => {
  const info = answer as ShareInfo
  return `sharing ${info.path} as ${info.name} (${info.mode}, id ${info.id})\non another member: homecloud share accept ${info.name} PATH\n`
})

const accept = apiCommand({
  name: 'accept',
  summary: 'replicate a share another member offered into PATH (created when missing)',
  usage: 'homecloud share accept SHARE PATH [--mode MODE] [--json]',
  flags: [MODE_FLAG, ...JSON_FLAG],
  options: { mode: { type: 'string' } },
  positionals: ['SHARE', 'PATH']
}, ({ positionals, values }) => ({ route: 'share/accept', body: { share: positionals[0], path: resolve(positionals[1]), ...mode(values.mode) } }),
(answer) => {
  const info = answer as ShareInfo
  return `accepted ${info.name} into ${info.path} (${info.mode}); follow it with \`homecloud share status ${info.name}\`\n`
})

const list = apiCommand({
  name: 'list',
  summary: 'list the shares of this device, and shares members offer that it has not accepted',
  usage: 'homecloud share list [--json]',
  flags: JSON_FLAG,
  positionals: []
}, () => ({ route: 'share/list' }), (answer) => formatShareList(answer as { shares: ShareInfo[], offers: ShareOffer[] }))

const status = apiCommand({
  name: 'status',
  summary: 'state of a share (or of all): idle/scanning/syncing/paused/error, files and bytes needed, progress, peers, errors',
  usage: 'homecloud share status [SHARE] [--json]',
  flags: JSON_FLAG,
  positionals: [],
  optionalPositionals: ['SHARE']
}, ({ positionals }) => ({ route: positionals.length === 0 ? 'share/status' : `share/status?share=${encodeURIComponent(positionals[0])}` }),
(answer) => {
  const all = 'shares' in (answer as object) ? (answer as { shares: ShareStatus[] }).shares : [answer as ShareStatus]
  if (all.length === 0) return 'no shares: share a folder with `homecloud share add PATH --swarm NAME`\n'
  return all.map((s) => formatShareStatus(s)).join('\n')
})

const remove = apiCommand({
  name: 'remove',
  summary: 'stop sharing a folder on this device (the folder and its files stay as they are)',
  usage: 'homecloud share remove SHARE [--json]',
  flags: JSON_FLAG,
  positionals: ['SHARE']
}, ({ positionals }) => ({ route: 'share/remove', body: { share: positionals[0] } }),
(answer) => {
  const { removed } = answer as { removed: ShareInfo }
  return `stopped sharing ${removed.name}; ${removed.path} is left as it is\n`
})

const revert = apiCommand({
  name: 'revert',
  summary: 'receive-only share: put back the members\' version of every file changed here (exit 1 when some paths failed)',
  usage: 'homecloud share revert SHARE [--json]',
  flags: JSON_FLAG,
  positionals: ['SHARE']
}, ({ positionals }) => ({ route: 'share/revert', body: { share: positionals[0] }, timeoutMs: LONG_TIMEOUT_MS }),
(answer, { positionals }) => formatRevert(positionals[0], answer as Awaited<ReturnType<ShareService['revert']>>),
// the paths that failed are printed (and in the JSON): a script must see that the revert is not complete
(answer) => (answer as Awaited<ReturnType<ShareService['revert']>>).failedTotal > 0 ? 1 : 0)

/** How many paths were put back; each path that failed with its code and message (as `share status` names them). */
export function formatRevert (share: string, { reverted, failed, failedTotal }: Awaited<ReturnType<ShareService['revert']>>): string {
  const paths = (n: number): string => `${n} ${n === 1 ? 'path' : 'paths'}`
  if (failedTotal === 0) return `reverted ${paths(reverted)} of ${share}\n`
  const more = failedTotal > failed.length ? ` (the first ${failed.length} below)` : ''
  return `reverted ${paths(reverted)} of ${share}; ${paths(failedTotal)} failed${more}:\n` +
    table(failed.map((e) => [`  ${e.path}`, e.code, e.message])) + '\n'
}

const rescan = apiCommand({
  name: 'rescan',
  summary: 'scan a share\'s folder now (changes are normally found by the watcher) and print its status',
  usage: 'homecloud share rescan SHARE [--json]',
  flags: JSON_FLAG,
  positionals: ['SHARE']
}, ({ positionals }) => ({ route: 'share/rescan', body: { share: positionals[0] }, timeoutMs: LONG_TIMEOUT_MS }),
(answer) => formatShareStatus(answer as ShareStatus))

export const share: Command = {
  name: 'share',
  summary: 'shares: folders kept identical on the devices of a swarm (add, accept, list, status, remove, revert, rescan)',
  usage: 'homecloud share SUBCOMMAND [ARGS] [flags]',
  flags: [],
  options: {},
  positionals: [],
  subcommands: [add, accept, list, status, remove, revert, rescan],
  async run () {
    throw new UsageError('missing subcommand')
  }
}

export function formatShareList ({ shares, offers }: { shares: ShareInfo[], offers: ShareOffer[] }): string {
  const lines: string[] = []
  if (shares.length === 0) {
    lines.push('no shares on this device: share a folder with `homecloud share add PATH --swarm NAME`')
  } else {
    lines.push(table([['NAME', 'MODE', 'PATH', 'ID'], ...shares.map((s) => [s.name, s.mode, s.path, s.id])]))
  }
  if (offers.length > 0) {
    lines.push('', 'offered by members, not accepted here (homecloud share accept SHARE PATH):')
    lines.push(table([['NAME', 'FROM', 'ID'], ...offers.map((o) => [o.name, `${o.from.length} ${o.from.length === 1 ? 'device' : 'devices'}`, o.id])]))
  }
  return lines.join('\n') + '\n'
}

export function formatShareStatus (s: ShareStatus, now = Date.now()): string {
  const ago = (at: number | undefined): string => at === undefined ? 'never' : `${formatDuration(Math.max(0, now - at))} ago`
  const lines = [
    `${s.share.name} (${s.share.mode}) ${s.share.path}`,
    table([
      ['  state', s.state],
      ['  files', `${s.files} (${formatBytes(s.bytes)})`],
      ['  needed', s.needFiles === 0 ? 'nothing' : `${s.needFiles} files, ${formatBytes(s.needBytes)} (${Math.floor(s.progress * 100)}% of this pull done)`],
      ['  watcher', s.watcher + (s.watcherError === undefined ? '' : ` (${s.watcherError})`)],
      ['  last scan', ago(s.lastScanAt)],
      ['  last sync', ago(s.lastSyncAt)],
      ['  history', formatBytes(s.historyBytes)],
      ...(s.waitingFiles > 0 || s.nextRetryAt !== undefined ? [['  waiting', formatWaiting(s, now)]] : []),
      ...(s.locallyChanged > 0 ? [['  changed here', `${s.locallyChanged} (not sent; \`homecloud share revert ${s.share.name}\` puts them back)`]] : []),
      ...(s.lastError === undefined ? [] : [['  last error', `${s.lastError.code}: ${s.lastError.message} (${ago(s.lastError.at)})`]])
    ])
  ]
  if (s.peers.length > 0) {
    lines.push(table([
      ['  PEER', 'ONLINE', 'IN SYNC', 'SEQ', 'LAST ANSWER'],
      ...s.peers.map((p) => [
        `  ${p.name ?? p.device}`, p.online ? 'yes' : 'no', p.inSync ? 'yes' : p.applied ? 'applied' : 'no', p.seq === undefined ? '-' : String(p.seq),
        ago(p.lastAnswer) + (p.retrying ? ' (not answering, retrying)' : '')
      ])
    ]))
  } else {
    lines.push('  no other member of the swarm yet')
  }
  if (s.pathErrors.length > 0) {
    lines.push('  paths that failed:')
    lines.push(table(s.pathErrors.map((e) => [`    ${e.path}`, e.code, e.message])))
  }
  return lines.join('\n') + '\n'
}

/** Pulls backing off because no member online serves some chunks: how many files wait, and when they are tried next. */
export function formatWaiting (s: Pick<ShareStatus, 'waitingFiles' | 'nextRetryAt'>, now = Date.now()): string {
  const files = `${s.waitingFiles} ${s.waitingFiles === 1 ? 'file' : 'files'}`
  const next = s.nextRetryAt === undefined ? '' : s.nextRetryAt <= now ? '; next try now' : `; next try in ${formatDuration(s.nextRetryAt - now)}`
  return `${files} for chunks no member online serves${next} (at once when a member connects or has new content)`
}
