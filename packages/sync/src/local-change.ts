import { sameContent, toEntryMtime, type LocalEntry } from './entry.js'
import { bumpVersion } from './version-vector.js'
import type { ScannedEntry } from './scanner.js'

/**
 * The index entry after the scanner saw `scanned` at a path the index held
 * as `prev`: a new version by `device` when the content changed, the same
 * version with a fresh local stat when only the stat moved (a touch, a copy
 * back), or undefined when nothing changed.
 */
export function entryFromScan (prev: LocalEntry | undefined, scanned: ScannedEntry, device: string): LocalEntry | undefined {
  if (!scanned.changed && prev != null) return undefined
  const next: LocalEntry = {
    path: scanned.path,
    type: scanned.type,
    size: scanned.type === 'file' ? scanned.size : 0,
    mtime: toEntryMtime(scanned.mtimeMs),
    mode: scanned.mode,
    version: prev?.version ?? {},
    modifiedBy: device,
    ...(scanned.type === 'file' ? { chunks: scanned.chunks ?? prev?.chunks ?? [] } : {}),
    ...(scanned.type === 'symlink' ? { target: scanned.target } : {}),
    local: { ino: scanned.ino, mtimeMs: scanned.mtimeMs }
  }
  if (prev != null && prev.deleted !== true && sameContent(prev, next)) {
    return { ...prev, local: next.local }
  }
  return { ...next, version: bumpVersion(prev?.version ?? {}, device) }
}

/** The tombstone recorded when `device` finds `prev` gone from disk at time `now` (ms). */
export function tombstoneFromScan (prev: LocalEntry, device: string, now: number): LocalEntry {
  return {
    path: prev.path,
    type: prev.type,
    size: 0,
    mtime: Math.round(now),
    mode: prev.mode,
    version: bumpVersion(prev.version, device),
    modifiedBy: device,
    deleted: true
  }
}
