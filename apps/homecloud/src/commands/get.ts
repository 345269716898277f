/** `homecloud get CID OUTPUT`: fetch a file tree from peers, verified, written atomically. */
import { resolve } from 'node:path'
import type { GetContentResult } from '@homecloud/node'
import { multiaddr } from '@multiformats/multiaddr'
import { connectToDaemon } from '../api-client.js'
import { JSON_FLAG, printJson } from '../command.js'
import type { Command } from '../command.js'
import { UsageError } from '../errors.js'
import { formatBytes, progressBar } from '../progress.js'
import { repoPaths } from '../repo.js'

export const get: Command = {
  name: 'get',
  summary: 'fetch a file or folder by CID from peers into OUTPUT (verified; resumable; never overwrites)',
  usage: 'homecloud get CID OUTPUT [--from MULTIADDR]... [--json]',
  flags: [
    ['--from MULTIADDR', 'a peer that has it (with /p2p/<id>), repeatable; without it, providers are looked up in the DHT'],
    ...JSON_FLAG
  ],
  options: { from: { type: 'string', multiple: true }, json: { type: 'boolean' } },
  positionals: ['CID', 'OUTPUT'],
  async run ({ repoPath, values, positionals, io }) {
    const [cid, out] = positionals
    const from = (values.from as string[] | undefined) ?? []
    for (const address of from) {
      try {
        multiaddr(address)
      } catch (err) {
        throw new UsageError(`--from ${JSON.stringify(address)} is not a multiaddr (e.g. /ip4/192.168.1.20/tcp/4001/p2p/12D3KooW...)`, { cause: err })
      }
    }
    const output = resolve(out)
    const client = await connectToDaemon(repoPaths(repoPath))
    const bar = progressBar(io, 'get')
    let answer: GetContentResult
    try {
      answer = await client.stream('get', { cid, output, from }, bar.update) as GetContentResult
    } finally {
      bar.done()
    }
    if (values.json === true) {
      printJson(io, answer)
    } else {
      io.stdout(formatGot(answer) + '\n')
    }
    return 0
  }
}

export function formatGot (got: GetContentResult): string {
  const count = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`
  const what = got.files === 1 && got.directories === 0 ? 'file' : `${count(got.files, 'file')} in ${count(got.directories, 'folder')}`
  const reused = got.reusedBytes > 0 ? `, ${formatBytes(got.reusedBytes)} already here` : ''
  const peers = count(got.peers.length, 'peer')
  return `got ${got.cid} into ${got.output}: ${what}, ${formatBytes(got.bytes)} (${formatBytes(got.receivedBytes)} from ${peers}${reused})`
}
