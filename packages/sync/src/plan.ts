import { resolveVersions } from './conflict.js'
import { chunkOffsets, sameContent, type LocalEntry, type ShareEntry } from './entry.js'
import { IGNORE_NOTHING, type IgnoreMatcher } from './ignore.js'
import { checkSharePath, findCollisions, type PathLimits } from './path-policy.js'
import { PathRejectedError } from './errors.js'
import { eachLimit } from './apply-disk.js'
import { PLAN_HAS_CONCURRENCY } from './constants.js'
import type { AbortOptions } from '@homecloud/interface'
import type { CID } from 'multiformats/cid'

/** A chunk's place in a local file (share-relative path). */
export interface ChunkLocation {
  path: string
  offset: number
  length: number
}

/** Finds a chunk in any local file (the store's index in production). */
export interface ChunkLocator {
  locate(cid: CID): ChunkLocation | undefined | Promise<ChunkLocation | undefined>
}

/** The local index as the plan reads it: a `Map<string, LocalEntry>` will do. */
export interface LocalIndexView {
  get(path: string): LocalEntry | undefined
  values(): Iterable<LocalEntry>
}

/** A chunk of a file to write: copied from `source` when a local file has it, else read from the block store (fetched first if listed in `fetch`). */
export interface PlannedChunk {
  cid: CID
  offset: number
  length: number
  source?: ChunkLocation
}

/**
 * One change to make on disk, checked against `expect` (what the index says
 * is on disk now; undefined: nothing) so a local edit the scanner has not
 * seen yet is never overwritten. After it, the index records `entry`.
 */
export type PlanStep =
  | { action: 'mkdir', path: string, entry: ShareEntry, expect?: LocalEntry }
  | { action: 'write-file', path: string, entry: ShareEntry, chunks: PlannedChunk[], expect?: LocalEntry, moveFrom?: PlannedMove }
  | { action: 'symlink', path: string, entry: ShareEntry, expect?: LocalEntry }
  | { action: 'delete', path: string, entry: ShareEntry, expect: LocalEntry }
  /** Index only: the same content under a newer version, or a tombstone for a path this device does not have. */
  | { action: 'record', path: string, entry: ShareEntry, expect?: LocalEntry }

/**
 * The local file a new file moved from: the plan also deletes it (`expect`
 * is what the index says of it, `entry` its tombstone). When it is still
 * exactly that, with the new file's mode and mtime, apply renames it; that
 * delete step is then done as well.
 */
export interface PlannedMove {
  expect: LocalEntry
  entry: ShareEntry
}

export interface PlannedConflict {
  path: string
  /** Where the losing edit is kept (none when the loser was a delete). */
  conflictPath?: string
  winner: 'local' | 'remote'
}

export interface PullPlan {
  /** In order: directories, then files and links (a conflict copy before its winner), then deletes deepest first, then records. */
  steps: PlanStep[]
  /** Chunks no local file or the block store has: fetch them before applying. */
  fetch: CID[]
  bytesToFetch: number
  /** Bytes of written files that come from this device (other files, the block store). */
  bytesLocal: number
  conflicts: PlannedConflict[]
  /** Remote entries that are refused (bad path, collision, conflict name taken): they fail alone. */
  errors: Array<{ path: string, error: Error }>
}

export interface PlanInit {
  local: LocalIndexView
  /** The remote device's snapshot entries. */
  remote: Iterable<ShareEntry>
  /** Default: chunks of the local index's files. */
  locator?: ChunkLocator
  /** Is a chunk in the block store (kept history, an earlier fetch)? */
  has?(cid: CID): boolean | Promise<boolean>
  /** Remote paths this share ignores are left alone. */
  ignore?: IgnoreMatcher
  pathLimits?: Partial<PathLimits>
}

/** A locator over the chunks of the local index's live files. */
export function localChunkLocator (entries: Iterable<LocalEntry>): ChunkLocator {
  const byCid = new Map<string, ChunkLocation>()
  for (const e of entries) {
    if (e.type !== 'file' || e.deleted === true || e.local == null || e.chunks == null) continue
    const offsets = chunkOffsets(e.chunks)
    e.chunks.forEach((c, i) => {
      const key = c.cid.toString()
      if (!byCid.has(key)) byCid.set(key, { path: e.path, offset: offsets[i], length: c.length })
    })
  }
  return { locate: (cid) => byCid.get(cid.toString()) }
}

