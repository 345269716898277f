import { HAS_MANY_FILE_CHECKS } from './constants.js'
import { eachLimit } from './each-limit.js'
import { isUnchanged } from './file-source.js'
import type { FileReads } from './file-reads.js'
import type { FileLocation, StoreIndex } from './store-index.js'
import type { AbortOptions } from '@homecloud/interface'

export interface HasManyContext {
  index: StoreIndex
  reads: FileReads
  /** Forgets a file that changed under the index (it needs a rescan). */
  forget(path: string): Promise<unknown>
}

/**
 * `has` of every block key, in order, with the same checks: in the block
 * store, or at a place in an indexed file that is unchanged since it was
 * indexed (a changed file is forgotten). One block store lookup for all the
 * keys, the cached places first, then one ordered pass over the index for
 * the rest; each file is compared with its record once, not once per chunk
 * (a 1 GiB file is ~3,400 chunks and one lstat).
 */
export async function hasMany (ctx: HasManyContext, keys: readonly string[], options: AbortOptions = {}): Promise<boolean[]> {
  const { index, reads } = ctx
  const generation = reads.generation
  const found = await index.hasBlocks(keys)
  const checks = new Map<string, Promise<boolean>>()
  /** Is the file at `path` as indexed? Asked once per file however many of its chunks are looked up. */
  const unchanged = async (path: string): Promise<boolean> => {
    let check = checks.get(path)
    if (check === undefined) {
      check = (async () => {
        const file = reads.record(path) ?? await index.getFile(path)
        return file != null && await isUnchanged(file)
      })()
      checks.set(path, check)
    }
    return check
  }

  // a place cached for serving (a file just indexed or being read) needs no index pass
  const cached: number[] = []
  keys.forEach((key, i) => { if (!found[i] && reads.location(key) !== undefined) cached.push(i) })
  await eachLimit(cached, HAS_MANY_FILE_CHECKS, async i => {
    options.signal?.throwIfAborted()
    const place = reads.location(keys[i])
    if (place !== undefined && await unchanged(place.path)) found[i] = true
  })

  const rest: number[] = []
  keys.forEach((_, i) => { if (!found[i]) rest.push(i) })
  options.signal?.throwIfAborted()
  const places = await index.locationsOf(rest.map(i => keys[i]))
  const changed = new Set<string>()
  // each key's places in order, as `has` walks them: a file past the first unchanged one is not checked
  await eachLimit(rest.map((i, j): [number, FileLocation[]] => [i, places[j]]), HAS_MANY_FILE_CHECKS, async ([i, at]) => {
    options.signal?.throwIfAborted()
    for (const place of at) {
      if (await unchanged(place.path)) {
        found[i] = true
        return
      }
      changed.add(place.path)
    }
  })
  // a check that raced a change of the index proves nothing about the file as indexed now
  if (generation === reads.generation) {
    for (const path of changed) await ctx.forget(path)
  }
  return found
}

