/**
 * Errors of the CLI and daemon. `cli.ts` turns them into one line on stderr and an
 * exit code: UsageError → 2, everything else → 1.
 */
import { HomecloudError } from '@homecloud/interface'

/** The command line is wrong: unknown command or flag, missing argument. Exit code 2. */
export class UsageError extends HomecloudError {
  static readonly code = 'ERR_USAGE'
  constructor (message: string, options?: ErrorOptions) {
    super(message, UsageError.code, options)
    this.name = 'UsageError'
  }
}

/** `config.json` is unreadable, invalid, or from a newer Home Cloud. */
export class ConfigError extends HomecloudError {
  static readonly code = 'ERR_CONFIG'
  constructor (message: string, options?: ErrorOptions) {
    super(message, ConfigError.code, options)
    this.name = 'ConfigError'
  }
}

/** A command needs the daemon and none answers for this repo. */
export class DaemonNotRunningError extends HomecloudError {
  static readonly code = 'ERR_DAEMON_NOT_RUNNING'
  constructor (repoPath: string, options?: ErrorOptions) {
    super(`no daemon is running for repo ${repoPath}: start it with \`homecloud start\``, DaemonNotRunningError.code, options)
    this.name = 'DaemonNotRunningError'
  }
}

/** The daemon answered with an error: `code` is the one it sent. */
export class ControlApiError extends HomecloudError {
  readonly status: number
  constructor (message: string, code: string, status: number, options?: ErrorOptions) {
    super(message, code, options)
    this.name = 'ControlApiError'
    this.status = status
  }
}
