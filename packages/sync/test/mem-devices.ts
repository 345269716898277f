/**
 * Devices over the memory filesystem, wired from the package's parts as
 * share sync wires them (scan → index → snapshot entries → plan → apply),
 * without a network: a pull reads the other device's entries and chunks
 * directly. History is a list of what apply asked to keep.
 */
import assert from 'node:assert/strict'
import {
  applyPlan, entryFromScan, MemoryFs, planPull, scanShare, tombstoneFromScan,
  type ApplyPlanInit, type ApplyResult, type LocalEntry, type PlannedConflict, type PlanStep, type PullPlan, type ShareEntry
} from '../src/index.js'
import { fixedChunker } from './helpers.js'
import type { CID } from 'multiformats/cid'

export const ROOT = '/share'

export class MemDevice {
  readonly fs = new MemoryFs()
  readonly index = new Map<string, LocalEntry>()
  /** Chunks fetched into this device's block store. */
  readonly store = new Map<string, Uint8Array>()
  readonly chunkFile = fixedChunker(this.fs, 8)
  /** `reason path` of every version apply handed to history. */
  readonly kept: string[] = []
  conflicts: PlannedConflict[] = []
  /** Per device: the entries (JSON) of its head once a pull applied it whole, as share sync marks a head applied. */
  readonly applied = new Map<string, string>()
  /** Paths the last pull's plan left for a later pull. */
  skipped: string[] = []

  constructor (readonly id: string) {}

  async init (): Promise<this> {
    await this.fs.mkdir(ROOT, 0o755)
    return this
  }

  async scan (): Promise<LocalEntry[]> {
    const changes: LocalEntry[] = []
    for await (const r of scanShare({ fs: this.fs, root: ROOT, chunkFile: this.chunkFile, previous: this.index })) {
      if (r.kind === 'entry') {
        const next = entryFromScan(this.index.get(r.entry.path), r.entry, this.id)
        if (next != null) changes.push(next)
      } else if (r.kind === 'deleted') {
        changes.push(tombstoneFromScan(this.index.get(r.path) as LocalEntry, this.id, Date.UTC(2024, 5, 1)))
      } else {
        assert.fail(`scan error ${r.path}: ${r.error.message}`)
      }
    }
    for (const e of changes) this.index.set(e.path, e)
    return changes
  }

  entries (): ShareEntry[] {
    return [...this.index.values()].map(({ local: _l, ...e }) => e)
  }

  serve (cid: CID): Uint8Array | undefined {
    return this.chunkFile.blocks.get(cid.toString()) ?? this.store.get(cid.toString())
  }

  /** Pulls `from`'s snapshot (only the steps `cut` leaves: apply stopped there); the plan's and apply's errors as `path: message`. */
  async pull (from: MemDevice, cut?: (steps: PlanStep[]) => PlanStep[]): Promise<string[]> {
    const plan = await planPull({ local: this.index, remote: from.entries(), has: (cid) => this.store.has(cid.toString()) })
    this.conflicts = plan.conflicts
    this.skipped = (plan.skipped ?? []).map(s => s.path)
    if (cut != null) plan.steps = cut(plan.steps)
    const result = await applyFrom(plan, {
      fs: this.fs,
      root: ROOT,
      store: this.store,
      peers: [from],
      kept: this.kept,
      onApplied: async (entries) => { for (const e of entries) this.index.set(e.path, e) }
    })
    return [...plan.errors, ...result.errors].map(e => `${e.path}: ${e.error.message}`)
  }

  /**
   * A pull as share sync does it: a head equal to ours or applied already is
   * not pulled again; a pull marks the head applied only when it failed on
   * nothing and left no entry for later.
   */
  async pullHead (from: MemDevice): Promise<string[]> {
    const head = JSON.stringify(from.entries().sort(byPath))
    if (head === JSON.stringify(this.entries().sort(byPath)) || this.applied.get(from.id) === head) return []
    const errors = await this.pull(from)
    if (errors.length === 0 && this.skipped.length === 0) this.applied.set(from.id, head)
    return errors
  }

