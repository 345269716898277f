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
