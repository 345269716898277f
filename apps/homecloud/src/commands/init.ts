import { CONTROL_CHARACTERS, MAX_NAME_LENGTH } from '../config.js'
import { UsageError } from '../errors.js'
import { initRepo } from '../repo.js'
import type { Command } from '../command.js'
import { table } from '../output.js'

export const init: Command = {
  name: 'init',
  summary: 'create a repo: key, config and API token',
  usage: 'homecloud init [--name NAME]',
  flags: [['--name NAME', `device name shown to other devices (default: this machine's hostname, at most ${MAX_NAME_LENGTH} characters)`]],
  options: { name: { type: 'string' } },
  positionals: [],
  async run ({ repoPath, values, io }) {
    const name = values.name as string | undefined
    if (name !== undefined && (name.trim() === '' || name.length > MAX_NAME_LENGTH || CONTROL_CHARACTERS.test(name))) {
      throw new UsageError(`--name must be 1 to ${MAX_NAME_LENGTH} characters, without control characters`)
    }
    const { paths, config, peerId } = await initRepo(repoPath, { name })
    io.stdout(`initialized repo ${paths.root}\n`)
    io.stdout(table([['  peer id', peerId], ['  name', config.name]]) + '\n')
    io.stdout('start the device with `homecloud start`\n')
    return 0
  }
}
