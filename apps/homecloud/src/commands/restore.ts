/** `homecloud restore SHARE PATH`: write a kept version back into the share, or to another file. */
import { resolve } from 'node:path'
import { apiCommand } from '../api-command.js'
import { JSON_FLAG } from '../command.js'
import { UsageError } from '../errors.js'

/** Restoring a large file reads all of its chunks. */
const RESTORE_TIMEOUT_MS = 60 * 60 * 1000

export const restore = apiCommand({
  name: 'restore',
  summary: 'put back a kept version of a file of a share (PATH inside the share; the current file is kept in history), or write it to OUT',
  usage: 'homecloud restore SHARE PATH [--version V] [--to OUT] [--json]',
  flags: [
    ['--version V', 'the version to restore (see `homecloud history`; default: the newest kept)'],
    ['--to OUT', 'write it to this new file instead of its place in the share (OUT must not exist)'],
    ...JSON_FLAG
  ],
  options: { version: { type: 'string' }, to: { type: 'string' } },
  positionals: ['SHARE', 'PATH']
}, ({ positionals, values }) => {
  const body: Record<string, unknown> = { share: positionals[0], path: positionals[1] }
  if (values.version !== undefined) {
    if (!/^\d{1,15}$/.test(values.version as string) || Number(values.version) === 0) {
      throw new UsageError(`--version ${JSON.stringify(values.version)} is not a version number (see \`homecloud history\`)`)
    }
    body.version = Number(values.version)
  }
  if (values.to !== undefined) body.to = resolve(values.to as string)
  return { route: 'restore', body, timeoutMs: RESTORE_TIMEOUT_MS }
}, (answer, { positionals, values }) => {
  const { restored } = answer as { restored: string }
  const which = values.version === undefined ? 'the newest kept version' : `version ${values.version as string}`
  return `restored ${which} of ${positionals[1]} (${positionals[0]}) to ${restored}\n`
})
