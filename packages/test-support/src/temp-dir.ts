import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** A fresh folder under the OS temp folder; remove it with `removeDir`. */
export async function tempDir (prefix = 'homecloud-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix))
}

/** Removes `dir` and everything in it; a folder that is gone already is fine. */
export async function removeDir (dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true })
}

/**
 * Runs `fn` in a fresh temp folder and removes the folder afterwards, also when `fn` throws:
 * the test's `tempDir` / `try` / `finally { removeDir }` in one call. Returns what `fn` returns.
 * When `fn` throws, its error is the one that propagates (a failed removal would hide why the
 * test failed); after a success, a failed removal rejects.
 */
export async function inTempDir<T> (fn: (dir: string) => Promise<T>, prefix?: string): Promise<T> {
  const dir = await tempDir(prefix)
  let result: T
  try {
    result = await fn(dir)
  } catch (err) {
    await removeDir(dir).catch(() => {})
    throw err
  }
  await removeDir(dir)
  return result
}