  /** path → `dir`, `-> target` or the file's text: the whole share. */
  async tree (): Promise<Record<string, string>> {
    const out: Record<string, string> = {}
    const stack = ['']
    while (stack.length > 0) {
      const dir = stack.pop() as string
      for (const name of (await this.fs.readdir(`${ROOT}${dir === '' ? '' : `/${dir}`}`)).sort()) {
        const path = dir === '' ? name : `${dir}/${name}`
        const s = await this.fs.lstat(`${ROOT}/${path}`)
        if (s.type === 'dir') {
          out[path] = 'dir'
          stack.push(path)
        } else if (s.type === 'symlink') {
          out[path] = `-> ${await this.fs.readlink(`${ROOT}/${path}`)}`
        } else {
          out[path] = new TextDecoder().decode(this.fs.readFile(`${ROOT}/${path}`))
        }
      }
    }
    return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a < b ? -1 : 1))
  }

  /** Live paths of the index with their type: what the device would announce. */
  live (): Record<string, string> {
    const out: Record<string, string> = {}
    for (const e of [...this.index.values()].sort((a, b) => a.path < b.path ? -1 : 1)) {
      if (e.deleted !== true) out[e.path] = e.type
    }
    return out
  }

  write (path: string, data: string, mtimeMs?: number): void {
    this.fs.writeFile(`${ROOT}/${path}`, data, mtimeMs != null ? { mtimeMs } : {})
  }

  /** A type change by the user: `path` removed, `files` written (in its place), then scanned; the scan's changes. */
  async replace (path: string, files: Record<string, string>): Promise<LocalEntry[]> {
    await this.remove(path)
    for (const [p, data] of Object.entries(files)) this.write(p, data)
    return this.scan()
  }

  /** Removes a path and everything below it (the user's `rm -r`). */
  async remove (path: string): Promise<void> {
    const abs = `${ROOT}/${path}`
    const s = await this.fs.lstat(abs)
    if (s.type === 'dir') {
      for (const name of await this.fs.readdir(abs)) await this.remove(`${path}/${name}`)
      await this.fs.rmdir(abs)
    } else {
      await this.fs.unlink(abs)
    }
  }
}

/** Where a test device's pull gets its chunks: a peer's files and block store, read directly. */
export interface ChunkPeer {
  serve: (cid: CID) => Uint8Array | undefined
}

export interface ApplyFromInit {
  fs: ApplyPlanInit['fs']
  root: string
  /** The device's block store: read by apply, filled by the fetcher. */
  store: Map<string, Uint8Array>
  /** A chunk comes from the first of these that serves it. */
  peers: ChunkPeer[]
  /** When given, `reason path` of every version apply hands to history. */
  kept?: string[]
  onFetched?: (bytes: Uint8Array) => void
  onApplied: ApplyPlanInit['onApplied']
}

/** `applyPlan` wired as the test devices wire it (no network, no free-space floor). */
export async function applyFrom (plan: PullPlan, init: ApplyFromInit): Promise<ApplyResult> {
  const { store, peers, kept } = init
  return applyPlan(plan, {
    fs: init.fs,
    root: init.root,
    minFreeFraction: 0,
    reader: { get: async (cid) => store.get(cid.toString()) },
    fetcher: {
      fetch: async (cids) => {
        for (const cid of cids) {
          const bytes = peers.map(p => p.serve(cid)).find(x => x != null)
          if (bytes == null) continue
          init.onFetched?.(bytes)
          store.set(cid.toString(), bytes)
        }
      }
    },
    beforeReplace: kept == null ? undefined : async (old, next) => { kept.push(`${next.deleted === true ? 'deleted' : 'replaced'} ${old.path}`) },
    onApplied: init.onApplied
  })
}

/**
 * Every device pulls every other's head (`pullHead`: a head applied already
 * is not pulled again), in order, until no scan finds a change and all hold
 * the same entries (at most `rounds`); every error seen.
 */
export async function converge (devices: MemDevice[], rounds = 4): Promise<string[]> {
  const errors: string[] = []
  for (let i = 0; i < rounds; i++) {
    for (const to of devices) {
      for (const from of devices) if (from !== to) errors.push(...await to.pullHead(from))
    }
    const changed = []
    for (const d of devices) changed.push(...await d.scan())
    const entries = devices.map(d => JSON.stringify(d.entries().sort(byPath)))
    if (changed.length === 0 && entries.every(e => e === entries[0])) break
  }
  return errors
}

function byPath (x: ShareEntry, y: ShareEntry): number {
  return x.path < y.path ? -1 : 1
}
