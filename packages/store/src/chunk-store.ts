import { lstat } from 'node:fs/promises'
import { isAbsolute } from 'node:path'
import { CustomProgressEvent } from '@homecloud/interface'
import { logger } from '@libp2p/logger'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { addPath } from './add.js'
import { HAS_MANY_BATCH, INDEX_FILE_CHECKS, MAX_BLOCK_SIZE, MAX_INDEX_FILES_BATCH } from './constants.js'
import { BlockNotFoundError, FileChangedError, IntegrityError, InvalidParametersError, LimitExceededError, NotFoundError, StoreClosedError } from './errors.js'
import { FileReads, invalidatingIndex, NOT_INDEXED, type FileReadsInit } from './file-reads.js'
import { FileChunker } from './file-chunker.js'
import { eachLimit } from './each-limit.js'
import { hasMany } from './has-many.js'
import { fileRecord, isUnchanged, openIndexedFile, readRange, statMs } from './file-source.js'
import { assertSupportedHash, blockKey, keyToCid, matches } from './hash.js'
import { blockLinks } from './links.js'
import { GcLock } from './lock.js'
import type { AddOptions, BadEntry, ChunkedFile, FileNotIndexed, FileStamp, FileToIndex, IndexedChunk, ChunkStore, GcProgressEvents, GcResult, StoreStat, VerifyProgressEvents, VerifyResult } from './api.js'
import type { FileLocation, IndexedFileEntry, StoreIndex } from './store-index.js'
import type { AbortOptions, ProgressOptions } from '@homecloud/interface'

const log = logger('homecloud:store')

/** The ChunkStore over a StoreIndex (memory or LevelDB): all store logic lives here. */
export class IndexedChunkStore implements ChunkStore {
  readonly #index: StoreIndex
  readonly #reads: FileReads
  readonly #lock = new GcLock()
  readonly #chunker = new FileChunker()
  #closed = false

  /** `reads`: limits of the caches that serve file-backed chunks (defaults in constants.ts). */
  constructor (index: StoreIndex, reads: FileReadsInit = {}) {
    this.#reads = new FileReads(index, reads)
    this.#index = invalidatingIndex(index, this.#reads)
  }

  #open (options: AbortOptions = {}): StoreIndex {
    if (this.#closed) throw new StoreClosedError()
    options.signal?.throwIfAborted()
    return this.#index
  }

  async has (cid: CID, options: AbortOptions = {}): Promise<boolean> {
    const index = this.#open(options)
    const key = blockKey(cid)
    if (await index.hasBlock(key)) return true
    const cached = this.#reads.location(key)
    if (cached !== undefined) {
      // no index scan for a place in a file just indexed or being read (a changed file is forgotten below)
      const file = this.#reads.record(cached.path) ?? await index.getFile(cached.path)
      if (file != null && await isUnchanged(file)) return true
    }
    for (const location of await index.locations(key)) {
      const file = await index.getFile(location.path)
      if (file != null && await isUnchanged(file)) return true
      await this.#forgetFile(location.path, new FileChangedError(location.path))
    }
    return false
  }

