/**
 * @packageDocumentation
 *
 * The `homecloud` CLI and daemon: the repo on disk, its versioned config, the
 * daemon's lifecycle and the client of its control API. The binary is
 * `dist/src/bin.js`; this module exports the same pieces for scripts and tests.
 *
 * @example
 *
 * ```ts
 * import { main } from '@homecloud/cli'
 *
 * process.exitCode = await main(['--repo', '/tmp/box', 'init', '--name', 'box'])
 * ```
 */
export { main, COMMANDS, EXIT_OK, EXIT_FAILURE, EXIT_USAGE } from './cli.js'
export type { Command, CommandContext, Io } from './command.js'
export * from './config.js'
export * from './repo.js'
export { lockRepo, isAlive, type RepoLock } from './lock.js'
export { connectToDaemon, createApiClient, type ApiClient } from './api-client.js'
export { startDaemon, runDaemon, type DaemonOptions, type RunningDaemon } from './daemon.js'
export * from './errors.js'
