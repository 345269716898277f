/**
 * A command that is one call to the daemon's control API: it builds the call
 * (checking its flags first), makes it, and prints the answer as JSON with
 * `--json` or formatted for a person otherwise. The swarm, share, history
 * and restore commands are all of this shape.
 */
import { connectToDaemon } from './api-client.js'
import type { ApiClient } from './api-client.js'
import { printJson } from './command.js'
import type { Command, CommandContext } from './command.js'
import { repoPaths } from './repo.js'
import { READ_TIMEOUT_MS } from './commands/read.js'

/** The daemon call a command makes: a GET without a body, a POST with one. */
export interface ApiCall {
  route: string
  body?: Record<string, unknown>
  timeoutMs?: number
}

/**
 * `exitCode`: an answer can still mean the command did not do all it was
 * asked (a revert with paths that failed): its exit code, whether printed
 * as JSON or not (default 0).
 */
export function apiCommand (
  spec: Omit<Command, 'run' | 'options'> & { options?: Command['options'] },
  call: (ctx: CommandContext) => ApiCall,
  format: (answer: unknown, ctx: CommandContext) => string,
  exitCode: (answer: unknown) => number = () => 0
): Command {
  return {
    ...spec,
    options: { ...spec.options, json: { type: 'boolean' } },
    async run (ctx) {
      // built (and its flags checked) before the daemon is looked for: a usage error is one whether it runs or not
      const { route, body, timeoutMs = READ_TIMEOUT_MS } = call(ctx)
      const client: ApiClient = await connectToDaemon(repoPaths(ctx.repoPath))
      const options = { signal: AbortSignal.timeout(timeoutMs) }
      const answer = body === undefined ? await client.get(route, options) : await client.post(route, body, options)
      if (ctx.values.json === true) {
        printJson(ctx.io, answer)
      } else {
        ctx.io.stdout(format(answer, ctx))
      }
      return exitCode(answer)
    }
  }
}
