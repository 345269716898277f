/** `homecloud history SHARE PATH`: the kept versions of a file of a share, newest first. */
import type { HistoryVersion } from '@homecloud/node'
import { apiCommand } from '../api-command.js'
import { JSON_FLAG } from '../command.js'
import { table } from '../output.js'
import { formatBytes } from '../progress.js'

export const history = apiCommand({
  name: 'history',
  summary: 'list the kept (replaced or deleted) versions of a file of a share, newest first (PATH inside the share, e.g. notes/todo.txt)',
  usage: 'homecloud history SHARE PATH [--json]',
  flags: [...JSON_FLAG],
  positionals: ['SHARE', 'PATH']
}, ({ positionals }) => ({ route: `history?share=${encodeURIComponent(positionals[0])}&path=${encodeURIComponent(positionals[1])}` }),
(answer, { positionals }) => formatHistory((answer as { versions: HistoryVersion[] }).versions, positionals[0], positionals[1]))

export function formatHistory (versions: HistoryVersion[], share: string, path: string): string {
  if (versions.length === 0) return `no kept versions of ${path} in ${share}\n`
  return table([
    ['VERSION', 'KEPT', 'REASON', 'SIZE', 'MODIFIED', 'BY'],
    ...versions.map((v) => [String(v.version), new Date(v.keptAt).toISOString(), v.reason, formatBytes(v.size), new Date(v.mtime).toISOString(), v.modifiedBy])
  ]) + `\nrestore one with \`homecloud restore ${share} ${path} --version V [--to OUT]\`\n`
}
