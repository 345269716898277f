import { INTERNAL_PREFIX, MAX_NAME_BYTES, MAX_PATH_BYTES, MAX_PATH_DEPTH } from './constants.js'
import { PathRejectedError, type PathRejectReason } from './errors.js'

/** Caps applied by `checkSharePath`. */
export interface PathLimits {
  maxNameBytes: number
  maxPathBytes: number
  maxDepth: number
}

export const DEFAULT_PATH_LIMITS: Readonly<PathLimits> = Object.freeze({
  maxNameBytes: MAX_NAME_BYTES,
  maxPathBytes: MAX_PATH_BYTES,
  maxDepth: MAX_PATH_DEPTH
})

// C0 controls, DEL and C1 controls: NUL truncates C strings, the rest are invalid on Windows or break terminals.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/ // eslint-disable-line no-control-regex
// Invalid in names on Windows (NTFS, exFAT, SMB); ':' also opens NTFS alternate data streams.
const INVALID_CHARS = /[<>:"|?*]/
// Device names Windows reserves with or without an extension (COM¹²³ too).
const RESERVED = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)(\.|$)/i
const DRIVE = /^[a-z]:/i
const encoder = new TextEncoder()

function byteLength (s: string): number {
  return encoder.encode(s).byteLength
}

/** Is this name one of Home Cloud's own (temp files, the ignore file)? Such names are never synced. */
export function isInternalName (name: string): boolean {
  return name.startsWith(INTERNAL_PREFIX)
}

/** A path that passed `checkSharePath`, with what checking a child needs. */
export interface CheckedPath {
  path: string
  depth: number
  bytes: number
}

type Reject = (reason: PathRejectReason, detail: string) => never

function rejecter (path: string): Reject {
  // a hostile path can be huge: keep the message bounded
  return (reason, detail) => { throw new PathRejectedError(path.length > 300 ? `${path.slice(0, 300)}…` : path, reason, detail) }
}

/** The rules for one name; `first` when it is the first segment (where a drive letter would be). */
function checkName (name: string, first: boolean, maxNameBytes: number, reject: Reject): number {
  if (name === '') reject('empty-segment', 'empty segment (// or a trailing /)')
  if (name === '.' || name === '..') reject('dot-segment', `"${name}" segment`)
  if (!name.isWellFormed()) reject('invalid-unicode', 'contains a lone surrogate')
  if (CONTROL.test(name)) reject('control-char', 'contains NUL or a control character')
  if (name.includes('\\')) reject('backslash', 'backslashes are path separators on Windows')
  if (first && DRIVE.test(name)) reject('drive-letter', 'the path starts with a drive letter')
  if (INVALID_CHARS.test(name) || name.includes('/')) reject('invalid-char', `"${name}" contains one of <>:"|?*/`)
  if (name.endsWith('.') || name.endsWith(' ')) reject('trailing-dot-or-space', `"${name}" ends with a dot or a space`)
  if (RESERVED.test(name)) reject('reserved-name', `"${name}" is a reserved device name on Windows`)
  if (isInternalName(name)) reject('internal-name', `"${name}" is reserved for Home Cloud`)
  const bytes = byteLength(name)
  if (bytes > maxNameBytes) reject('name-too-long', `a name is longer than ${maxNameBytes} bytes`)
  return bytes
}

/**
 * The one check every share-relative path goes through before anything is
 * read or written for it, whether it came from a peer or from the local disk.
 * A path is `/`-separated, relative, and valid on Linux, macOS and Windows.
 * Returns the path unchanged; throws `PathRejectedError` with a stable
 * `reason` otherwise.
 */
