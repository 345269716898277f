import { conflictPath, resolveVersions } from './conflict.js'
import { mergeVersions, type VersionVector } from './version-vector.js'
import { chunkOffsets, sameContent, type LocalEntry, type ShareEntry } from './entry.js'
import { IGNORE_NOTHING, type IgnoreMatcher } from './ignore.js'
import { checkSharePath, collisionKey, findCollisions, pathAndParents, type PathLimits } from './path-policy.js'
import { PathRejectedError } from './errors.js'
import { PLAN_HAS_CONCURRENCY } from './constants.js'
import { bytesKey } from '@homecloud/exchange'
import { eachLimit } from '@homecloud/store'
import { logger } from '@libp2p/logger'
import type { AbortOptions } from '@homecloud/interface'
import type { CID } from 'multiformats/cid'

const log = logger('homecloud:sync:plan')

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

/**
 * The local index as the plan reads it: a `Map<string, LocalEntry>` will do.
 * Reading every entry can be costly (LocalIndex rebuilds each from its
 * packed form), so the plan uses `keys` and `hasChunk` where given to read
 * them only when it must.
 */
export interface LocalIndexView {
  get(path: string): LocalEntry | undefined
  values(): Iterable<LocalEntry>
  /** Every path the index knows, tombstones included. */
  keys?(): Iterable<string>
  /** Does a live file hold `cid`? False means no local file can be a source of it. */
  hasChunk?(cid: CID): boolean
  /**
   * The known spellings (paths, tombstones included, and their parents) whose
   * `collisionKey` is `key`; more may be listed than are known now, never fewer.
   */
  spellingsOf?(key: string): readonly string[] | undefined
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
  /** Where the losing edit is kept (none when the loser was a delete, or a directory that lost to a directory). */
  conflictPath?: string
  winner: 'local' | 'remote'
}

export interface PullPlan {
  /**
   * In order: directories, then files and links (a conflict copy before its
   * winner), then deletes deepest first, then what takes the place of an
   * entry of another type (directories, then files and links), then records.
   */
  steps: PlanStep[]
  /** Chunks no local file or the block store has: fetch them before applying. */
  fetch: CID[]
  bytesToFetch: number
  /** Bytes of written files that come from this device (other files, the block store). */
  bytesLocal: number
  conflicts: PlannedConflict[]
  /** Remote entries that are refused (bad path, collision, conflict name taken): they fail alone. */
  errors: Array<{ path: string, error: Error }>
  /** Remote entries left for a later pull of the same head (see `PlanSkipReason`): the head is not applied whole. */
  skipped?: Array<{ path: string, reason: PlanSkipReason }>
}

/**
 * Why a remote entry waits for the next pull. `conflict-copy`: this pull
 * moves a local directory's files to their conflict copy path, where the
 * remote already holds a version this device has not seen (newer, or
 * concurrent: edited there meanwhile); once the copy is there, the next
 * pull of the same head brings (or resolves) the remote's version.
 */
export type PlanSkipReason = 'conflict-copy'

export interface PlanInit {
  local: LocalIndexView
  /** The remote device's snapshot entries. */
  remote: Iterable<ShareEntry>
  /** Default: chunks of the local index's files. */
  locator?: ChunkLocator
  /** Is a chunk in the block store (kept history, an earlier fetch)? */
  has?(cid: CID): boolean | Promise<boolean>
  /** `has` of many chunks, in order (the store's `hasMany`): when given, the plan asks it once, not `has` per chunk. */
  hasMany?(cids: CID[]): Promise<boolean[]>
  /** Remote paths this share ignores are left alone. */
  ignore?: IgnoreMatcher
  pathLimits?: Partial<PathLimits>
}

const NO_CHUNKS: ChunkLocator = { locate: () => undefined }

/** A chunk's key in maps (`bytesKey` of its CID's bytes, not `CID.toString()`: see local-index.ts). */
export function cidKey (cid: CID): string {
  return bytesKey(cid.bytes)
}

/** 30 bits of a CID's last bytes (its digest's: well spread), a small integer that rules most chunks out before a key is built. */
function cidTag (bytes: Uint8Array): number {
  const n = bytes.length
  return (bytes[n - 1] | bytes[n - 2] << 8 | bytes[n - 3] << 16 | (bytes[n - 4] & 0x3f) << 24)
}

/**
 * A locator over the chunks of the local index's live files (the first file
 * in `entries` holding a chunk). `only`: the chunks that will be asked
 * about; the others are passed over without a key or a place built for them
 * (a plan asks about a few new files' chunks, the share may hold 100,000s).
 */
