import { constants } from 'node:fs'
import { lstat, open, type FileHandle } from 'node:fs/promises'
import { FileChangedError } from './errors.js'
import type { FileRecord } from './store-index.js'
import type { BigIntStats } from 'node:fs'

/** What identifies a file's content version cheaply. */
export function fileRecord (path: string, st: Pick<BigIntStats, 'size' | 'mtimeNs' | 'ino' | 'dev'>): FileRecord {
  return { path, size: Number(st.size), mtimeNs: st.mtimeNs.toString(), ino: st.ino.toString(), dev: st.dev.toString() }
}

/**
 * A nanosecond timestamp as the float `fs.stat` reports in `mtimeMs`
 * (seconds × 1e3 + nanoseconds / 1e6, from the floored seconds), so it
 * compares equal with a plain stat of the same file.
 */
export function statMs (ns: bigint): number {
  let sec = ns / 1_000_000_000n
  let nsec = ns % 1_000_000_000n
  if (nsec < 0n) {
    sec -= 1n
    nsec += 1_000_000_000n
  }
  return Number(sec) * 1e3 + Number(nsec) / 1e6
}

/** Is `st` still the file recorded in `file`? */
export function sameFile (file: FileRecord, st: BigIntStats): boolean {
  return st.isFile() && st.size === BigInt(file.size) && st.mtimeNs.toString() === file.mtimeNs &&
    st.ino.toString() === file.ino && st.dev.toString() === file.dev
}

/**
 * Flags to open a file for reading without following a symlink in its last
 * component. Non-blocking, so a fifo put where a file was does not hang the
 * open (regular files ignore it).
 */
export const OPEN_NO_FOLLOW = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK

/** Opens a file with `OPEN_NO_FOLLOW`. */
export async function openNoFollow (path: string): Promise<FileHandle> {
  return open(path, OPEN_NO_FOLLOW)
}

const GONE = new Set(['ENOENT', 'ENOTDIR', 'ELOOP', 'EACCES', 'EPERM', 'EISDIR'])

function isGone (err: unknown): boolean {
  return GONE.has((err as { code?: string }).code ?? '')
}

/** Cheap check (no read) that an indexed file is unchanged. */
export async function isUnchanged (file: FileRecord): Promise<boolean> {
  try {
    return sameFile(file, await lstat(file.path, { bigint: true }))
  } catch (err) {
    if (isGone(err)) return false
    throw err
  }
}

/** Opens an indexed file, not yet compared with its record; a FileChangedError when it is gone. */
export async function openIndexedPath (path: string): Promise<FileHandle | FileChangedError> {
  try {
    return await openNoFollow(path)
  } catch (err) {
    if (isGone(err)) return new FileChangedError(path, `file ${path} is gone`, { cause: err })
    throw err
  }
}

/** Opens an indexed file if it is unchanged; a FileChangedError when it changed or is gone. */
export async function openIndexedFile (file: FileRecord): Promise<FileHandle | FileChangedError> {
  const handle = await openIndexedPath(file.path)
  if (handle instanceof FileChangedError) return handle
  try {
    if (sameFile(file, await handle.stat({ bigint: true }))) return handle
  } catch (err) {
    await handle.close()
    throw err
  }
  await handle.close()
  return new FileChangedError(file.path)
}

/** Reads exactly `length` bytes at `offset`; a FileChangedError if the file is shorter. */
export async function readRange (handle: FileHandle, path: string, offset: number, length: number): Promise<Uint8Array | FileChangedError> {
  // not zero-filled first (every byte is read over), and a plain Uint8Array of its own ArrayBuffer
  const bytes = new Uint8Array(Buffer.allocUnsafeSlow(length).buffer, 0, length)
  let done = 0
  while (done < length) {
    const { bytesRead } = await handle.read(bytes, done, length - done, offset + done)
    if (bytesRead === 0) return new FileChangedError(path, `file ${path} is shorter than indexed`)
    done += bytesRead
  }
  return bytes
}
