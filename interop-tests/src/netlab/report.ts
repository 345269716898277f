/** The lab's report: one row per scenario, printed by the lab run and kept in interop-tests/README.md. */

export interface ReportRow {
  scenario: string
  nat: string
  /** direct, relayed, UPnP, LAN, or "-" when the scenario failed before a path existed. */
  path: string
  /** Time to first connection, ms. */
  firstConnectionMs?: number
  /** Time to a direct path, ms (hole punching; not done yet). */
  directMs?: number
  /** Payload throughput of the transfer, Mbit/s. */
  throughputMbps?: number
  note?: string
}

const HEADERS = ['scenario', 'NAT preset', 'path', 'first connection', 'time to direct', 'throughput', 'note']

/** A Markdown table of `rows`. */
export function formatReport (rows: readonly ReportRow[]): string {
  const cells = rows.map(r => [
    r.scenario,
    r.nat,
    r.path,
    r.firstConnectionMs === undefined ? '-' : `${(r.firstConnectionMs / 1000).toFixed(2)} s`,
    r.directMs === undefined ? '-' : `${(r.directMs / 1000).toFixed(2)} s`,
    r.throughputMbps === undefined ? '-' : `${r.throughputMbps.toFixed(2)} Mbit/s`,
    r.note ?? ''
  ])
  const widths = HEADERS.map((h, i) => Math.max(h.length, ...cells.map(c => c[i].length)))
  const line = (values: string[]): string => `| ${values.map((v, i) => v.padEnd(widths[i])).join(' | ')} |`
  return [line(HEADERS), line(widths.map(w => '-'.repeat(w))), ...cells.map(line)].join('\n') + '\n'
}
