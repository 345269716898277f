/**
 * A folder as a map of path → content hash (`dir` for a directory, `-> target` for a link),
 * so lab tests compare the trees of devices by their bytes, not by what a daemon says. Home
 * Cloud's own `.homecloud*` names (temp files of writes in progress, the ignore file) are left
 * out. The same shape as the CLI's `folderTree` (apps/homecloud), which this package cannot import.
 */
import { createHash } from 'node:crypto'
import { lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'

export type FolderTree = Record<string, string>

export function folderTree (root: string): FolderTree {
  const out: FolderTree = {}
  const stack = ['']
  while (stack.length > 0) {
    const dir = stack.pop() as string
    let names: string[]
    try {
      names = readdirSync(join(root, dir))
    } catch {
      continue
    }
    for (const name of names) {
      if (name.startsWith('.homecloud')) continue
      const path = dir === '' ? name : `${dir}/${name}`
      const full = join(root, path)
      try {
        const st = lstatSync(full)
        if (st.isSymbolicLink()) {
          out[path] = `-> ${readlinkSync(full)}`
        } else if (st.isDirectory()) {
          out[path] = 'dir'
          stack.push(path)
        } else {
          out[path] = createHash('sha256').update(readFileSync(full)).digest('hex')
        }
      } catch {
        // replaced or removed while read (a sync in progress): the next poll sees it settled
        out[path] = `vanished ${path}`
      }
    }
  }
  return Object.fromEntries(Object.entries(out).sort(([x], [y]) => x < y ? -1 : 1))
}

/** Do all the folders hold the same tree? */
export function sameTrees (roots: readonly string[]): boolean {
  const trees = roots.map(root => JSON.stringify(folderTree(root)))
  return trees.every(t => t === trees[0])
}
