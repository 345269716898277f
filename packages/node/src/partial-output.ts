/**
 * The partial output of a `get` (D6, D7): the tree is built under a temporary
 * name next to the output, file chunks written straight to their offsets in
 * the files (never into the block store), and renamed into place at the end.
 * A rerun after a crash finds the same partial output and reuses every chunk
 * that hashes right where it should be.
 */
import { constants } from 'node:fs'
import { chmod, lstat, lutimes, mkdir, open, readlink, symlink, utimes, type FileHandle } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { blockMatches } from '@homecloud/exchange'
import { MAX_BLOCK_SIZE } from '@homecloud/store'
import { logger } from '@libp2p/logger'
import { GET_OPEN_FILES, LOG_SCOPE } from './constants.js'
import { BadDagError, OutputExistsError } from './errors.js'
import type { Block, ChunkSink } from '@homecloud/exchange'
import type { AbortOptions } from '@homecloud/interface'
import type { CID } from 'multiformats/cid'
import type { EntryMeta, TreeEntry } from './unixfs-tree.js'

const log = logger(`${LOG_SCOPE}:get`)

/** Where one chunk goes: a file of the partial tree and an offset (a chunk can occur in several places). */
export interface Placement {
  file: string
  offset: number
  /** Unknown only for a root that is one raw chunk. */
  length?: number
}

/** What happened to a chunk; the partial output reports each as it completes. */
export interface ChunkDone {
  /** Placements filled. */
  places: number
  bytes: number
  /** Already there (verified in place) or copied from the local store, rather than received. */
  reused: boolean
}

export interface PartialOutputInit {
  /** Absolute path of the partial tree's root. */
  root: string
  /** A verified local copy of a chunk, when this device holds one (its store). */
  localCopy(cid: CID, options?: AbortOptions): Promise<Uint8Array | undefined>
  onChunk(done: ChunkDone): void
}

const FILE_FLAGS = constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW

/** Missing files a writer remembers (see `absent`). */
const MAX_ABSENT = 4096

/**
 * Bytes written to a file after which a background datasync starts: the disk
 * writes while chunks still arrive, so the durable step at the end of a get
 * (settleFile) finds little left to flush instead of the whole file (with a
 * big page cache nothing else writes it back before then).
 */
export const SYNC_EVERY_BYTES = 32 * 1024 * 1024

interface OpenFile {
  handle: FileHandle
  users: number
  /** Its size: taken at open, then kept by this writer (the only one), so `holds` needs no fstat. */
  size: number
  /** Bytes written since the last background datasync started. */
  unsynced: number
  /** The background datasync running now, if any (one per file at a time). */
  syncing?: Promise<void>
}

export class PartialOutput {
  readonly root: string
  private readonly init: PartialOutputInit
  private readonly files = new Map<string, OpenFile>()
  private readonly opening = new Map<string, Promise<void>>()
  /**
   * Files found missing and not created since (only this writer creates them):
   * a fresh get checks every chunk before its file exists, one lstat each
   * otherwise. Bounded: forgotten wholesale past MAX_ABSENT.
   */
  private readonly absent = new Set<string>()
  /**
   * The first background datasync failure: Linux reports a writeback error
   * once per open file, so settleFile's own descriptor would not see it.
   */
  private syncFailure: Error | undefined

  constructor (init: PartialOutputInit) {
    this.root = init.root
    this.init = init
  }

  pathOf (entry: Pick<TreeEntry, 'path'>): string {
    return join(this.root, ...entry.path)
  }

  /**
   * Creates a directory, symlink or empty file of the tree, or checks that
   * an earlier run left exactly that kind of entry there. Names were checked
   * by the walk; parents are directories this get created, never symlinks.
   */
  async create (entry: TreeEntry): Promise<void> {
    const path = this.pathOf(entry)
    if (entry.kind === 'directory') {
      await mkdir(path, { mode: 0o755 }).catch(async (err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST' || !(await lstat(path)).isDirectory()) throw this.conflict(path, err)
      })
    } else if (entry.kind === 'symlink') {
      await symlink(entry.target, path).catch(async (err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST' || await readlink(path).catch(() => undefined) !== entry.target) throw this.conflict(path, err)
      })
    } else if (entry.size === 0) {
      await this.use(path, async () => {})
    }
    // other files are created by their first chunk: a get of an unknown CID leaves nothing behind
  }

  private conflict (path: string, cause: Error): Error {
    return new OutputExistsError(`the partial output holds something else at ${path}: remove ${this.root} and get again`, { cause })
  }