  async hasMany (cids: readonly CID[], options: AbortOptions = {}): Promise<boolean[]> {
    const index = this.#open(options)
    const keys = cids.map(blockKey)
    const ctx = { index, reads: this.#reads, forget: async (path: string) => this.#forgetFile(path, new FileChangedError(path)) }
    const found: boolean[] = []
    for (let start = 0; start < keys.length; start += HAS_MANY_BATCH) {
      options.signal?.throwIfAborted()
      found.push(...await hasMany(ctx, keys.slice(start, start + HAS_MANY_BATCH), options))
    }
    return found
  }

  async get (cid: CID, options: AbortOptions = {}): Promise<Uint8Array> {
    this.#open(options)
    assertSupportedHash(cid)
    const key = blockKey(cid)
    // raw chunks mostly live in files, DAG nodes in the block store: look where it likely is first
    const sources = cid.code === raw.code
      ? [async () => this.#fromFiles(cid, key, options), async () => this.#fromBlocks(cid, key)]
      : [async () => this.#fromBlocks(cid, key), async () => this.#fromFiles(cid, key, options)]
    let failure: Error | undefined
    for (const source of sources) {
      const found = await source()
      if (found instanceof Uint8Array) return found
      failure = found ?? failure
    }
    throw new BlockNotFoundError(cid, { cause: failure })
  }

  async #fromBlocks (cid: CID, key: string): Promise<Uint8Array | Error | undefined> {
    const bytes = await this.#index.getBlock(key)
    if (bytes == null) return undefined
    if (await matches(cid, bytes)) return bytes
    log.error('dropping corrupt block %c', cid)
    await this.#index.deleteBlock(key)
    return new IntegrityError(`stored block ${cid.toString()} does not match its hash`)
  }

  async #fromFiles (cid: CID, key: string, options: AbortOptions): Promise<Uint8Array | Error | undefined> {
    let failure: Error | undefined
    const ahead = this.#reads.location(key)
    if (ahead !== undefined) {
      const read = await this.#readLocation(cid, ahead, true)
      if (read instanceof Uint8Array) return read
      failure = read
    }
    for (const location of await this.#index.locations(key)) {
      options.signal?.throwIfAborted()
      const read = await this.#readLocation(cid, location, false)
      if (read instanceof Uint8Array) return read
      failure = read
    }
    return failure
  }

  /** A chunk from a local file, hashed again; on any mismatch the file is forgotten until rescanned. */
  async #readLocation (cid: CID, location: FileLocation, hit: boolean): Promise<Uint8Array | Error> {
    const generation = this.#reads.generation
    const bytes = await this.#reads.read(location)
    if (bytes === NOT_INDEXED) return new FileChangedError(location.path, `file ${location.path} is no longer indexed`)
    let failure: Error
    if (bytes instanceof FileChangedError) {
      failure = bytes
    } else if (await matches(cid, bytes)) {
      this.#reads.readAhead(location, hit)
      return bytes
    } else {
      failure = new IntegrityError(`chunk ${cid.toString()} at ${location.path}:${location.offset} does not match its hash`)
    }
    // a read that raced a change of the index proves nothing about the file as indexed now
    if (generation !== this.#reads.generation) return failure
    return this.#forgetFile(location.path, failure)
  }

  /** The file changed under the index: its chunks are missing until the file is rescanned. */
  async #forgetFile<E extends Error> (path: string, reason: E): Promise<E> {
    log('file %s needs a rescan: %s', path, reason.message)
    await this.#index.deleteFile(path)
    return reason
  }

