/**
 * Pulls whose apply is still running, and the paths each one touches. A
 * share's next pull may plan and apply beside them (a newer head of the
 * same member, published while a big file was still hashing, starts on the
 * big file while the small files of the head before are written), but only
 * for entries no running pull touches: the same path, a directory one of
 * them writes into, or anything below a path one of them removes or makes.
 * Those entries wait for the next pull. Scans and other share tasks wait for
 * every run to end, so a scan never sees a file before the index records it.
 */
import type { FsStat } from './fs.js'
import type { ShareEntry } from './entry.js'
import type { PullPlan } from './plan.js'

/** Pulls applying at once in one share: each holds its batches' temp files and fetches. */
export const MAX_PULL_RUNS = 2

interface Run {
  /** What is pulled (a member's head). */
  key: string
  /** Paths the run writes, deletes or records (a move's source too). */
  paths: Set<string>
  /** Every parent directory of those paths. */
  parents: Set<string>
  /** Paths the run deletes or replaces: nothing below them may be written meanwhile. */
  removed: Set<string>
  /** Directories the run makes: written into only once they exist. */
  made: Set<string>
  done: Promise<void>
}

export class PullRuns {
  readonly #runs = new Set<Run>()

  get size (): number {
    return this.#runs.size
  }

  /** Is a pull of `key` applying? */
  has (key: string): boolean {
    return [...this.#runs].some(r => r.key === key)
  }

  /** Tracks the apply of `plan` (a pull of `key`) until `done` settles; resolves once it is no longer tracked. */
  async add (key: string, plan: PullPlan, done: Promise<unknown>): Promise<void> {
    const run: Run = { key, paths: new Set(), parents: new Set(), removed: new Set(), made: new Set(), done: Promise.resolve() }
    for (const step of plan.steps) {
      run.paths.add(step.path)
      if (step.action === 'delete' || (step.expect != null && step.expect.deleted !== true && step.expect.type !== step.entry.type)) run.removed.add(step.path)
      if (step.action === 'mkdir') run.made.add(step.path)
      if (step.action === 'write-file' && step.moveFrom != null) {
        run.paths.add(step.moveFrom.expect.path)
        run.removed.add(step.moveFrom.expect.path)
      }
    }
    for (const path of run.paths) for (const parent of parentsOf(path)) run.parents.add(parent)
    run.done = done.then(() => {}, () => {}).finally(() => { this.#runs.delete(run) })
    this.#runs.add(run)
    await run.done
  }

  /**
   * The entries of a remote snapshot no running pull touches (`free`), and
   * the others (`held`). `lstat` tells whether a directory a run makes is
   * there yet (`dir` is the share's absolute path).
   */
  async split (entries: ShareEntry[], lstat: (path: string) => Promise<FsStat | undefined>): Promise<{ free: ShareEntry[], held: ShareEntry[] }> {
    if (this.#runs.size === 0) return { free: entries, held: [] }
    const made = new Map<string, boolean>()
    const isMade = async (dir: string): Promise<boolean> => {
      let yes = made.get(dir)
      if (yes === undefined) {
        yes = (await lstat(dir))?.type === 'dir'
        made.set(dir, yes)
      }
      return yes
    }
    const free: ShareEntry[] = []
    const held: ShareEntry[] = []
    for (const e of entries) {
      (await this.#touched(e.path, isMade) ? held : free).push(e)
    }
    return { free, held }
  }

  /** Resolves once every run has ended. */
  async idle (): Promise<void> {
    while (this.#runs.size > 0) await Promise.all([...this.#runs].map(async r => r.done))
  }

  /** Resolves once fewer than `max` runs are going. */
  async slot (max = MAX_PULL_RUNS): Promise<void> {
    while (this.#runs.size >= max) await Promise.race([...this.#runs].map(async r => r.done))
  }

  async #touched (path: string, isMade: (dir: string) => Promise<boolean>): Promise<boolean> {
    for (const run of this.#runs) {
      if (run.paths.has(path) || run.parents.has(path)) return true
      for (const parent of parentsOf(path)) {
        if (run.removed.has(parent)) return true
        if (run.made.has(parent) && !await isMade(parent)) return true
      }
    }
    return false
  }
}

/** 'a/b/c' → 'a', 'a/b'. */
function parentsOf (path: string): string[] {
  const out: string[] = []
  for (let i = path.indexOf('/'); i !== -1; i = path.indexOf('/', i + 1)) out.push(path.slice(0, i))
  return out
}
