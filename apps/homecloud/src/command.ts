/**
 * The shape of a CLI command. Each command lives in `commands/<name>.ts`; `cli.ts`
 * holds the table, the global flags, help and exit codes.
 */
import type { ParseArgsOptionsConfig } from 'node:util'

/** Where a command writes: stdout for results (kept clean for `--json`), stderr for the rest. */
export interface Io {
  stdout(text: string): void
  stderr(text: string): void
  env: NodeJS.ProcessEnv
  /** Is stderr a terminal? Progress bars are drawn only then. */
  stderrIsTty?: boolean
}

export interface CommandContext {
  /** Absolute path of the repo (`--repo`, `$HOMECLOUD_REPO` or `~/.homecloud`). */
  repoPath: string
  /** Parsed flags (command flags and the global ones). */
  values: Record<string, string | boolean | Array<string | boolean> | undefined>
  positionals: string[]
  debug: boolean
  io: Io
}

export interface Command {
  name: string
  /** One line for `homecloud --help`. */
  summary: string
  /** `homecloud <name> ...` synopsis. */
  usage: string
  /** `[flag, description]` rows for `homecloud <name> --help`. */
  flags: Array<[string, string]>
  options: ParseArgsOptionsConfig
  /** Names of the positional arguments, all required. */
  positionals: string[]
  /** Names of optional positional arguments, after the required ones. */
  optionalPositionals?: string[]
  /** Resolves to the exit code. */
  run(ctx: CommandContext): Promise<number>
  /** A command group (`homecloud swarm create ...`): the word after the command picks one of these. */
  subcommands?: readonly Command[]
}

/** The `--json` flag every read command has. */
export const JSON_FLAG: Array<[string, string]> = [['--json', 'print the daemon\'s answer as JSON, nothing else']]

export function printJson (io: Io, value: unknown): void {
  io.stdout(JSON.stringify(value, null, 2) + '\n')
}
