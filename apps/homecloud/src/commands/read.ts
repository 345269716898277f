/** The read commands: each asks the daemon one question and prints the answer. */
import type { DeviceIdentity, DeviceStatus, PeerConnectionInfo } from '@homecloud/interface'
import { connectToDaemon } from '../api-client.js'
import { JSON_FLAG, printJson } from '../command.js'
import type { Command } from '../command.js'
import { formatIdentity, formatPeers, formatStatus } from '../output.js'
import { repoPaths } from '../repo.js'

/** A read command waits this long for the daemon. */
export const READ_TIMEOUT_MS = 30_000

function readCommand (name: string, summary: string, format: (answer: unknown) => string): Command {
  return {
    name,
    summary,
    usage: `homecloud ${name} [--json]`,
    flags: JSON_FLAG,
    options: { json: { type: 'boolean' } },
    positionals: [],
    async run ({ repoPath, values, io }) {
      const client = await connectToDaemon(repoPaths(repoPath))
      const answer = await client.get(name, { signal: AbortSignal.timeout(READ_TIMEOUT_MS) })
      if (values.json === true) {
        printJson(io, answer)
      } else {
        io.stdout(format(answer) + '\n')
      }
      return 0
    }
  }
}

export const id = readCommand('id', 'show this device: peer id, name, addresses, reachability',
  (answer) => formatIdentity(answer as DeviceIdentity))

export const status = readCommand('status', 'show uptime, connections, reachability, DHT mode, relay reservations',
  (answer) => formatStatus(answer as DeviceStatus))

export const peers = readCommand('peers', 'list connected peers: peer id, path (direct, direct/webrtc or relayed), latency, address',
  (answer) => formatPeers((answer as { peers: PeerConnectionInfo[] }).peers.map(withWebRTCPath)))

/** A direct connection punched through NATs by WebRTC shows as `direct/webrtc` (the JSON keeps `direct` and the address). */
function withWebRTCPath (peer: PeerConnectionInfo): PeerConnectionInfo {
  return peer.path === 'direct' && /\/webrtc(\/|$)/.test(peer.address)
    ? { ...peer, path: 'direct/webrtc' as PeerConnectionInfo['path'] }
    : peer
}