  async put (cid: CID, bytes: Uint8Array, options: AbortOptions = {}): Promise<void> {
    const index = this.#open(options)
    assertSupportedHash(cid)
    if (bytes.length > MAX_BLOCK_SIZE) {
      throw new LimitExceededError(`block ${cid.toString()} has ${bytes.length} bytes; the limit is ${MAX_BLOCK_SIZE}`)
    }
    if (!await matches(cid, bytes)) {
      throw new IntegrityError(`bytes do not match ${cid.toString()}`)
    }
    const key = blockKey(cid)
    await this.#lock.shared(async () => {
      if (!await index.hasBlock(key)) await index.putBlock(key, bytes)
    })
  }

  async addPath (path: string, options: AddOptions = {}): Promise<CID> {
    const index = this.#open(options)
    return this.#lock.shared(async () => {
      const root = await addPath(index, path, options)
      if (options.pin !== false) await index.addPin(root.toV1().toString())
      return root
    })
  }

  async indexFile (path: string, chunks: IndexedChunk[], options: AbortOptions = {}): Promise<void> {
    const index = this.#open(options)
    const { file, chunks: refs } = await this.#toIndex(path, chunks)
    await this.#lock.shared(async () => { await index.setFile(file, refs) })
  }

  async indexFiles (files: readonly FileToIndex[], options: AbortOptions = {}): Promise<FileNotIndexed[]> {
    const index = this.#open(options)
    const failed: FileNotIndexed[] = []
    const seen = new Set<string>()
    for (let start = 0; start < files.length; start += MAX_INDEX_FILES_BATCH) {
      const group = files.slice(start, start + MAX_INDEX_FILES_BATCH).filter(({ path }) => {
        if (!seen.has(path)) return seen.add(path)
        failed.push({ path, error: new InvalidParametersError(`indexFiles was given ${path} twice`) })
        return false
      })
      const entries: IndexedFileEntry[] = []
      const started = Date.now()
      await eachLimit(group, INDEX_FILE_CHECKS, async ({ path, chunks, stat }) => {
        options.signal?.throwIfAborted()
        try {
          entries.push(await this.#toIndex(path, chunks, stat))
        } catch (err) {
          failed.push({ path, error: err as Error })
        }
      })
      options.signal?.throwIfAborted()
      const checked = Date.now()
      await this.#lock.shared(async () => { await index.setFiles(entries) })
      log('indexFiles: batch of %d files, stats %d ms, index write %d ms', entries.length, checked - started, Date.now() - checked)
    }
    return failed
  }

  /** What `indexFile` records for `path`, its size, mtime and inode taken now (or the caller's `stamp`); `InvalidParametersError` for what it refuses. */
  async #toIndex (path: string, chunks: IndexedChunk[], stamp?: FileStamp): Promise<IndexedFileEntry> {
    if (!isAbsolute(path)) throw new InvalidParametersError(`indexFile needs an absolute path, got ${path}`)
    let st = stamp
    if (st == null) {
      // lstat: a symlink is refused, never followed; one syscall where open + fstat + close were three (a scan indexes every new file)
      const now = await lstat(path, { bigint: true })
      if (!now.isFile()) throw new InvalidParametersError(`${path} is not a regular file`)
      st = now
    } else if (typeof st.size !== 'bigint' || typeof st.mtimeNs !== 'bigint' || typeof st.ino !== 'bigint' || typeof st.dev !== 'bigint') {
      throw new InvalidParametersError(`the stat given for ${path} needs bigint size, mtimeNs, ino and dev`)
    }
    const record = fileRecord(path, st)
    let end = 0
    const refs = chunks.map(c => {
      assertSupportedHash(c.cid)
      if (c.cid.code !== raw.code) throw new InvalidParametersError(`${c.cid.toString()} is not a raw chunk`)
      if (!Number.isSafeInteger(c.offset) || !Number.isSafeInteger(c.length) || c.offset < end || c.length < 0 || c.length > MAX_BLOCK_SIZE) {
        throw new InvalidParametersError(`chunk ${c.cid.toString()} at ${c.offset}+${c.length} overlaps, is out of order or too large`)
      }
      end = c.offset + c.length
      return { key: blockKey(c.cid), offset: c.offset, length: c.length }
    })
    if (end > record.size) throw new InvalidParametersError(`chunks of ${path} end at ${end}, past its size ${record.size}`)
    return { file: record, chunks: refs }
  }

  async chunkFile (path: string, options: AbortOptions = {}): Promise<ChunkedFile> {
    const index = this.#open(options)
    if (!isAbsolute(path)) throw new InvalidParametersError(`chunkFile needs an absolute path, got ${path}`)
    const { chunks, stat } = await this.#chunker.chunkFile(path, options)
    const record = fileRecord(path, stat)
    const last = chunks.at(-1)
    const covered = last === undefined ? 0 : last.offset + last.length
    if (covered !== record.size) throw new FileChangedError(path, `file ${path} changed size while it was read (${covered} bytes read, ${record.size} now)`)
    await this.#lock.shared(async () => { await index.setFile(record, chunks.map(c => ({ key: blockKey(c.cid), offset: c.offset, length: c.length }))) })
    return { chunks, stat: { size: record.size, mtimeMs: statMs(stat.mtimeNs), ino: Number(stat.ino) } }
  }

  async pin (cid: CID, options: AbortOptions = {}): Promise<void> {
    const index = this.#open(options)
    await this.#lock.shared(async () => { await index.addPin(cid.toV1().toString()) })
  }

  async unpin (cid: CID, options: AbortOptions = {}): Promise<void> {
    const index = this.#open(options)
    const key = cid.toV1().toString()
    if (!await index.hasPin(key)) throw new NotFoundError(`${cid.toString()} is not pinned`)
    await index.deletePin(key)
  }

  async isPinned (cid: CID, options: AbortOptions = {}): Promise<boolean> {
    return this.#open(options).hasPin(cid.toV1().toString())
  }

  async * pins (options: AbortOptions = {}): AsyncGenerator<CID> {
    for await (const pin of this.#open(options).pins()) {
      options.signal?.throwIfAborted()
      yield CID.parse(pin)
    }
  }

  async gc (options: AbortOptions & ProgressOptions<GcProgressEvents> = {}): Promise<GcResult> {
    const index = this.#open(options)
    return this.#lock.exclusive(async () => {
      const live = await this.#reachable(options)
      const result: GcResult = { removedBlocks: 0, removedBytes: 0 }
      for await (const { key, bytes } of index.blocks()) {
        options.signal?.throwIfAborted()
        if (live.has(key)) continue
        await index.deleteBlock(key)
        result.removedBlocks++
        result.removedBytes += bytes.length
        options.onProgress?.(new CustomProgressEvent('store:gc:removed', { cid: keyToCid(key), bytes: bytes.length }))
      }
      log('gc removed %d blocks, %d bytes', result.removedBlocks, result.removedBytes)
      return result
    })
  }

  /** Block keys reachable from the pins through stored blocks (iterative: DAGs can be deep). */
  async #reachable (options: AbortOptions): Promise<Set<string>> {
    const live = new Set<string>()
    const stack: CID[] = []
    for await (const pin of this.#index.pins()) stack.push(CID.parse(pin))
    while (stack.length > 0) {
      options.signal?.throwIfAborted()
      const cid = stack.pop() as CID
      const key = blockKey(cid)
      if (live.has(key)) continue
      live.add(key)
      if (cid.code === raw.code) continue
      const bytes = await this.#index.getBlock(key)
      if (bytes == null) continue
      try {
        stack.push(...blockLinks(cid, bytes))
      } catch (err) {
        log.error('cannot decode links of %c: %e', cid, err)
      }
    }
    return live
  }

  async stat (options: AbortOptions = {}): Promise<StoreStat> {
    const index = this.#open(options)
    const stat: StoreStat = { blocks: 0, blockBytes: 0, files: 0, fileChunks: 0, fileBytes: 0, pins: 0 }
    for await (const { bytes } of index.blocks()) {
      stat.blocks++
      stat.blockBytes += bytes.length
    }
    for await (const file of index.files()) {
      options.signal?.throwIfAborted()
      stat.files++
      stat.fileBytes += file.size
      for await (const _ of index.fileChunks(file.path)) stat.fileChunks++
    }
    for await (const _ of index.pins()) stat.pins++
    return stat
  }

  async verify (options: AbortOptions & ProgressOptions<VerifyProgressEvents> = {}): Promise<VerifyResult> {
    const index = this.#open(options)
    const result: VerifyResult = { checked: 0, bad: [] }
    const report = (entry: BadEntry): void => {
      result.bad.push(entry)
      options.onProgress?.(new CustomProgressEvent('store:verify:bad', entry))
    }
    const checked = (): void => {
      result.checked++
      options.onProgress?.(new CustomProgressEvent('store:verify:progress', { checked: result.checked }))
    }
    for await (const { key, bytes } of index.blocks()) {
      options.signal?.throwIfAborted()
      const cid = keyToCid(key)
      checked()
      if (await matches(cid, bytes)) continue
      await index.deleteBlock(key)
      report({ cid, reason: 'hash-mismatch' })
    }
    for await (const file of index.files()) {
      const handle = await openIndexedFile(file)
      if (handle instanceof FileChangedError) {
        for await (const chunk of index.fileChunks(file.path)) {
          report({ cid: keyToCid(chunk.key), reason: 'file-changed', path: file.path, offset: chunk.offset })
        }
        await this.#forgetFile(file.path, handle)
        continue
      }
      try {
        for await (const chunk of index.fileChunks(file.path)) {
          options.signal?.throwIfAborted()
          const cid = keyToCid(chunk.key)
          checked()
          const bytes = await readRange(handle, file.path, chunk.offset, chunk.length)
          if (bytes instanceof Uint8Array && await matches(cid, bytes)) continue
          report({ cid, reason: bytes instanceof Uint8Array ? 'hash-mismatch' : 'file-changed', path: file.path, offset: chunk.offset })
          await this.#forgetFile(file.path, bytes instanceof Uint8Array ? new IntegrityError(`chunk ${cid.toString()} does not match`) : bytes)
          break
        }
      } finally {
        await handle.close()
      }
    }
    return result
  }

  /** Chunk places and open files cached to serve indexed files now (for tests). */
  get cached (): { places: number, openFiles: number } {
    return { places: this.#reads.cachedLocations, openFiles: this.#reads.openFiles }
  }

  /**
   * Drops what is cached to serve indexed files quickly (chunk places, open files, read-ahead)
   * the chunker's kept read buffers and the index's LevelDB write buffer:
   * an idle device gives that memory back (issue 5 f: a full place cache held ~16 MiB after a
   * sync of 12,000 files). Nothing is lost: the next reads look places up in the index.
   */
  async releaseCaches (): Promise<void> {
    if (this.#closed) return
    this.#reads.invalidate()
    this.#chunker.release()
    await this.#index.release?.()
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#reads.close()
    await this.#index.close()
  }
}
