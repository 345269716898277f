/**
 * Human output of the read commands: short aligned lines and tables.
 * `--json` bypasses all of this and prints the daemon's JSON as it came.
 */
import type { DeviceIdentity, DeviceStatus, PeerConnectionInfo } from '@homecloud/interface'
import { CONTROL_CHARACTERS } from './config.js'

/** Text that came over the network never moves the cursor or recolours the terminal. */
function printable (text: string): string {
  return text.replace(new RegExp(CONTROL_CHARACTERS.source, 'g'), '?')
}

/** Columns padded to their widest cell; the last column is not padded. */
export function table (cells: string[][]): string {
  const rows = cells.map((row) => row.map(printable))
  const widths: number[] = []
  for (const row of rows) {
    row.forEach((cell, i) => { widths[i] = Math.max(widths[i] ?? 0, cell.length) })
  }
  return rows.map((row) => row.map((cell, i) => i === row.length - 1 ? cell : cell.padEnd(widths[i])).join('  ').trimEnd()).join('\n')
}

/** `label  value` lines; a list value continues on the following lines, aligned. */
function fields (entries: Array<[string, string | string[]]>): string {
  const rows: string[][] = []
  for (const [label, value] of entries) {
    const values = Array.isArray(value) ? value : [value]
    values.forEach((item, i) => rows.push([i === 0 ? label : '', item]))
    if (values.length === 0) {
      rows.push([label, '(none)'])
    }
  }
  return table(rows)
}

export function formatDuration (ms: number): string {
  let seconds = Math.floor(ms / 1000)
  const parts: string[] = []
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['m', 60]] as const) {
    if (seconds >= size) {
      parts.push(`${Math.floor(seconds / size)}${unit}`)
      seconds %= size
    }
  }
  if (seconds > 0 || parts.length === 0) {
    parts.push(`${seconds}s`)
  }
  return parts.join(' ')
}

export function formatIdentity (id: DeviceIdentity): string {
  return fields([
    ['peer id', id.peerId],
    ['name', id.name],
    ['reachability', id.reachability],
    ['addresses', id.addresses]
  ])
}

export function formatStatus (status: DeviceStatus): string {
  const rejected = Object.entries(status.rejectedPeerRecords ?? {}).map(([reason, count]) => `${reason}: ${count}`)
  return fields([
    ['peer id', status.peerId],
    ['name', status.name],
    ['uptime', formatDuration(status.uptimeMs)],
    ['connections', `${status.connections} (${status.peers} peers)`],
    ['reachability', status.reachability],
    ['dht mode', status.dhtMode],
    ['relay reservations', status.relayReservations ?? []],
    ['rejected records', rejected]
  ])
}

export function formatPeers (peers: PeerConnectionInfo[]): string {
  if (peers.length === 0) {
    return 'no connected peers'
  }
  return table([
    ['PEER ID', 'PATH', 'DIRECTION', 'LATENCY', 'ADDRESS'],
    ...peers.map((peer) => [peer.peerId, peer.path, peer.direction, formatLatency(peer.latencyMs), peer.address])
  ])
}

export function formatConnected (peer: PeerConnectionInfo): string {
  const latency = peer.latencyMs === undefined ? '' : `, ${formatLatency(peer.latencyMs)}`
  return `connected to ${peer.peerId} at ${peer.address} (${peer.path}${latency})`
}

function formatLatency (ms: number | undefined): string {
  return ms === undefined ? '-' : `${Math.round(ms)} ms`
}
