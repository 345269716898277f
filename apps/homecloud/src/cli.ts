/**
 * The `homecloud` command line: the command table, global flags, help, and the
 * mapping from errors to one line on stderr and an exit code
 * (0 ok, 1 failure, 2 usage error).
 */
import { parseArgs } from 'node:util'
import type { ParseArgsOptionsConfig } from 'node:util'
import type { Command, Io } from './command.js'
import { connect } from './commands/connect.js'
import { init } from './commands/init.js'
import { id, peers, status } from './commands/read.js'
import { start } from './commands/start.js'
import { swarm } from './commands/swarm.js'
import { add } from './commands/add.js'
import { get } from './commands/get.js'
import { blocks } from './commands/blocks.js'
import { share } from './commands/share.js'
import { history } from './commands/history.js'
import { restore } from './commands/restore.js'
import { UsageError } from './errors.js'
import { table } from './output.js'
import { resolveRepoPath } from './repo.js'

export const COMMANDS: readonly Command[] = [init, start, id, status, peers, connect, swarm, add, get, blocks, share, history, restore]

export const EXIT_OK = 0
export const EXIT_FAILURE = 1
export const EXIT_USAGE = 2

const GLOBAL_OPTIONS: ParseArgsOptionsConfig = {
  repo: { type: 'string' },
  debug: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' }
}

const GLOBAL_FLAGS: Array<[string, string]> = [
  ['--repo DIR', 'the repo to use (default: $HOMECLOUD_REPO, else ~/.homecloud)'],
  ['--debug', 'print stacks with errors; `start` also logs homecloud:* to stderr'],
  ['-h, --help', 'show help']
]

export function mainHelp (): string {
  return [
    'homecloud: your files on your own boxes, peer to peer',
    '',
    'usage: homecloud [--repo DIR] COMMAND [flags]',
    '',
    'commands:',
    table(COMMANDS.map((command) => [`  ${command.name}`, command.summary])),
    '',
    'global flags:',
    table(GLOBAL_FLAGS.map(([flag, text]) => [`  ${flag}`, text])),
    '',
    'run `homecloud COMMAND --help` (or `homecloud help COMMAND`) for the flags of a command',
    ''
  ].join('\n')
}

export function commandHelp (command: Command): string {
  return [
    `usage: ${command.usage}`,
    '',
    command.summary,
    '',
    ...(command.flags.length > 0 ? ['flags:', table(command.flags.map(([flag, text]) => [`  ${flag}`, text])), ''] : []),
    ...(command.subcommands !== undefined ? ['subcommands:', table(command.subcommands.map((sub) => [`  ${sub.name}`, sub.summary])), ''] : []),
    'global flags:',
    table(GLOBAL_FLAGS.map(([flag, text]) => [`  ${flag}`, text])),
    ''
  ].join('\n')
}

/** Index of the command word: the first argument that is neither a flag nor a flag's value. */
function findCommand (argv: string[]): number {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--repo') {
      i++
    } else if (!arg.startsWith('-')) {
      return i
    }
  }
  return -1
}

export const defaultIo: Io = {
  stdout: (text) => { process.stdout.write(text) },
  stderr: (text) => { process.stderr.write(text) },
  env: process.env,
  stderrIsTty: process.stderr.isTTY
}

