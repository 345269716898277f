/** `homecloud blocks stat|gc|verify`: the chunk store of the device. */
import type { BlocksGcResult, BlocksVerifyResult, StoreStat } from '@homecloud/node'
import { connectToDaemon } from '../api-client.js'
import { JSON_FLAG, printJson } from '../command.js'
import type { Command, CommandContext } from '../command.js'
import { UsageError } from '../errors.js'
import { table } from '../output.js'
import { formatBytes, progressBar } from '../progress.js'
import { repoPaths } from '../repo.js'
import { READ_TIMEOUT_MS } from './read.js'

function blocksCommand (name: string, summary: string, run: (ctx: CommandContext) => Promise<number>): Command {
  return { name, summary, usage: `homecloud blocks ${name} [--json]`, flags: JSON_FLAG, options: { json: { type: 'boolean' } }, positionals: [], run }
}

/** A long POST with a progress bar; the answer printed as JSON or by `format`. Resolves to the exit code `exit` gives. */
async function long <T> (ctx: CommandContext, route: string, format: (answer: T) => string, exit: (answer: T) => number): Promise<number> {
  const client = await connectToDaemon(repoPaths(ctx.repoPath))
  const bar = progressBar(ctx.io, route.replace('blocks/', ''))
  let answer: T
  try {
    answer = await client.stream(route, {}, bar.update) as T
  } finally {
    bar.done()
  }
  if (ctx.values.json === true) {
    printJson(ctx.io, answer)
  } else {
    ctx.io.stdout(format(answer) + '\n')
  }
  return exit(answer)
}

export function formatStat (stat: StoreStat): string {
  return table([
    ['blocks', `${stat.blocks} (${formatBytes(stat.blockBytes)}) in the block store`],
    ['files', `${stat.files} indexed in place: ${stat.fileChunks} chunks, ${formatBytes(stat.fileBytes)} (not copied)`],
    ['pins', String(stat.pins)]
  ])
}

export function formatVerify (result: BlocksVerifyResult): string {
  if (result.bad.length === 0) return `checked ${result.checked} blocks and chunks: all good`
  return [
    `checked ${result.checked} blocks and chunks: ${result.bad.length} bad (dropped; no longer served)`,
    table([['CID', 'REASON', 'WHERE'], ...result.bad.map(bad => [bad.cid, bad.reason, bad.path === undefined ? 'block store' : `${bad.path}:${bad.offset ?? 0}`])])
  ].join('\n')
}

const stat = blocksCommand('stat', 'store size: blocks, indexed files and their chunks, pins', async (ctx) => {
  const client = await connectToDaemon(repoPaths(ctx.repoPath))
  const answer = await client.get('blocks/stat', { signal: AbortSignal.timeout(READ_TIMEOUT_MS) }) as StoreStat
  if (ctx.values.json === true) {
    printJson(ctx.io, answer)
  } else {
    ctx.io.stdout(formatStat(answer) + '\n')
  }
  return 0
})

const gc = blocksCommand('gc', 'remove blocks no pin reaches (pinned content and indexed files stay)', async (ctx) =>
  long<BlocksGcResult>(ctx, 'blocks/gc', (r) => `removed ${r.removedBlocks} blocks (${formatBytes(r.removedBytes)})`, () => 0))

const verify = blocksCommand('verify', 're-hash every block and chunk; bad ones are dropped and listed (exit 1 if any)', async (ctx) =>
  long<BlocksVerifyResult>(ctx, 'blocks/verify', formatVerify, (r) => r.bad.length > 0 ? 1 : 0))

export const blocks: Command = {
  name: 'blocks',
  summary: 'the chunk store: stat, gc, verify',
  usage: 'homecloud blocks SUBCOMMAND [--json]',
  flags: [],
  options: {},
  positionals: [],
  subcommands: [stat, gc, verify],
  async run () {
    throw new UsageError('missing subcommand')
  }
}
