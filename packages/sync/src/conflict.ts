import { MAX_NAME_BYTES } from './constants.js'
import { compareVersions, mergeVersions, type VersionVector } from './version-vector.js'
import type { ShareEntry } from './entry.js'

/** The parts of a version conflict resolution reads. */
export type Contender = Pick<ShareEntry, 'path' | 'version' | 'modifiedBy' | 'mtime' | 'deleted'>

export type Resolution =
  /** One side has seen every change of the other (or they are the same version): no conflict. */
  | { kind: 'ordered', winner: 'a' | 'b' | 'equal' }
  /** Concurrent changes: `winner` stays at the path with `version`; the loser is kept at `conflictPath` when it has content. */
  | { kind: 'conflict', winner: 'a' | 'b', version: VersionVector, conflictPath?: string }

/**
 * Decides between two versions of one path so that every device, whichever
 * side it holds, picks the same winner: version vectors first; for
 * concurrent changes an edit beats a delete, then the later mtime, then the
 * greater device id. Clocks only break ties between concurrent changes.
 */
export function resolveVersions (a: Contender, b: Contender): Resolution {
  const order = compareVersions(a.version, b.version)
  if (order === 'equal') return { kind: 'ordered', winner: 'equal' }
  if (order === 'greater') return { kind: 'ordered', winner: 'a' }
  if (order === 'less') return { kind: 'ordered', winner: 'b' }
  const version = mergeVersions(a.version, b.version)
  const aDeleted = a.deleted === true
  const bDeleted = b.deleted === true
  if (aDeleted !== bDeleted) return { kind: 'conflict', winner: aDeleted ? 'b' : 'a', version }
  if (aDeleted && bDeleted) return { kind: 'conflict', winner: 'a', version }
  const winner = beats(a, b) ? 'a' : 'b'
  const loser = winner === 'a' ? b : a
  return { kind: 'conflict', winner, version, conflictPath: conflictPath(loser.path, loser.modifiedBy, loser.mtime) }
}

/** Total order on concurrent edits: later mtime, then greater device id, then the version itself. */
function beats (a: Contender, b: Contender): boolean {
  if (a.mtime !== b.mtime) return a.mtime > b.mtime
  if (a.modifiedBy !== b.modifiedBy) return a.modifiedBy > b.modifiedBy
  // only reachable with a corrupted history; still the same answer everywhere
  return canonical(a.version) > canonical(b.version)
}

function canonical (v: VersionVector): string {
  return JSON.stringify(Object.entries(v).sort(([x], [y]) => x < y ? -1 : x > y ? 1 : 0))
}

/**
 * A device's short id in conflict names: the end of its PeerId (every
 * Ed25519 PeerId starts with the same `12D3KooW`).
 */
export function shortDeviceId (device: string): string {
  // ids come from peers: only letters and digits may reach a file name
  return device.slice(-8).replace(/[^A-Za-z0-9]/g, '_')
}

/** `20240131-235959` (UTC) for a time in milliseconds. */
export function conflictTimestamp (mtime: number): string {
  const d = new Date(mtime)
  if (Number.isNaN(d.getTime())) return '00000000-000000'
  const p = (n: number, w = 2): string => String(n).padStart(w, '0')
  return `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`
}

const encoder = new TextEncoder()

/**
 * Where the loser of a conflict is kept: `NAME.conflict-<device>-<yyyymmdd-hhmmss>.EXT`
 * in the same directory, from the loser's own device and mtime so every
 * device names it the same. The name is shortened to stay within 255 bytes.
 */
export function conflictPath (path: string, device: string, mtime: number): string {
  const slash = path.lastIndexOf('/')
  const dir = path.slice(0, slash + 1)
  const base = path.slice(slash + 1)
  const dot = base.lastIndexOf('.')
  // a leading dot starts a hidden name, not an extension
  const [name, ext] = dot > 0 ? [base.slice(0, dot), base.slice(dot)] : [base, '']
  const suffix = `.conflict-${shortDeviceId(device)}-${conflictTimestamp(mtime)}`
  let stem = name
  while (stem.length > 0 && encoder.encode(stem + suffix + ext).byteLength > MAX_NAME_BYTES) {
    stem = [...stem].slice(0, -1).join('')
  }
  const tail = encoder.encode(stem + suffix + ext).byteLength > MAX_NAME_BYTES ? '' : ext
  return `${dir}${stem}${suffix}${tail}`
}
