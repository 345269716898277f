/**
 * One daemon per repo: `<repo>/lock` is created exclusively and holds the pid.
 * A lock left by a dead process is taken over; a live one is refused.
 */
import { open, readFile, unlink } from 'node:fs/promises'
import { RepoError } from '@homecloud/interface'
import type { RepoPaths } from './repo.js'

export interface RepoLock {
  readonly path: string
  release(): Promise<void>
}

export async function lockRepo (paths: Pick<RepoPaths, 'root' | 'lock'>, pid = process.pid): Promise<RepoLock> {
  // two attempts: the second one after removing a stale lock
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(paths.lock, 'wx', 0o600)
      try {
        await handle.writeFile(`${pid}\n`)
      } finally {
        await handle.close()
      }
      return createLock(paths.lock, pid)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new RepoError(`cannot create lock ${paths.lock}: ${(err as Error).message}`, { cause: err })
      }
    }
    const holder = await readLockPid(paths.lock)
    if (holder !== undefined && isAlive(holder)) {
      throw new RepoError(`repo ${paths.root} is in use by process ${holder} (another homecloud daemon?); if not, remove ${paths.lock}`)
    }
    // Stale: its process is gone. A second daemon racing for the same stale
    // lock may remove the winner's new lock; both then race on 'wx' again.
    await unlink(paths.lock).catch(() => {})
  }
  throw new RepoError(`repo ${paths.root} is being locked by another process; try again`)
}

function createLock (path: string, pid: number): RepoLock {
  let released = false
  return {
    path,
    async release (): Promise<void> {
      if (released) {
        return
      }
      released = true
      // never remove a lock another process took over
      if (await readLockPid(path) === pid) {
        await unlink(path).catch(() => {})
      }
    }
  }
}

async function readLockPid (path: string): Promise<number | undefined> {
  const text = await readFile(path, 'utf8').catch(() => '')
  const pid = Number(text.trim())
  return Number.isInteger(pid) && pid > 0 ? pid : undefined
}

/** Signal 0 probes a process without touching it; EPERM means it exists under another user. */
export function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
