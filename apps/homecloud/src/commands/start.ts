import { resolve } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { parseHostPort } from '../config.js'
import type { Command } from '../command.js'
import { UsageError } from '../errors.js'

type DhtMode = 'auto' | 'server' | 'client' | 'off'
const DHT_MODES: readonly DhtMode[] = ['auto', 'server', 'client', 'off']

export const start: Command = {
  name: 'start',
  summary: 'run the daemon in the foreground (stop with Ctrl-C or SIGTERM)',
  usage: 'homecloud start [--listen MULTIADDR]... [--api HOST:PORT] [--no-mdns] [--no-upnp] [--bootstrap MULTIADDR]... [--relay-server | --no-relay-server] [--dht MODE] [--public-range CIDR]... [--auto-accept DIR] [--no-webrtc] [--stun HOST:PORT]... [--stun-server]',
  flags: [
    ['--listen MULTIADDR', 'listen address, repeatable (default /ip4/0.0.0.0/tcp/4001; tcp/0 picks a free port)'],
    ['--api HOST:PORT', 'control API address (default 127.0.0.1:5780; port 0 picks a free port)'],
    ['--no-mdns', 'do not discover devices on the LAN with mDNS'],
    ['--no-upnp', 'do not ask the router to open a port with UPnP'],
    ['--bootstrap MULTIADDR', 'peer to dial at start, repeatable (default: none)'],
    ['--relay-server', 'always serve circuit relay reservations to other devices (default: only while publicly reachable)'],
    ['--no-relay-server', 'never serve circuit relay reservations'],
    ['--dht MODE', 'Kademlia DHT: auto (server once publicly reachable; default), server, client or off'],
    ['--public-range CIDR', 'count addresses in this IP range as public (a routed company LAN, a NAT lab), repeatable (default: none)'],
    ['--auto-accept DIR', 'a backup box: accept every share members offer into DIR/<share> (receive-only)'],
    ['--no-webrtc', 'do not upgrade relayed connections to direct WebRTC ones (hole punching)'],
    ['--stun HOST:PORT', 'STUN server for WebRTC hole punching, repeatable (default: those of swarm members that run one)'],
    ['--stun-server', 'run a STUN server on UDP port 3478 for the members (a public device)']
  ],
  options: {
    listen: { type: 'string', multiple: true },
    api: { type: 'string' },
    'no-mdns': { type: 'boolean' },
    'no-upnp': { type: 'boolean' },
    bootstrap: { type: 'string', multiple: true },
    'relay-server': { type: 'boolean' },
    'no-relay-server': { type: 'boolean' },
    dht: { type: 'string' },
    'public-range': { type: 'string', multiple: true },
    'auto-accept': { type: 'string' },
    'no-webrtc': { type: 'boolean' },
    stun: { type: 'string', multiple: true },
    'stun-server': { type: 'boolean' }
  },
  positionals: [],
  async run ({ repoPath, values, debug, io }) {
    const listen = multiaddrs(values.listen as string[] | undefined, '--listen')
    const bootstrap = multiaddrs(values.bootstrap as string[] | undefined, '--bootstrap')
    const dht = values.dht as string | undefined
    if (dht !== undefined && !DHT_MODES.includes(dht as DhtMode)) {
      throw new UsageError(`--dht must be one of ${DHT_MODES.join(', ')}, got ${JSON.stringify(dht)}`)
    }
    if (values['relay-server'] === true && values['no-relay-server'] === true) {
      throw new UsageError('--relay-server and --no-relay-server cannot be used together')
    }
    let api: { host: string, port: number } | undefined
    if (values.api !== undefined) {
      try {
        api = parseHostPort(values.api as string, '--api')
      } catch (err) {
        throw new UsageError((err as Error).message, { cause: err })
      }
    }
    // loaded here so that the other commands do not load libp2p
    const [{ runDaemon }, { parsePublicAddressRanges, parseStunServers }] = await Promise.all([import('../daemon.js'), import('@homecloud/node')])
    const ranges = values['public-range'] as string[] | undefined
    const stun = values.stun as string[] | undefined
    let publicAddressRanges: string[] | undefined
    let stunServers: string[] | undefined
    try {
      publicAddressRanges = ranges === undefined ? undefined : parsePublicAddressRanges(ranges, '--public-range')
      stunServers = stun === undefined ? undefined : parseStunServers(stun, '--stun')
    } catch (err) {
      throw new UsageError((err as Error).message, { cause: err })
    }
    return runDaemon({
      repoPath,
      listen,
      api,
      bootstrap,
      publicAddressRanges,
      mdns: values['no-mdns'] === true ? false : undefined,
      upnp: values['no-upnp'] === true ? false : undefined,
      relayServer: values['relay-server'] === true ? true : values['no-relay-server'] === true ? false : undefined,
      dht: dht as DhtMode | undefined,
      autoAccept: typeof values['auto-accept'] === 'string' ? resolve(values['auto-accept']) : undefined,
      webrtc: values['no-webrtc'] === true ? false : undefined,
      stunServer: values['stun-server'] === true ? true : undefined,
      stunServers,
      debug,
      io
    })
  }
}

function multiaddrs (values: string[] | undefined, flag: string): string[] | undefined {
  for (const value of values ?? []) {
    try {
      multiaddr(value)
    } catch (err) {
      throw new UsageError(`${flag} ${JSON.stringify(value)} is not a multiaddr`, { cause: err })
    }
  }
  return values
}