export function localChunkLocator (entries: Iterable<LocalEntry>, only?: Iterable<CID>): ChunkLocator {
  let tags: Set<number> | undefined
  let wanted: Set<string> | undefined
  if (only != null) {
    tags = new Set()
    wanted = new Set()
    for (const cid of only) {
      tags.add(cidTag(cid.bytes))
      wanted.add(cidKey(cid))
    }
  }
  const byCid = new Map<string, ChunkLocation>()
  for (const e of entries) {
    if (e.type !== 'file' || e.deleted === true || e.local == null || e.chunks == null) continue
    let offset = 0
    for (const c of e.chunks) {
      const at = offset
      offset += c.length
      if (tags != null && !tags.has(cidTag(c.cid.bytes))) continue
      const key = cidKey(c.cid)
      if (wanted?.has(key) === false || byCid.has(key)) continue
      byCid.set(key, { path: e.path, offset: at, length: c.length })
    }
  }
  return { locate: (cid) => byCid.get(cidKey(cid)) }
}

/**
 * What to do to bring the local copy up to a remote snapshot: per path the
 * version vectors decide; concurrent edits become a conflict copy with the
 * same winner and name on every device; an edit beats a delete. A
 * directory that gives way to a file or a link is emptied first (its synced
 * files deleted, never a file the index does not know); when it lost a
 * concurrent type change, or holds edits the other side has not seen, it is
 * kept under a conflict name with those files (see `keepDir`). Every chunk
 * any local file already holds is copied, not fetched, so renames and moves
 * transfer no file data and an insert transfers only new chunks.
 */
