/** `homecloud add PATH`: index a file or folder in place (nothing is copied) and print its root CID. */
import { resolve } from 'node:path'
import type { AddContentResult } from '@homecloud/node'
import { connectToDaemon } from '../api-client.js'
import { JSON_FLAG, printJson } from '../command.js'
import type { Command } from '../command.js'
import { progressBar } from '../progress.js'
import { repoPaths } from '../repo.js'

export const add: Command = {
  name: 'add',
  summary: 'index a file or folder in place and print its root CID (UnixFS)',
  usage: 'homecloud add PATH [--json]',
  flags: [
    ...JSON_FLAG
  ],
  options: { json: { type: 'boolean' } },
  positionals: ['PATH'],
  async run ({ repoPath, values, positionals, io }) {
    // the daemon runs elsewhere: it gets an absolute path
    const path = resolve(positionals[0])
    const client = await connectToDaemon(repoPaths(repoPath))
    const bar = progressBar(io, 'add')
    let answer: AddContentResult
    try {
      answer = await client.stream('add', { path }, bar.update) as AddContentResult
    } finally {
      bar.done()
    }
    if (values.json === true) {
      printJson(io, answer)
    } else {
      io.stdout(`${answer.cid}\n`)
    }
    return 0
  }
}
