import type { VersionVector } from './version-vector.js'
import type { CID } from 'multiformats/cid'

export type EntryType = 'file' | 'dir' | 'symlink'

/** One chunk of a file, in order; offsets follow from the lengths before it. */
export interface ChunkRef {
  cid: CID
  length: number
}

/**
 * What every device agrees on about one path of a share: the unit of a
 * snapshot. `mtime` is whole milliseconds (UTC); it only breaks ties.
 */
export interface ShareEntry {
  /** Share-relative, `/`-separated; passed `checkSharePath`. */
  path: string
  type: EntryType
  /** Bytes of a file; 0 for directories and links. */
  size: number
  mtime: number
  /** Permission bits (`& 0o777`): never setuid, setgid or sticky. */
  mode: number
  version: VersionVector
  /** The device that made the change `version` ends with. */
  modifiedBy: string
  /** Files only. */
  chunks?: ChunkRef[]
  /** Symlinks only: the target, stored as is and never followed. */
  target?: string
  /** A tombstone: the path was deleted at this version. */
  deleted?: boolean
}

/** What the local device last saw on disk for a path, to tell "unchanged" without rehashing. */
export interface LocalStat {
  ino: number
  /** Exact mtime as the filesystem reports it (fractional milliseconds). */
  mtimeMs: number
}

/** A share entry plus where it lives on this device; absent `local` for tombstones. */
export interface LocalEntry extends ShareEntry {
  local?: LocalStat
}

/** The byte offset of each chunk. */
export function chunkOffsets (chunks: readonly ChunkRef[]): number[] {
  const offsets: number[] = []
  let offset = 0
  for (const c of chunks) {
    offsets.push(offset)
    offset += c.length
  }
  return offsets
}

/** Do two entries describe the same content (type, bytes, link target, mode)? Versions aside. */
export function sameContent (a: ShareEntry, b: ShareEntry): boolean {
  if (a.type !== b.type || (a.deleted === true) !== (b.deleted === true)) return false
  if (a.deleted === true) return true
  if (a.mode !== b.mode) return false
  if (a.type === 'symlink') return a.target === b.target
  if (a.type === 'dir') return true
  const ca = a.chunks ?? []
  const cb = b.chunks ?? []
  return a.size === b.size && ca.length === cb.length &&
    ca.every((c, i) => c.length === cb[i].length && c.cid.equals(cb[i].cid))
}

/** Snapshot mtimes are whole milliseconds: rounding absorbs the float error of utimes. */
export function toEntryMtime (mtimeMs: number): number {
  return Math.round(mtimeMs)
}