  /** Runs `fn` with the open file at `path`, opening it (created if missing, never through a symlink) if needed. */
  async use <T> (path: string, fn: (handle: FileHandle, file: OpenFile) => Promise<T>): Promise<T> {
    const file = await this.acquire(path)
    try {
      return await fn(file.handle, file)
    } finally {
      file.users--
      await this.trim()
    }
  }

  /** The open file at `path` with one more user; taken in the same tick as it is found, so `trim` cannot close it under us. */
  private async acquire (path: string): Promise<OpenFile> {
    for (;;) {
      const file = this.files.get(path)
      if (file !== undefined) {
        file.users++
        return file
      }
      let pending = this.opening.get(path)
      if (pending === undefined) {
        pending = this.openFile(path)
        this.opening.set(path, pending)
      }
      await pending
    }
  }

  private async openFile (path: string): Promise<void> {
    this.absent.delete(path)
    try {
      const handle = await open(path, FILE_FLAGS, 0o644)
      try {
        this.files.set(path, { handle, users: 0, size: (await handle.stat()).size, unsynced: 0 })
      } catch (err) {
        await handle.close()
        throw err
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      throw code === 'ELOOP' || code === 'EISDIR' ? this.conflict(path, err as Error) : err
    } finally {
      this.opening.delete(path)
    }
  }

  /** Closes idle files beyond the cap (oldest first: Map order is insertion order). */
  private async trim (): Promise<void> {
    for (const [path, file] of this.files) {
      if (this.files.size <= GET_OPEN_FILES) return
      if (file.users > 0) continue
      this.files.delete(path)
      await file.handle.close()
    }
  }

  /** Writes a chunk (one array, or the pieces it arrived in: one writev, no join) at its place. */
  async write (placement: Placement, bytes: Block, cid: CID): Promise<void> {
    const length = bytes.byteLength
    if (placement.length !== undefined && length !== placement.length) {
      throw new BadDagError(`chunk ${cid.toString()} has ${length} bytes; the DAG gives it ${placement.length} at ${placement.file}:${placement.offset}`)
    }
    if (this.syncFailure !== undefined) throw this.syncFailure
    await this.use(placement.file, async (handle, file) => {
      const end = placement.offset + length
      let done = 0
      let flat: Uint8Array
      if (bytes instanceof Uint8Array) {
        flat = bytes
      } else {
        done = (await handle.writev([...bytes], placement.offset)).bytesWritten
        // a short writev (rare) goes on from where it stopped, joined
        flat = done < length ? bytes.subarray() : new Uint8Array(0)
      }
      while (done < length) {
        const { bytesWritten } = await handle.write(flat, done, length - done, placement.offset + done)
        done += bytesWritten
      }
      file.size = Math.max(file.size, end)
      // a one-chunk root has no length in the DAG: what arrived is the whole file
      if (placement.length === undefined) {
        await handle.truncate(end)
        file.size = end
      }
      file.unsynced += length
      if (file.unsynced >= SYNC_EVERY_BYTES && file.syncing === undefined) this.syncInBackground(file)
    })
  }

  /**
   * Starts a datasync that nobody awaits: it holds the file open (a user) until
   * it ends. A failure fails the get: the next write and `close` throw it.
   */
  private syncInBackground (file: OpenFile): void {
    file.unsynced = 0
    file.users++
    file.syncing = file.handle.datasync().catch((err: unknown) => {
      log('background datasync failed - %e', err)
      this.syncFailure ??= err instanceof Error ? err : new Error(String(err))
    }).finally(() => {
      file.syncing = undefined
      file.users--
    })
  }

  /** Do the bytes at `placement` already hash to `cid`? (a resumed get) */
  async holds (placement: Placement, cid: CID): Promise<boolean> {
    // past the end of the file (the usual case: a fresh get checks each chunk before it arrives) without a syscall
    if (this.absent.has(placement.file)) return false
    const size = this.files.get(placement.file)?.size ?? (await lstat(placement.file).catch(() => undefined))?.size
    if (size === undefined) {
      // unless it is being created right now: then it is not absent for long
      if (!this.files.has(placement.file) && !this.opening.has(placement.file)) {
        if (this.absent.size >= MAX_ABSENT) this.absent.clear()
        this.absent.add(placement.file)
      }
      return false
    }
    const length = placement.length ?? size - placement.offset
    if (placement.offset + length > size || length < 0 || length > MAX_BLOCK_SIZE) return false
    return this.use(placement.file, async handle => {
      const bytes = new Uint8Array(length)
      for (let done = 0; done < length;) {
        const { bytesRead } = await handle.read(bytes, done, length - done, placement.offset + done)
        if (bytesRead === 0) return false
        done += bytesRead
      }
      return blockMatches(cid, bytes)
    })
  }

  /**
   * The sink of one batch of chunks: `has` answers yes for a chunk already in
   * all its places (or copies it from the local store); `put` writes received
   * (verified) chunks to every place the batch has for them.
   */
  sink (batch: ReadonlyMap<string, { cid: CID, places: Placement[] }>): ChunkSink {
    const placesOf = (cid: CID): Placement[] => {
      const entry = batch.get(cid.toString())
      if (entry === undefined) throw new BadDagError(`chunk ${cid.toString()} is not part of this get`)
      return entry.places
    }
    const bytesOf = (places: Placement[], length: number): number => places.reduce((sum, p) => sum + (p.length ?? length), 0)
    const put = async (cid: CID, bytes: Block): Promise<void> => {
      const places = placesOf(cid)
      for (const place of places) await this.write(place, bytes, cid)
      this.init.onChunk({ places: places.length, bytes: bytesOf(places, bytes.byteLength), reused: false })
    }
    return {
      has: async (cid, options) => {
        const places = placesOf(cid)
        const missing: Placement[] = []
        let length = 0
        for (const place of places) {
          options?.signal?.throwIfAborted()
          if (await this.holds(place, cid)) {
            length = place.length ?? length
          } else {
            missing.push(place)
          }
        }
        if (missing.length > 0) {
          const local = await this.init.localCopy(cid, options)
          if (local === undefined) return false
          for (const place of missing) await this.write(place, local, cid)
          length = local.length
        }
        this.init.onChunk({ places: places.length, bytes: bytesOf(places, length), reused: true })
        return true
      },
      put: async (cid, bytes) => { await put(cid, bytes) },
      putPieces: async (cid, pieces) => { await put(cid, pieces) }
    }
  }

  /** Closes every file the writer holds open; throws if a background datasync failed (the bytes may not be on disk). */
  async close (): Promise<void> {
    await Promise.allSettled([...this.opening.values()])
    await Promise.allSettled([...this.files.values()].map(async file => file.syncing))
    const files = [...this.files.values()]
    this.files.clear()
    await Promise.all(files.map(async file => file.handle.close().catch((err: unknown) => { log('closing a partial file failed - %e', err) })))
    if (this.syncFailure !== undefined) throw this.syncFailure
  }
}

/**
 * Makes a file's size right (a partial file from an earlier run may be
 * longer), gives it the DAG's mode and mtime, and makes it durable.
 */
export async function settleFile (path: string, size: number | undefined, meta?: EntryMeta): Promise<void> {
  const handle = await open(path, constants.O_RDWR | constants.O_NOFOLLOW)
  try {
    const actual = (await handle.stat()).size
    if (size !== undefined && actual !== size) {
      if (actual < size) throw new BadDagError(`${path} has ${actual} bytes after the get; the DAG says ${size}`)
      await handle.truncate(size)
    }
    // the owner keeps read and write: this device indexes, serves and may resume what it got
    if (meta?.mode !== undefined) await handle.chmod(meta.mode | 0o600)
    if (meta?.mtime !== undefined) await handle.utimes(new Date(), meta.mtime)
    // metadata changed: a full sync, so the mode and mtime are as durable as the bytes
    await (meta === undefined ? handle.datasync() : handle.sync())
  } finally {
    await handle.close()
  }
}

/**
 * The DAG's mode and mtime on a directory (after everything in it is written:
 * creating an entry changes a directory's mtime) or a symlink (its own times,
 * never its target's; a symlink has no mode of its own on Linux).
 */
export async function applyMeta (path: string, kind: 'directory' | 'symlink', meta: EntryMeta | undefined): Promise<void> {
  if (meta === undefined) return
  if (kind === 'symlink') {
    if (meta.mtime !== undefined) await lutimes(path, new Date(), meta.mtime)
    return
  }
  // the owner keeps full access: the get still lists and indexes the folder
  if (meta.mode !== undefined) await chmod(path, meta.mode | 0o700)
  if (meta.mtime !== undefined) await utimes(path, new Date(), meta.mtime)
}

/** fsync of a directory: its entries (a created file, a rename) survive a power loss. */
export async function syncDirectory (path: string): Promise<void> {
  const handle = await open(path, constants.O_RDONLY | constants.O_DIRECTORY)
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** The folder an output goes into. */
export function parentOf (path: string): string {
  return dirname(path)
}
