/**
 * Receive-only revert: the plan that puts back the members' version of
 * every local change. It is a pull plan (plan.ts) against a view of the
 * index where each local change is older than the members' entry at its
 * path (a local addition: older than its own tombstone), so a revert takes
 * the same steps as a pull, type changes included: the entry of another
 * type is removed first (a directory only once empty: files the index
 * never knew stay, and the step fails naming them), then what the members
 * have is put back.
 */
import { compareVersions } from './version-vector.js'
import { planPull, type LocalIndexView, type PlanInit, type PlanStep, type PullPlan } from './plan.js'
import type { LocalEntry, ShareEntry } from './entry.js'
import type { AbortOptions } from '@homecloud/interface'

/** The store lookups and chunk locator are the plan's (plan.ts). */
export interface RevertInit extends Pick<PlanInit, 'has' | 'hasMany' | 'locator'> {
  local: LocalIndexView
  /** This device: entries it modified last are its local changes. */
  self: string
  /** The snapshot entries of the members reachable now; per path the newest is put back. */
  snapshots: Iterable<Iterable<ShareEntry>>
}

export interface RevertPlan {
  plan: PullPlan
  /** The local changes being reverted. */
  changed: string[]
  /** Local additions no member has: the index forgets them once they are removed (no tombstone). */
  forget: Set<string>
}

/** The plan that reverts every local change of `init.local` to the newest entry among `init.snapshots`. */
export async function planRevert (init: RevertInit, options: AbortOptions = {}): Promise<RevertPlan> {
  const best = new Map<string, ShareEntry>()
  for (const entries of init.snapshots) {
    for (const e of entries) {
      const have = best.get(e.path)
      if (have == null || compareVersions(e.version, have.version) === 'greater') best.set(e.path, e)
    }
  }
  const all = [...init.local.values()]
  const changed = all.filter(e => e.modifiedBy === init.self).map(e => e.path)
  const forget = new Set<string>()
  if (changed.length === 0) return { plan: { steps: [], fetch: [], bytesToFetch: 0, bytesLocal: 0, conflicts: [], errors: [] }, changed, forget }

  // a changed directory the members hold as a file or a link goes whole: what is below it is reverted with it
  const replaced = new Set(changed.filter(p => init.local.get(p)?.type === 'dir' && isNonDir(best.get(p))))
  const paths = new Set(changed)
  if (replaced.size > 0) {
    for (const e of all) if (e.deleted !== true && hasAncestorIn(e.path, replaced)) paths.add(e.path)
  }

  /** The entry the plan sees for each reverted path (older than the members'), and back to the index's. */
  const shown = new Map<string, LocalEntry>()
  const real = new Map<LocalEntry, LocalEntry>()
  const remote: ShareEntry[] = []
  for (const path of paths) {
    const entry = init.local.get(path)
    if (entry == null) continue
    const older: LocalEntry = { ...entry, version: {} }
    shown.set(path, older)
    real.set(older, entry)
    const theirs = best.get(path)
    if (theirs != null) {
      remote.push(theirs)
    } else {
      forget.add(path)
      const { local: _local, chunks: _chunks, target: _target, ...rest } = entry
      remote.push({ ...rest, size: 0, deleted: true })
    }
  }
  const view: LocalIndexView = {
    get: (path) => shown.get(path) ?? init.local.get(path),
    values: () => all.map(e => shown.get(e.path) ?? e)
  }
  const { local: _local, self: _self, snapshots: _snapshots, ...lookups } = init
  const plan = await planPull({ ...lookups, local: view, remote }, options)
  plan.steps = plan.steps.map(step => restore(step, real))
  return { plan, changed, forget }
}

/** A step as it applies to the index's own entries (their versions, for history and for what apply records). */
function restore (step: PlanStep, real: Map<LocalEntry, LocalEntry>): PlanStep {
  const expect = step.expect != null ? real.get(step.expect) ?? step.expect : undefined
  if (step.action === 'delete' && expect != null) {
    // the removal of an entry of another type (plan.ts removedFor) keeps the local version: revert makes no new one
    const entry = step.entry.deleted === true && Object.keys(step.entry.version).length === 0 ? { ...step.entry, version: expect.version } : step.entry
    return { ...step, entry, expect }
  }
  if (step.action === 'write-file' && step.moveFrom != null) {
    const from = real.get(step.moveFrom.expect) ?? step.moveFrom.expect
    return { ...step, expect, moveFrom: { ...step.moveFrom, expect: from } }
  }
  return { ...step, expect } as PlanStep
}

function isNonDir (e: ShareEntry | undefined): boolean {
  return e != null && e.deleted !== true && e.type !== 'dir'
}

function hasAncestorIn (path: string, dirs: ReadonlySet<string>): boolean {
  for (let i = path.indexOf('/'); i !== -1; i = path.indexOf('/', i + 1)) {
    if (dirs.has(path.slice(0, i))) return true
  }
  return false
}
