/**
 * The partial output of a `get` (D6, D7): the tree is built under a temporary
 * name next to the output, file chunks written straight to their offsets in
 * the files (never into the block store), and renamed into place at the end.
 * A rerun after a crash finds the same partial output and reuses every chunk
 * that hashes right where it should be.
 */
import { constants } from 'node:fs'
import { lstat, mkdir, open, readlink, symlink, type FileHandle } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { blockMatches } from '@homecloud/exchange'
import { MAX_BLOCK_SIZE } from '@homecloud/store'
import { logger } from '@libp2p/logger'
import { GET_OPEN_FILES, LOG_SCOPE } from './constants.js'
import { BadDagError, OutputExistsError } from './errors.js'
import type { ChunkSink } from '@homecloud/exchange'
import type { AbortOptions } from '@homecloud/interface'
import type { CID } from 'multiformats/cid'
import type { TreeEntry } from './unixfs-tree.js'

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

interface OpenFile {
  handle: FileHandle
  users: number
  /** Its size: taken at open, then kept by this writer (the only one), so `holds` needs no fstat. */
  size: number
}

export class PartialOutput {
  readonly root: string
  private readonly init: PartialOutputInit
  private readonly files = new Map<string, OpenFile>()
  private readonly opening = new Map<string, Promise<void>>()

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
    try {
      const handle = await open(path, FILE_FLAGS, 0o644)
      try {
        this.files.set(path, { handle, users: 0, size: (await handle.stat()).size })
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

  async write (placement: Placement, bytes: Uint8Array, cid: CID): Promise<void> {
    if (placement.length !== undefined && bytes.length !== placement.length) {
      throw new BadDagError(`chunk ${cid.toString()} has ${bytes.length} bytes; the DAG gives it ${placement.length} at ${placement.file}:${placement.offset}`)
    }
    await this.use(placement.file, async (handle, file) => {
      const end = placement.offset + bytes.length
      for (let done = 0; done < bytes.length;) {
        const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, placement.offset + done)
        done += bytesWritten
      }
      file.size = Math.max(file.size, end)
      // a one-chunk root has no length in the DAG: what arrived is the whole file
      if (placement.length === undefined) {
        await handle.truncate(end)
        file.size = end
      }
    })
  }

  /** Do the bytes at `placement` already hash to `cid`? (a resumed get) */
  async holds (placement: Placement, cid: CID): Promise<boolean> {
    // past the end of the file (the usual case: a fresh get checks each chunk before it arrives) without a syscall
    const size = this.files.get(placement.file)?.size ?? (await lstat(placement.file).catch(() => undefined))?.size
    if (size === undefined) return false
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
      put: async (cid, bytes) => {
        const places = placesOf(cid)
        for (const place of places) await this.write(place, bytes, cid)
        this.init.onChunk({ places: places.length, bytes: bytesOf(places, bytes.length), reused: false })
      }
    }
  }

  /** Closes every file the writer holds open. */
  async close (): Promise<void> {
    await Promise.allSettled([...this.opening.values()])
    const files = [...this.files.values()]
    this.files.clear()
    await Promise.all(files.map(async file => file.handle.close().catch((err: unknown) => { log('closing a partial file failed - %e', err) })))
  }
}

/** Makes a file's size right (a partial file from an earlier run may be longer) and its bytes durable. */
export async function settleFile (path: string, size: number | undefined): Promise<void> {
  const handle = await open(path, constants.O_RDWR | constants.O_NOFOLLOW)
  try {
    const actual = (await handle.stat()).size
    if (size !== undefined && actual !== size) {
      if (actual < size) throw new BadDagError(`${path} has ${actual} bytes after the get; the DAG says ${size}`)
      await handle.truncate(size)
    }
    await handle.datasync()
  } finally {
    await handle.close()
  }
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
