/**
 * The progress bar of long commands (add, get, blocks gc/verify): one line on
 * stderr, redrawn at most ten times a second, only when stderr is a terminal;
 * silent otherwise (pipes, logs, `--json` consumers see nothing of it).
 */
import type { Io } from './command.js'

/** What the daemon streams (`ContentProgress` of @homecloud/node), read defensively: it came over HTTP. */
interface Snapshot {
  phase: string
  bytes: number
  bytesTotal?: number
  chunks: number
  chunksTotal?: number
  reusedBytes?: number
  peers?: unknown[]
}

export interface ProgressBar {
  update(progress: Record<string, unknown>): void
  /** Clears the line; call before printing the result. */
  done(): void
}

const REDRAW_MS = 100
const BAR_WIDTH = 20

const SILENT: ProgressBar = { update: () => {}, done: () => {} }

export function formatBytes (bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`
}

function snapshot (raw: Record<string, unknown>): Snapshot | undefined {
  const num = (value: unknown): number | undefined => typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined
  const bytes = num(raw.bytes)
  const chunks = num(raw.chunks)
  if (typeof raw.phase !== 'string' || bytes === undefined || chunks === undefined) return undefined
  return {
    phase: raw.phase.replace(/[^a-z]/g, '').slice(0, 12),
    bytes,
    bytesTotal: num(raw.bytesTotal),
    chunks,
    chunksTotal: num(raw.chunksTotal),
    reusedBytes: num(raw.reusedBytes),
    peers: Array.isArray(raw.peers) ? raw.peers : undefined
  }
}

/** One line for a snapshot; `rate` in bytes per second. */
export function formatProgress (label: string, p: Snapshot, rate: number): string {
  const parts = [label, p.phase.padEnd(9)]
  if (p.bytesTotal !== undefined && p.bytesTotal > 0) {
    const ratio = Math.min(1, p.bytes / p.bytesTotal)
    const filled = Math.round(ratio * BAR_WIDTH)
    parts.push(`[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${(ratio * 100).toFixed(0).padStart(3)}%`)
    parts.push(`${formatBytes(p.bytes)} / ${formatBytes(p.bytesTotal)}`)
  } else {
    parts.push(formatBytes(p.bytes))
  }
  parts.push(p.chunksTotal !== undefined ? `${p.chunks}/${p.chunksTotal} chunks` : `${p.chunks} chunks`)
  if (p.reusedBytes !== undefined && p.reusedBytes > 0) parts.push(`${formatBytes(p.reusedBytes)} reused`)
  if (rate > 0) parts.push(`${formatBytes(Math.round(rate))}/s`)
  if (p.peers !== undefined) parts.push(`${p.peers.length} ${p.peers.length === 1 ? 'peer' : 'peers'}`)
  return parts.join('  ')
}

/** A bar on stderr when it is a terminal; a no-op otherwise. */
export function progressBar (io: Io, label: string): ProgressBar {
  if (io.stderrIsTty !== true) return SILENT
  let drawnAt = 0
  let sample: { at: number, bytes: number } | undefined
  let rate = 0
  let drawn = false
  return {
    update (raw) {
      const p = snapshot(raw)
      const now = Date.now()
      if (p === undefined || now - drawnAt < REDRAW_MS) return
      // rate of what moved (reused bytes arrive at disk speed and would flatter it)
      const moved = p.bytes - (p.reusedBytes ?? 0)
      if (sample !== undefined && now > sample.at && moved >= sample.bytes) {
        const current = (moved - sample.bytes) * 1000 / (now - sample.at)
        rate = rate === 0 ? current : 0.7 * rate + 0.3 * current
      }
      sample = { at: now, bytes: moved }
      drawnAt = now
      drawn = true
      io.stderr(`\r${formatProgress(label, p, rate)}\x1b[K`)
    },
    done () {
      if (drawn) io.stderr('\r\x1b[K')
    }
  }
}
