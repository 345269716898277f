import { constants as C } from 'node:fs'
import * as fsp from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { statMs, type FileStamp } from '@homecloud/store'

export type FsEntryType = 'file' | 'dir' | 'symlink' | 'other'

/** What `lstat` reports: never the target of a symlink. */
export interface FsStat {
  type: FsEntryType
  size: number
  /** Fractional milliseconds, as the filesystem keeps them. */
  mtimeMs: number
  /** Permission bits (`& 0o7777`). */
  mode: number
  ino: number
}

export interface FsSpace {
  totalBytes: number
  /** Bytes an unprivileged writer may still use. */
  freeBytes: number
}

export interface FsReadHandle {
  /** Reads up to `buf.length` bytes at `position`; the count read (0 at the end). */
  read(buf: Uint8Array, position: number): Promise<number>
  close(): Promise<void>
}

/** An fstat of an open file: the fields apply keeps, and the store index's stamp (nanosecond mtime, device). */
export interface FsFileStat extends Pick<FsStat, 'size' | 'mtimeMs' | 'ino'> {
  stamp: FileStamp
}

export interface FsWriteHandle {
  /** fstat of the open file (a fake may leave it out: `lstat` of the path instead). */
  stat?(): Promise<FsFileStat>
  write(bytes: Uint8Array, position: number): Promise<void>
  /** Writes `pieces` one after another from `position` in one call (a chunk that arrived in pieces); else one `write` each. */
  writev?(pieces: Uint8Array[], position: number): Promise<void>
  chmod(mode: number): Promise<void>
  /** Sets the modification (and access) time, in milliseconds. */
  utimes(mtimeMs: number): Promise<void>
  /** Cuts (or extends with zeros) the file to `size` bytes. */
  truncate(size: number): Promise<void>
  /** fsync: the bytes are on the disk when it resolves. */
  sync(): Promise<void>
  close(): Promise<void>
}

/**
 * The filesystem operations sync uses, and no others, so the scanner and
 * apply run over a fake in unit tests. Paths are absolute and `/`-separated.
 * Errors carry Node's `code` (`ENOENT`, `ENOSPC`, `ELOOP`, …).
 */
export interface ShareFs {
  lstat(path: string): Promise<FsStat>
  /** Names in a directory, unsorted, without `.` and `..`. */
  readdir(path: string): Promise<string[]>
  /** Opens a file for reading; fails with ELOOP if `path` itself is a symlink. */
  openRead(path: string): Promise<FsReadHandle>
  /** Creates a new file (fails with EEXIST if anything is there, never follows a symlink). */
  createExclusive(path: string, mode: number): Promise<FsWriteHandle>
  rename(from: string, to: string): Promise<void>
  /** fsync of a directory: its entries (a rename) are on the disk when it resolves. */
  fsyncDir(path: string): Promise<void>
  unlink(path: string): Promise<void>
  rmdir(path: string): Promise<void>
  mkdir(path: string, mode: number): Promise<void>
  symlink(target: string, path: string): Promise<void>
  readlink(path: string): Promise<string>
  statfs(path: string): Promise<FsSpace>
}

/** What apply uses on top of `ShareFs`: reopening its temp files and kernel copies. */
export interface ShareWriteFs extends ShareFs {
  /** Opens an existing file for writing (never through a symlink at `path`). */
  openWrite(path: string): Promise<FsWriteHandle>
  /**
   * Creates `to` (EEXIST if anything is there) holding the bytes of the file
   * `from`, copied by the kernel: a reflink where the filesystem can, else
   * copy_file_range; no byte passes through user space.
   */
  copyFile(from: string, to: string): Promise<void>
  /** A hard link `path` (EEXIST if anything is there) to the file `existing` (a fake may leave it out: apply then renames without one). */
  link?(existing: string, path: string): Promise<void>
}

