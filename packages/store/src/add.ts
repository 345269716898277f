import { lstat, readdir, readlink } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { CustomProgressEvent } from '@homecloud/interface'
import { ChunkReader, type FileChunk } from './chunker.js'
import { FILE_READ_ATTEMPTS, MAX_TREE_DEPTH, MAX_TREE_ENTRIES } from './constants.js'
import { FileChangedError, InvalidParametersError, LimitExceededError, NotFoundError } from './errors.js'
import { fileRecord, openNoFollow, sameFile } from './file-source.js'
import { blockKey } from './hash.js'
import { buildDirectory, buildFile, buildSymlink, type DagEntry, type DirectoryEntry, type PutBlock } from './unixfs.js'
import type { AddOptions } from './api.js'
import type { StoreIndex } from './store-index.js'
import type { BigIntStats } from 'node:fs'
import type { CID } from 'multiformats/cid'

/**
 * Indexes a file tree in place (D6): files are chunked and referenced where
 * they are; only DAG nodes go into the block store. Entries are lstat'ed and
 * never followed: a symlink becomes a UnixFS symlink node, so the walk cannot
 * leave the tree. Sockets, fifos and devices are skipped.
 */
export async function addPath (index: StoreIndex, path: string, options: AddOptions = {}): Promise<CID> {
  const root = resolve(path)
  const totals = await scan(root, options)
  options.onProgress?.(new CustomProgressEvent('store:add:scan', totals))
  const adder = new TreeAdder(index, options)
  const entry = await adder.add(root, 0, await lstatOrNotFound(root))
  if (entry == null) throw new InvalidParametersError(`${root} is not a file, directory or symlink`)
  return entry.cid
}

async function lstatOrNotFound (path: string): Promise<BigIntStats> {
  try {
    return await lstat(path, { bigint: true })
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') throw new NotFoundError(`${path} does not exist`, { cause: err })
    throw err
  }
}

/** An entry removed since its directory was listed is left out. */
function ignoreGone (err: unknown): undefined {
  if ((err as { code?: string }).code === 'ENOENT') return undefined
  throw err
}

/** Directory entries in name order, under the cap. */
async function listDirectory (path: string): Promise<string[]> {
  const names = await readdir(path)
  if (names.length > MAX_TREE_ENTRIES) {
    throw new LimitExceededError(`directory ${path} has ${names.length} entries; the limit is ${MAX_TREE_ENTRIES}`)
  }
  return names.sort()
}

/** First walk: totals for progress, and the caps checked before anything is written. */
async function scan (root: string, options: AddOptions): Promise<{ files: number, bytes: number }> {
  const totals = { files: 0, bytes: 0 }
  let entries = 0
  const stack: Array<{ path: string, depth: number }> = [{ path: root, depth: 0 }]
  while (stack.length > 0) {
    options.signal?.throwIfAborted()
    const { path, depth } = stack.pop() as { path: string, depth: number }
    const st = depth === 0 ? await lstatOrNotFound(path) : await lstat(path, { bigint: true }).catch(ignoreGone)
    if (st == null) continue
    if (++entries > MAX_TREE_ENTRIES) throw new LimitExceededError(`${root} has more than ${MAX_TREE_ENTRIES} entries`)
    if (st.isFile()) {
      totals.files++
      totals.bytes += Number(st.size)
    } else if (st.isDirectory()) {
      if (depth >= MAX_TREE_DEPTH) throw new LimitExceededError(`${path} is deeper than ${MAX_TREE_DEPTH} levels`)
      for (const name of await listDirectory(path)) stack.push({ path: join(path, name), depth: depth + 1 })
    }
  }
  return totals
}

class TreeAdder {
  readonly #index: StoreIndex
  readonly #options: AddOptions
  readonly #reader = new ChunkReader()
  readonly #put: PutBlock
  #bytes = 0
  #files = 0

  constructor (index: StoreIndex, options: AddOptions) {
    this.#index = index
    this.#options = options
    this.#put = async (cid, bytes) => { await index.putBlock(blockKey(cid), bytes) }
  }

  async add (path: string, depth: number, st: BigIntStats): Promise<DagEntry | undefined> {
    this.#options.signal?.throwIfAborted()
    if (st.isSymbolicLink()) return buildSymlink(await readlink(path), this.#put)
    if (st.isFile()) return this.#addFile(path)
    if (st.isDirectory()) {
      if (depth >= MAX_TREE_DEPTH) throw new LimitExceededError(`${path} is deeper than ${MAX_TREE_DEPTH} levels`)
      const entries: DirectoryEntry[] = []
      for (const name of await listDirectory(path)) {
        const child = join(path, name)
        const childStat = await lstat(child, { bigint: true }).catch(ignoreGone)
        if (childStat == null) continue
        const entry = await this.add(child, depth + 1, childStat)
        if (entry != null) entries.push({ name, ...entry })
      }
      return buildDirectory(path, entries, this.#put)
    }
    this.#options.onProgress?.(new CustomProgressEvent('store:add:skip', { path, reason: 'not a file, directory or symlink' }))
    return undefined
  }

  /** Chunks a file and records where its chunks are; read again if it changes meanwhile. */
  async #addFile (path: string): Promise<DagEntry> {
    for (let attempt = 1; attempt <= FILE_READ_ATTEMPTS; attempt++) {
      const handle = await openNoFollow(path)
      const chunks: FileChunk[] = []
      let read = 0
      try {
        const before = await handle.stat({ bigint: true })
        for await (const chunk of this.#reader.chunks(handle, this.#options)) {
          chunks.push(chunk)
          read += chunk.length
          this.#progress(chunk.length)
        }
        const record = fileRecord(path, before)
        if (sameFile(record, await handle.stat({ bigint: true })) && read === record.size) {
          await this.#index.setFile(record, chunks.map(c => ({ key: blockKey(c.cid), offset: c.offset, length: c.length })))
          const entry = await buildFile(chunks.map(c => ({ cid: c.cid, length: c.length })), this.#put)
          this.#files++
          this.#progress(0)
          this.#options.onProgress?.(new CustomProgressEvent('store:add:file', { path, cid: entry.cid, size: read }))
          return entry
        }
      } finally {
        await handle.close()
      }
      this.#progress(-read)
    }
    throw new FileChangedError(path, `file ${path} kept changing while it was read (${FILE_READ_ATTEMPTS} attempts)`)
  }

  #progress (bytes: number): void {
    this.#bytes += bytes
    this.#options.onProgress?.(new CustomProgressEvent('store:add:progress', { bytes: this.#bytes, files: this.#files }))
  }
}