/** Run one command line; resolves to the process exit code. */
export async function main (argv: string[], io: Io = defaultIo): Promise<number> {
  const debug = argv.includes('--debug')
  let command: Command | undefined
  try {
    const at = findCommand(argv)
    const name = at === -1 ? undefined : argv[at]
    const rest = at === -1 ? argv : [...argv.slice(0, at), ...argv.slice(at + 1)]
    if (name === 'help') {
      return help(rest.filter((arg) => !arg.startsWith('-')), io)
    }
    if (name === undefined) {
      const { values } = parse(rest, GLOBAL_OPTIONS)
      if (values.help === true) {
        io.stdout(mainHelp())
        return EXIT_OK
      }
      throw new UsageError('no command given')
    }
    command = COMMANDS.find((candidate) => candidate.name === name)
    if (command === undefined) {
      throw new UsageError(`unknown command ${JSON.stringify(name)}`)
    }
    let args = rest
    if (command.subcommands !== undefined) {
      ;({ command, args } = pickSubcommand(command, rest, rest.includes('--help') || rest.includes('-h')))
    }
    const { values, positionals } = parse(args, { ...GLOBAL_OPTIONS, ...command.options })
    if (values.help === true) {
      io.stdout(commandHelp(command))
      return EXIT_OK
    }
    if (positionals.length < command.positionals.length) {
      throw new UsageError(`missing ${command.positionals.slice(positionals.length).join(' ')}`)
    }
    const most = command.positionals.length + (command.optionalPositionals?.length ?? 0)
    if (positionals.length > most) {
      throw new UsageError(`unexpected argument ${JSON.stringify(positionals[most])}`)
    }
    const repoPath = resolveRepoPath(values.repo as string | undefined, io.env)
    return await command.run({ repoPath, values, positionals, debug, io })
  } catch (err) {
    return report(err, command, debug, io)
  }
}

function help (names: string[], io: Io): number {
  if (names.length === 0) {
    io.stdout(mainHelp())
    return EXIT_OK
  }
  const command = COMMANDS.find((candidate) => candidate.name === names[0])
  if (command === undefined) {
    return report(new UsageError(`unknown command ${JSON.stringify(names[0])}`), undefined, false, io)
  }
  try {
    io.stdout(commandHelp(command.subcommands === undefined ? command : pickSubcommand(command, names.slice(1), true).command))
  } catch (err) {
    return report(err, command, false, io)
  }
  return EXIT_OK
}

/**
 * The subcommand of a group named by the first word of `args` (renamed `group sub` for help and
 * errors), and `args` without that word. Without such a word: the group itself if `orGroup`
 * (to show its help), else a usage error.
 */
function pickSubcommand (group: Command, args: string[], orGroup: boolean): { command: Command, args: string[] } {
  const subcommands = group.subcommands ?? []
  const names = subcommands.map((sub) => sub.name).join(', ')
  const at = findCommand(args)
  if (at === -1) {
    if (orGroup) {
      return { command: group, args }
    }
    throw new UsageError(`missing subcommand: one of ${names}`)
  }
  const sub = subcommands.find((candidate) => candidate.name === args[at])
  if (sub === undefined) {
    throw new UsageError(`unknown subcommand ${JSON.stringify(args[at])} of ${group.name}: one of ${names}`)
  }
  return { command: { ...sub, name: `${group.name} ${sub.name}` }, args: [...args.slice(0, at), ...args.slice(at + 1)] }
}

function parse (args: string[], options: ParseArgsOptionsConfig): ReturnType<typeof parseArgs<{ options: ParseArgsOptionsConfig, allowPositionals: true }>> {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: true })
  } catch (err) {
    // parseArgs' own messages are clear; they become usage errors (exit 2)
    throw new UsageError((err as Error).message.split(/\.\s|\n/)[0], { cause: err })
  }
}

function report (err: unknown, command: Command | undefined, debug: boolean, io: Io): number {
  const message = err instanceof Error ? err.message : String(err)
  io.stderr(`homecloud: ${message.split('\n').join(' ')}\n`)
  if (err instanceof UsageError) {
    io.stderr(`run \`homecloud ${command === undefined ? '' : command.name + ' '}--help\` for usage\n`)
  }
  if (debug) {
    let cause: unknown = err
    while (cause instanceof Error) {
      io.stderr(`${cause.stack ?? cause.message}\n`)
      cause = cause.cause
      if (cause !== undefined) {
        io.stderr('caused by: ')
      }
    }
  }
  return err instanceof UsageError ? EXIT_USAGE : EXIT_FAILURE
}