/** Error code of a Node-style filesystem error, if any. */
export function fsErrorCode (err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

function typeOf (s: { isFile(): boolean, isDirectory(): boolean, isSymbolicLink(): boolean }): FsEntryType {
  if (s.isFile()) return 'file'
  if (s.isDirectory()) return 'dir'
  if (s.isSymbolicLink()) return 'symlink'
  return 'other'
}

class NodeReadHandle implements FsReadHandle {
  constructor (private readonly handle: FileHandle) {}

  async read (buf: Uint8Array, position: number): Promise<number> {
    const { bytesRead } = await this.handle.read(buf, 0, buf.byteLength, position)
    return bytesRead
  }

  async close (): Promise<void> { await this.handle.close() }
}

class NodeWriteHandle implements FsWriteHandle {
  constructor (private readonly handle: FileHandle) {}

  async stat (): Promise<FsFileStat> {
    const { size, mtimeNs, ino, dev } = await this.handle.stat({ bigint: true })
    return { size: Number(size), mtimeMs: statMs(mtimeNs), ino: Number(ino), stamp: { size, mtimeNs, ino, dev } }
  }

  async write (bytes: Uint8Array, position: number): Promise<void> {
    let done = 0
    while (done < bytes.byteLength) {
      const { bytesWritten } = await this.handle.write(bytes, done, bytes.byteLength - done, position + done)
      done += bytesWritten
    }
  }

  async writev (pieces: Uint8Array[], position: number): Promise<void> {
    const total = pieces.reduce((n, p) => n + p.byteLength, 0)
    const { bytesWritten } = await this.handle.writev(pieces, position)
    if (bytesWritten >= total) return
    // a short writev (rare): the rest joined, from where it stopped
    const rest = Buffer.concat(pieces).subarray(bytesWritten)
    await this.write(rest, position + bytesWritten)
  }

  async chmod (mode: number): Promise<void> { await this.handle.chmod(mode) }
  async utimes (mtimeMs: number): Promise<void> { await this.handle.utimes(new Date(mtimeMs), new Date(mtimeMs)) }
  async truncate (size: number): Promise<void> { await this.handle.truncate(size) }
  async sync (): Promise<void> { await this.handle.sync() }
  async close (): Promise<void> { await this.handle.close() }
}

/** The real filesystem (node:fs). */
export const nodeFs: ShareWriteFs = {
  async lstat (path) {
    const s = await fsp.lstat(path)
    return { type: typeOf(s), size: s.size, mtimeMs: s.mtimeMs, mode: s.mode & 0o7777, ino: s.ino }
  },
  async readdir (path) { return fsp.readdir(path) },
  async openRead (path) {
    return new NodeReadHandle(await fsp.open(path, C.O_RDONLY | C.O_NOFOLLOW))
  },
  async createExclusive (path, mode) {
    return new NodeWriteHandle(await fsp.open(path, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, mode))
  },
  async openWrite (path) {
    return new NodeWriteHandle(await fsp.open(path, C.O_WRONLY | C.O_NOFOLLOW))
  },
  async copyFile (from, to) { await fsp.copyFile(from, to, C.COPYFILE_EXCL | C.COPYFILE_FICLONE) },
  async link (existing, path) { await fsp.link(existing, path) },
  async rename (from, to) { await fsp.rename(from, to) },
  async fsyncDir (path) {
    const handle = await fsp.open(path, C.O_RDONLY | C.O_DIRECTORY)
    try {
      await handle.sync()
    } finally {
      await handle.close()
    }
  },
  async unlink (path) { await fsp.unlink(path) },
  async rmdir (path) { await fsp.rmdir(path) },
  async mkdir (path, mode) { await fsp.mkdir(path, { mode }) },
  async symlink (target, path) { await fsp.symlink(target, path) },
  async readlink (path) { return fsp.readlink(path) },
  async statfs (path) {
    const s = await fsp.statfs(path)
    return { totalBytes: s.blocks * s.bsize, freeBytes: s.bavail * s.bsize }
  }
}