export function checkSharePath (path: unknown, limits: Partial<PathLimits> = {}): string {
  if (typeof path !== 'string') {
    throw new PathRejectedError(String(path), 'not-a-string', `a path must be a string, not ${typeof path}`)
  }
  const { maxPathBytes, maxDepth } = { ...DEFAULT_PATH_LIMITS, ...limits }
  const reject = rejecter(path)
  if (path === '') reject('empty', 'the path is empty')
  // UTF-16 units never exceed UTF-8 bytes: a cheap bound before looking at a huge string
  if (path.length > maxPathBytes) reject('path-too-long', `more than ${maxPathBytes} bytes`)
  if (path.startsWith('/')) reject('absolute', 'the path is absolute')
  const segments = path.split('/')
  let checked: CheckedPath | undefined
  for (const name of segments) checked = childPath(checked, name, limits, reject)
  if (segments.length > maxDepth) reject('too-deep', `more than ${maxDepth} levels`)
  return path
}

/**
 * `checkSharePath` for `parent/name` when `parent` already passed it: the
 * same rules, without looking at the parent again (a walk down a deep tree
 * stays linear). `parent` undefined: `name` is at the share root.
 */
export function checkChildPath (parent: CheckedPath | undefined, name: string, limits: Partial<PathLimits> = {}): CheckedPath {
  return childPath(parent, name, limits, undefined)
}

function childPath (parent: CheckedPath | undefined, name: string, limits: Partial<PathLimits>, reject: Reject | undefined): CheckedPath {
  const { maxNameBytes, maxPathBytes, maxDepth } = { ...DEFAULT_PATH_LIMITS, ...limits }
  const path = parent == null ? name : `${parent.path}/${name}`
  const fail = reject ?? rejecter(path)
  const nameBytes = checkName(name, parent == null, maxNameBytes, fail)
  const checked = { path, depth: (parent?.depth ?? 0) + 1, bytes: parent == null ? nameBytes : parent.bytes + 1 + nameBytes }
  if (checked.bytes > maxPathBytes) fail('path-too-long', `more than ${maxPathBytes} bytes`)
  // checkSharePath checks depth once the whole path is known, so a too-deep path with a bad name reports the name
  if (reject == null && checked.depth > maxDepth) fail('too-deep', `more than ${maxDepth} levels`)
  return checked
}

/** Is `path` allowed by `checkSharePath`? */
export function isAllowedSharePath (path: unknown, limits?: Partial<PathLimits>): boolean {
  try {
    checkSharePath(path, limits)
    return true
  } catch {
    return false
  }
}

/** Two spellings a case-insensitive or normalising filesystem (NTFS, APFS, exFAT) would store as one. */
export function collisionKey (path: string): string {
  return path.normalize('NFC').toLowerCase()
}

/** `path` and each folder it is in, deepest first: `a/b/c`, `a/b`, `a`. */
export function * pathAndParents (path: string): Generator<string> {
  for (let end = path.length; end > 0; end = path.lastIndexOf('/', end - 1)) yield path.slice(0, end)
}

export interface PathCollision {
  /** 'normalization' when the spellings differ only in Unicode normal form (NFC vs NFD). */
  kind: 'case' | 'normalization'
  /** The distinct spellings, sorted. */
  paths: string[]
}

/**
 * Paths (or the names of one directory) that would land on the same file on
 * a case-insensitive or normalising filesystem. Parent directories count
 * too: `A/x` and `a/y` collide at `A` / `a`.
 */
export function findCollisions (paths: Iterable<string>): PathCollision[] {
  const byKey = new Map<string, Set<string>>()
  const seen = new Set<string>()
  for (const path of paths) {
    // the path and each parent: stop at the first one already seen
    for (const prefix of pathAndParents(path)) {
      if (seen.has(prefix)) break
      seen.add(prefix)
      const key = collisionKey(prefix)
      const spellings = byKey.get(key)
      if (spellings == null) byKey.set(key, new Set([prefix]))
      else spellings.add(prefix)
    }
  }
  const collisions: PathCollision[] = []
  for (const spellings of byKey.values()) {
    if (spellings.size < 2) continue
    const list = [...spellings].sort()
    const nfc = new Set(list.map(p => p.normalize('NFC')))
    collisions.push({ kind: nfc.size === 1 ? 'normalization' : 'case', paths: list })
  }
  return collisions
}