/**
 * What to do to bring the local copy up to a remote snapshot: per path the
 * version vectors decide; concurrent edits become a conflict copy with the
 * same winner and name on every device; an edit beats a delete. Every chunk
 * any local file already holds is copied, not fetched, so renames and moves
 * transfer no file data and an insert transfers only new chunks.
 */
export async function planPull (init: PlanInit, options: AbortOptions = {}): Promise<PullPlan> {
  const { local } = init
  const ignore = init.ignore ?? IGNORE_NOTHING
  const locator = init.locator ?? localChunkLocator(local.values())
  const plan: PullPlan = { steps: [], fetch: [], bytesToFetch: 0, bytesLocal: 0, conflicts: [], errors: [] }
  const mkdirs: PlanStep[] = []
  const writes: PlanStep[] = []
  const deletes: PlanStep[] = []
  const records: PlanStep[] = []

  const remote: ShareEntry[] = []
  for (const r of init.remote) {
    try {
      checkSharePath(r.path, init.pathLimits)
    } catch (err) {
      plan.errors.push({ path: r.path, error: err as Error })
      continue
    }
    if (!ignore.ignores(r.path, r.type === 'dir')) remote.push(r)
  }
  const refused = collidingPaths(local, remote)

  /** Chunks no local file holds, in the order met: the block store is asked about them all at once at the end. */
  const elsewhere: Array<{ key: string, cid: CID, length: number }> = []
  const planChunks = async (entry: ShareEntry): Promise<PlannedChunk[]> => {
    const chunks = entry.chunks ?? []
    const offsets = chunkOffsets(chunks)
    const out: PlannedChunk[] = []
    for (let i = 0; i < chunks.length; i++) {
      const { cid, length } = chunks[i]
      const source = await locator.locate(cid)
      out.push({ cid, offset: offsets[i], length, ...(source != null ? { source } : {}) })
      if (source != null) plan.bytesLocal += length
      else elsewhere.push({ key: cid.toString(), cid, length })
    }
    return out
  }
  const sortFetches = async (): Promise<void> => {
    const held = new Set<string>()
    const has = init.has
    if (has != null) {
      const asked = new Map(elsewhere.map(c => [c.key, c.cid]))
      await eachLimit(asked, PLAN_HAS_CONCURRENCY, async ([key, cid]) => {
        options.signal?.throwIfAborted()
        if (await has(cid)) held.add(key)
      })
    }
    const fetching = new Set<string>()
    for (const { key, cid, length } of elsewhere) {
      if (held.has(key)) {
        plan.bytesLocal += length
      } else if (!fetching.has(key)) {
        fetching.add(key)
        plan.fetch.push(cid)
        plan.bytesToFetch += length
      }
    }
  }

  /** Steps that put `entry` at its path, replacing `expect`. */
  const materialise = async (entry: ShareEntry, expect: LocalEntry | undefined): Promise<void> => {
    const present = expect != null && expect.deleted !== true ? expect : undefined
    const path = entry.path
    if (entry.deleted === true) {
      if (present == null) records.push({ action: 'record', path, entry, expect })
      else deletes.push({ action: 'delete', path, entry, expect: present })
    } else if (entry.type === 'dir') {
      if (present?.type === 'dir') records.push({ action: 'record', path, entry, expect: present })
      else mkdirs.push({ action: 'mkdir', path, entry, expect: present })
    } else if (entry.type === 'symlink') {
      writes.push({ action: 'symlink', path, entry, expect: present })
    } else {
      writes.push({ action: 'write-file', path, entry, chunks: await planChunks(entry), expect: present })
    }
  }

  /** The losing edit, kept at `conflictPath` with its own version (the same entry on every device). */
  const keepLoser = async (loser: ShareEntry, conflictPath: string): Promise<boolean> => {
    try {
      checkSharePath(conflictPath, init.pathLimits)
    } catch (err) {
      plan.errors.push({ path: loser.path, error: err as Error })
      return false
    }
    const copy: ShareEntry = { ...loser, path: conflictPath }
    const existing = local.get(conflictPath)
    if (existing != null && existing.deleted !== true) {
      if (sameContent(existing, copy)) return true // kept already (an earlier run or another device's copy)
      plan.errors.push({ path: loser.path, error: new PathRejectedError(conflictPath, 'collision', 'the conflict copy name is taken by another file') })
      return false
    }
    await materialise(copy, existing)
    return true
  }

  for (const r of remote) {
    options.signal?.throwIfAborted()
    if (isRefused(r.path, refused)) {
      plan.errors.push({ path: r.path, error: new PathRejectedError(r.path, 'collision', 'another spelling of this name (case or Unicode normalisation) is already in the share') })
      continue
    }
    const l = local.get(r.path)
    if (l == null) {
      await materialise(r, undefined)
      continue
    }
    const res = resolveVersions(l, r)
    if (res.kind === 'ordered') {
      if (res.winner !== 'b') continue // equal, or local is newer: the remote pulls from us
      if (sameContent(l, r)) records.push({ action: 'record', path: r.path, entry: r, expect: l })
      else await materialise(r, l)
      continue
    }
    if (sameContent(l, r)) {
      records.push({ action: 'record', path: r.path, entry: { ...(res.winner === 'a' ? stripLocal(l) : r), version: res.version }, expect: l })
      continue
    }
    const winner = res.winner === 'a' ? 'local' : 'remote'
    const loser = winner === 'local' ? r : stripLocal(l)
    // a directory that loses has no content to keep: its files are entries of their own
    const copyPath = loser.type !== 'dir' ? res.conflictPath : undefined
    if (copyPath != null && !await keepLoser(loser, copyPath)) continue
    plan.conflicts.push({ path: r.path, winner, ...(copyPath != null ? { conflictPath: copyPath } : {}) })
    if (winner === 'local') records.push({ action: 'record', path: r.path, entry: { ...stripLocal(l), version: res.version }, expect: l })
    else await materialise({ ...r, version: res.version }, l)
  }

  await sortFetches()
  pairMoves(writes, deletes)
  // parents before children; deletes children first
  mkdirs.sort((a, b) => a.path < b.path ? -1 : 1)
  deletes.sort((a, b) => a.path < b.path ? 1 : -1)
  plan.steps = [...mkdirs, ...writes, ...deletes, ...records]
  return plan
}