export async function planPull (init: PlanInit, options: AbortOptions = {}): Promise<PullPlan> {
  const { local } = init
  const ignore = init.ignore ?? IGNORE_NOTHING
  const started = Date.now()
  const plan: PullPlan = { steps: [], fetch: [], bytesToFetch: 0, bytesLocal: 0, conflicts: [], errors: [], skipped: [] }
  const mkdirs: PlanStep[] = []
  const writes: PlanStep[] = []
  const deletes: PlanStep[] = []
  const records: PlanStep[] = []
  /** Steps at or below a path whose old entry is removed first (a type change): after every delete. */
  const lateMkdirs: PlanStep[] = []
  const lateWrites: PlanStep[] = []
  const replaced = new Set<string>()

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
  // parents before children: a type change is known before the entries below it
  remote.sort(byPath)
  const refused = collidingPaths(local, remote)

  /** Chunks of written files, in the order met: where each is found is decided once every entry is planned (`findSources`). */
  const planned: PlannedChunk[] = []
  const planChunks = (entry: ShareEntry): PlannedChunk[] => {
    const chunks = entry.chunks ?? []
    const offsets = chunkOffsets(chunks)
    const out = chunks.map((c, i): PlannedChunk => ({ cid: c.cid, offset: offsets[i], length: c.length }))
    // one by one: a huge file's chunks would overflow a spread's argument list
    for (const c of out) planned.push(c)
    return out
  }
  /** Chunks no local file holds, in the order met: the block store is asked about them all at once. */
  const elsewhere: Array<{ key: string, cid: CID, length: number }> = []
  /** A local file's place for each planned chunk that has one; the default locator maps only chunks a live file holds, and reads no entry when there are none. */
  const findSources = async (): Promise<void> => {
    let locator = init.locator
    if (locator == null) {
      const held = planned.filter(c => local.hasChunk?.(c.cid) ?? true)
      locator = held.length > 0 ? localChunkLocator(local.values(), held.map(c => c.cid)) : NO_CHUNKS
    }
    for (const c of planned) {
      const found = locator.locate(c.cid)
      const source = found instanceof Promise ? await found : found
      if (source != null) {
        c.source = source
        plan.bytesLocal += c.length
      } else {
        elsewhere.push({ key: cidKey(c.cid), cid: c.cid, length: c.length })
      }
    }
  }
  let lookup = { chunks: 0, held: 0, ms: 0 }
  const sortFetches = async (): Promise<void> => {
    const held = new Set<string>()
    const has = init.has
    const asked = new Map(elsewhere.map(c => [c.key, c.cid]))
    const asking = Date.now()
    if (init.hasMany != null && asked.size > 0) {
      options.signal?.throwIfAborted()
      const keys = [...asked.keys()]
      const answers = await init.hasMany([...asked.values()])
      keys.forEach((key, i) => { if (answers[i]) held.add(key) })
    } else if (has != null) {
      await eachLimit(asked, PLAN_HAS_CONCURRENCY, async ([key, cid]) => {
        options.signal?.throwIfAborted()
        if (await has(cid)) held.add(key)
      })
    }
    lookup = { chunks: asked.size, held: held.size, ms: Date.now() - asking }
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

  /**
   * Steps that put `entry` at its path, replacing `expect`. A directory
   * replaced by a file or a link (or the reverse) is removed first, with
   * the deletes (a directory only once empty: files nobody synced keep it),
   * and the new entry made after every delete.
   */
  const materialise = async (entry: ShareEntry, expect: LocalEntry | undefined): Promise<void> => {
    const present = expect != null && expect.deleted !== true ? expect : undefined
    const path = entry.path
    const late = isAtOrBelow(path, replaced)
    if (entry.deleted === true) {
      if (present == null) records.push({ action: 'record', path, entry, expect })
      else deletes.push({ action: 'delete', path, entry, expect: present })
    } else if (present != null && (present.type === 'dir') !== (entry.type === 'dir')) {
      replaced.add(path)
      deletes.push({ action: 'delete', path, entry: removedFor(present), expect: present })
      await materialise(entry, undefined)
    } else if (entry.type === 'dir') {
      if (present?.type === 'dir') records.push({ action: 'record', path, entry, expect: present })
      else (late ? lateMkdirs : mkdirs).push({ action: 'mkdir', path, entry, expect: present })
    } else if (entry.type === 'symlink') {
      (late ? lateWrites : writes).push({ action: 'symlink', path, entry, expect: present })
    } else {
      (late ? lateWrites : writes).push({ action: 'write-file', path, entry, chunks: planChunks(entry), expect: present })
    }
  }

  /** The losing edit, kept at `copyPath` with its own version (the same entry on every device). */
  const keepLoser = async (loser: ShareEntry, copyPath: string): Promise<boolean> => {
    try {
      checkSharePath(copyPath, init.pathLimits)
    } catch (err) {
      plan.errors.push({ path: loser.path, error: err as Error })
      return false
    }
    const copy: ShareEntry = { ...loser, path: copyPath }
    const existing = local.get(copyPath)
    if (existing != null && existing.deleted !== true) {
      if (sameContent(existing, copy)) return true // kept already (an earlier run or another device's copy)
      plan.errors.push({ path: loser.path, error: new PathRejectedError(copyPath, 'collision', 'the conflict copy name is taken by another file') })
      return false
    }
    await materialise(copy, existing)
    return true
  }

  /** One remote entry against the local entry at its path. */
  const pullEntry = async (r: ShareEntry): Promise<void> => {
    const l = local.get(r.path)
    if (l == null) {
      await materialise(r, undefined)
      return
    }
    const res = resolveVersions(l, r)
    if (res.kind === 'ordered') {
      if (res.winner !== 'b') return // equal, or local is newer: the remote pulls from us
      if (sameContent(l, r)) records.push({ action: 'record', path: r.path, entry: r, expect: l })
      else await materialise(r, l)
      return
    }
    if (sameContent(l, r)) {
      records.push({ action: 'record', path: r.path, entry: { ...(res.winner === 'a' ? stripLocal(l) : r), version: res.version }, expect: l })
      return
    }
    const winner = res.winner === 'a' ? 'local' : 'remote'
    const loser = winner === 'local' ? r : stripLocal(l)
    // a directory that loses to another directory has no content to keep: its files are entries of their own
    const copyPath = loser.type !== 'dir' ? res.conflictPath : undefined
    if (copyPath != null && !await keepLoser(loser, copyPath)) return
    plan.conflicts.push({ path: r.path, winner, ...(copyPath != null ? { conflictPath: copyPath } : {}) })
    if (winner === 'local') records.push({ action: 'record', path: r.path, entry: { ...stripLocal(l), version: res.version }, expect: l })
    else await materialise({ ...r, version: res.version }, l)
  }

  /** Remote paths a losing directory planned already, and the paths its copy takes. */
  const handled = new Set<string>()
  /** Copy path → the entry put there (a local entry moving there, or a remote one written there). */
  const produced = new Map<string, ShareEntry>()
  let remoteByPath: Map<string, ShareEntry> | undefined
  let localLive: LocalEntry[] | undefined
  /**
   * A directory whose path a file or a link takes while it holds entries
   * the other side has not seen: it lost a concurrent type change, or an
   * older version of it is replaced while it holds newer edits (an edit
   * beats a delete). It is kept under `copyPath` with those entries, the
   * same on every device: where it is local they move there (renames) and
   * their old paths become tombstones; where it is the remote's, they are
   * written there. `version` is the path's version once decided.
   */
  const keepDir = async (dir: ShareEntry, localLoses: boolean, kept: ShareEntry[], winner: ShareEntry, version: VersionVector, copyPath: string): Promise<boolean> => {
    if (!await keepLoser(dir, copyPath)) return false
    handled.add(dir.path)
    produced.set(copyPath, { ...dir, path: copyPath })
    plan.conflicts.push({ path: dir.path, winner: localLoses ? 'remote' : 'local', conflictPath: copyPath })
    const moved = (e: ShareEntry): string => `${copyPath}${e.path.slice(dir.path.length)}`
    for (const e of kept) {
      handled.add(e.path)
      produced.set(moved(e), { ...e, path: moved(e) })
      // what the other side holds at the old path: the tombstone comes after it too
      const other = localLoses ? remoteByPath?.get(e.path) : local.get(e.path)
      const gone = movedAway({ ...e, version: mergeVersions(e.version, other?.version ?? {}) }, winner, version)
      if (localLoses) {
        if (!await keepLoser(stripLocal(e as LocalEntry), moved(e))) continue
        // the copy is written (a rename: see pairMoves) before this delete
        deletes.push({ action: 'delete', path: e.path, entry: gone, expect: e as LocalEntry })
        continue
      }
      try {
        checkSharePath(moved(e), init.pathLimits)
      } catch (err) {
        plan.errors.push({ path: e.path, error: err as Error })
        continue
      }
      await pullEntry({ ...e, path: moved(e) })
      records.push({ action: 'record', path: e.path, entry: gone, ...(other != null ? { expect: other } : {}) })
    }
    return true
  }
  /** The live entries below `dir` on one side, not older than what the other side holds there (those are the other side's to delete). */
  const keptBelow = (dir: string, localLoses: boolean): ShareEntry[] => {
    const kept: ShareEntry[] = []
    const mine = localLoses ? (localLive ??= [...local.values()].filter(e => e.deleted !== true).sort(byPath)) : remote
    for (const e of below(mine, dir)) {
      if (e.deleted === true) continue
      const other = localLoses ? remoteByPath?.get(e.path) : local.get(e.path)
      const order = other != null ? resolveVersions(e, other) : undefined
      if (order?.kind === 'ordered' && order.winner === 'b') continue
      kept.push(e)
    }
    return kept
  }

  // type changes where a directory gives way to a file or a link, before the entries below them
  for (const r of remote) {
    options.signal?.throwIfAborted()
    const l = local.get(r.path)
    if (l == null || l.deleted === true || r.deleted === true || (l.type === 'dir') === (r.type === 'dir')) continue
    if (handled.has(r.path) || isAtOrBelow(r.path, refused)) continue
    const res = resolveVersions(l, r)
    if (res.kind === 'ordered' && res.winner === 'equal') continue
    const localLoses = res.winner === 'b'
    const loser = localLoses ? stripLocal(l) : r
    const winner = localLoses ? r : stripLocal(l)
    if (loser.type !== 'dir') continue // a file or link that loses: kept as usual (pullEntry)
    remoteByPath ??= new Map(remote.map(e => [e.path, e]))
    const kept = keptBelow(r.path, localLoses)
    // an older directory with nothing new below it is simply replaced
    if (res.kind === 'ordered' && kept.length === 0) continue
    const version = res.kind === 'conflict' ? res.version : winner.version
    const copyPath = res.kind === 'conflict' && res.conflictPath != null ? res.conflictPath : conflictPath(loser.path, loser.modifiedBy, loser.mtime)
    if (!await keepDir(loser, localLoses, kept, winner, version, copyPath)) continue
    if (localLoses) await materialise({ ...r, version }, l)
    else if (res.kind === 'conflict') records.push({ action: 'record', path: r.path, entry: { ...winner, version }, expect: l })
  }

  for (const r of remote) {
    options.signal?.throwIfAborted()
    if (isAtOrBelow(r.path, refused)) {
      plan.errors.push({ path: r.path, error: new PathRejectedError(r.path, 'collision', 'another spelling of this name (case or Unicode normalisation) is already in the share') })
      continue
    }
    if (handled.has(r.path)) continue
    const copy = produced.get(r.path)
    if (copy != null) {
      // the remote's own entry at a copy path this pull fills: only a version it has not seen waits for the next pull
      const order = resolveVersions(copy, r)
      if (order.kind !== 'ordered' || order.winner === 'b') plan.skipped?.push({ path: r.path, reason: 'conflict-copy' })
      continue
    }
    await pullEntry(r)
  }

  await findSources()
  await sortFetches()
  // a late write's source is deleted before it runs: only earlier writes rename
  pairMoves(writes, deletes)
  // parents before children; deletes children first
  mkdirs.sort((a, b) => a.path < b.path ? -1 : 1)
  deletes.sort((a, b) => a.path < b.path ? 1 : -1)
  lateMkdirs.sort((a, b) => a.path < b.path ? -1 : 1)
  plan.steps = [...mkdirs, ...writes, ...deletes, ...lateMkdirs, ...lateWrites, ...records]
  log('planned %d remote entries in %d ms: %d chunks no local file holds, %d of them in the store, looked up %s in %d ms',
    remote.length, Date.now() - started, lookup.chunks, lookup.held, init.hasMany != null ? 'at once' : 'one by one', lookup.ms)
  return plan
}

/**
 * The index entry while a path changes type: the old entry gone at its own
 * version, so the entry that replaces it (newer) still applies if apply
 * stops in between, and nothing new is announced for the old one.
 */
function removedFor (old: LocalEntry): ShareEntry {
  const { local: _local, chunks: _chunks, target: _target, ...rest } = old
  return { ...rest, size: 0, deleted: true }
}

/**
 * The tombstone of a file that moved with its losing directory: after its
 * own version and the conflict's, so every device that still has it there
 * deletes it; computed from shared entries alone, the same on every device.
 */
function movedAway (e: ShareEntry, winner: ShareEntry, conflict: VersionVector): ShareEntry {
  return { path: e.path, type: e.type, size: 0, mtime: winner.mtime, mode: e.mode, version: mergeVersions(e.version, conflict), modifiedBy: winner.modifiedBy, deleted: true }
}

/** Pairs each new file with a deleted local file of the same content: a rename or move, which transfers and copies nothing. */
function pairMoves (writes: PlanStep[], deletes: PlanStep[]): void {
  const contentKey = (e: ShareEntry): string | undefined => {
    if (e.type !== 'file' || e.deleted === true || e.chunks == null || e.chunks.length === 0) return undefined
    return `${e.size}:${e.chunks.map(c => `${cidKey(c.cid)}/${c.length}`).join(',')}`
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

function byPath (a: { path: string }, b: { path: string }): number {
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0
}

/** The entries strictly below `dir` in `sorted` (by path): one contiguous run, found by bisection. */
function below<T extends { path: string }> (sorted: readonly T[], dir: string): T[] {
  const prefix = `${dir}/`
  let lo = 0
  let hi = sorted.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (sorted[mid].path < prefix) lo = mid + 1
    else hi = mid
  }
  const out: T[] = []
  for (let i = lo; i < sorted.length && sorted[i].path.startsWith(prefix); i++) out.push(sorted[i])
  return out
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
  // the usual case, at the cost of the remote entries: no remote spelling (nor a parent of one) collides with another
  // remote one or with one known here; known spellings that collide only among themselves touch no remote entry
  const spellingsOf = local.spellingsOf?.bind(local)
  if (spellingsOf != null) {
    const paths = remote.flatMap(r => r.deleted === true ? [] : [r.path])
    const clash = (path: string): boolean => {
      for (const prefix of pathAndParents(path)) {
        if (spellingsOf(collisionKey(prefix))?.some(known => known !== prefix) === true) return true
      }
      return false
    }
    if (findCollisions(paths).length === 0 && !paths.some(clash)) return new Set()
  } else if (local.keys != null) {
    // every known path is a superset of the live ones: no collision among them (the usual case) means none among the live
    // ones either, found without rebuilding every local entry to see which are live
    const known = new Set(local.keys())
    for (const r of remote) if (r.deleted !== true) known.add(r.path)
    if (findCollisions(known).length === 0) return new Set()
  }
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

/** Is `path` in `paths`, or below one of them? */
function isAtOrBelow (path: string, paths: ReadonlySet<string>): boolean {
  if (paths.size === 0) return false
  if (paths.has(path)) return true
  for (let i = path.indexOf('/'); i !== -1; i = path.indexOf('/', i + 1)) {
    if (paths.has(path.slice(0, i))) return true
  }
  return false
}
