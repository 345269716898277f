import type { PeerConnectionInfo } from '@homecloud/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { connectToDaemon } from '../api-client.js'
import { JSON_FLAG, printJson } from '../command.js'
import type { Command } from '../command.js'
import { UsageError } from '../errors.js'
import { formatConnected } from '../output.js'
import { repoPaths } from '../repo.js'

/** A little more than the daemon's own bound on one operation, so its error arrives first. */
export const CONNECT_TIMEOUT_MS = 70_000

export const connect: Command = {
  name: 'connect',
  summary: 'dial a peer by multiaddr (LAN or manual use)',
  usage: 'homecloud connect MULTIADDR [--json]',
  flags: JSON_FLAG,
  options: { json: { type: 'boolean' } },
  positionals: ['MULTIADDR'],
  async run ({ repoPath, values, positionals, io }) {
    const address = positionals[0]
    try {
      multiaddr(address)
    } catch (err) {
      throw new UsageError(`${JSON.stringify(address)} is not a multiaddr (e.g. /ip4/192.168.1.20/tcp/4001/p2p/12D3KooW...)`, { cause: err })
    }
    const client = await connectToDaemon(repoPaths(repoPath))
    const answer = await client.post('connect', { multiaddr: address }, { signal: AbortSignal.timeout(CONNECT_TIMEOUT_MS) })
    if (values.json === true) {
      printJson(io, answer)
    } else {
      io.stdout(formatConnected(answer as PeerConnectionInfo) + '\n')
    }
    return 0
  }
}