/** Pairs each new file with a deleted local file of the same content: a rename or move, which transfers and copies nothing. */
function pairMoves (writes: PlanStep[], deletes: PlanStep[]): void {
  const contentKey = (e: ShareEntry): string | undefined => {
    if (e.type !== 'file' || e.deleted === true || e.chunks == null || e.chunks.length === 0) return undefined
    return `${e.size}:${e.chunks.map(c => `${c.cid.toString()}/${c.length}`).join(',')}`
  }
  const gone = new Map<string, Array<Extract<PlanStep, { action: 'delete' }>>>()
  for (const d of deletes) {
    if (d.action !== 'delete') continue
    const key = contentKey(d.expect)
    if (key == null || d.expect.local == null) continue
    gone.set(key, [...gone.get(key) ?? [], d])
  }
  if (gone.size === 0) return
  for (const w of writes) {
    if (w.action !== 'write-file' || w.expect != null) continue
    const key = contentKey(w.entry)
    const from = key != null ? gone.get(key)?.shift() : undefined
    if (from != null) w.moveFrom = { expect: from.expect, entry: from.entry }
  }
}

function stripLocal (e: LocalEntry): ShareEntry {
  const { local: _local, ...entry } = e
  return entry
}

/**
 * Remote spellings that collide (case, Unicode normalisation) with another
 * spelling: the one already on this device is kept; among new ones the first
 * in sort order; the others are refused, with everything below them.
 */
function collidingPaths (local: LocalIndexView, remote: ShareEntry[]): Set<string> {
  const live = new Set<string>()
  for (const l of local.values()) if (l.deleted !== true) live.add(l.path)
  const paths = new Set(live)
  for (const r of remote) if (r.deleted !== true) paths.add(r.path)
  const refused = new Set<string>()
  for (const { paths: spellings } of findCollisions(paths)) {
    const keep = spellings.find(p => live.has(p) || [...live].some(l => l.startsWith(`${p}/`))) ?? spellings[0]
    for (const p of spellings) if (p !== keep) refused.add(p)
  }
  return refused
}

function isRefused (path: string, refused: ReadonlySet<string>): boolean {
  if (refused.size === 0) return false
  if (refused.has(path)) return true
  for (let i = path.indexOf('/'); i !== -1; i = path.indexOf('/', i + 1)) {
    if (refused.has(path.slice(0, i))) return true
  }
  return false
}
