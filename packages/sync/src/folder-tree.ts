/**
 * A folder as a map of path → content hash (`dir` for a directory, `-> target` for a link), so
 * folders are compared by their bytes, not by what a daemon says: the demo waits on it, and so do
 * the share tests of every package. Home Cloud's own names (`INTERNAL_PREFIX`: temp files of
 * writes in progress, the ignore file) are left out.
 */
import { createHash } from 'node:crypto'
import { lstat, readFile, readdir, readlink } from 'node:fs/promises'
import { join } from 'node:path'
import { INTERNAL_PREFIX } from './constants.js'

export type FolderTree = Record<string, string>

/** The tree under `root`, sorted by path; a folder that cannot be read counts as empty. */
export async function folderTree (root: string): Promise<FolderTree> {
  const out: FolderTree = {}
  const stack = ['']
  while (stack.length > 0) {
    const dir = stack.pop() as string
    const names = await readdir(join(root, dir)).catch(() => [])
    for (const name of names) {
      if (name.startsWith(INTERNAL_PREFIX)) continue
      const path = dir === '' ? name : `${dir}/${name}`
      const st = await lstat(join(root, path)).catch(() => undefined)
      if (st === undefined) continue
      if (st.isSymbolicLink()) {
        out[path] = `-> ${await readlink(join(root, path))}`
      } else if (st.isDirectory()) {
        out[path] = 'dir'
        stack.push(path)
      } else {
        // a file replaced while it is read hashes as something no other folder holds
        out[path] = createHash('sha256').update(await readFile(join(root, path)).catch(() => Buffer.from(`vanished ${path}`))).digest('hex')
      }
    }
  }
  return Object.fromEntries(Object.entries(out).sort(([x], [y]) => x < y ? -1 : 1))
}

/** Do all the folders hold the same tree? */
export async function sameFolders (roots: readonly string[]): Promise<boolean> {
  const trees = await Promise.all(roots.map(async (root) => JSON.stringify(await folderTree(root))))
  return trees.every((t) => t === trees[0])
}
