import * as fs from 'node:fs'
import { logger } from '@libp2p/logger'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { ChunkReader, type ChunkReaderInit, type FileChunk } from './chunker.js'
import { INLINE_HASH_BYTES, SMALL_FILE_BUFFERS } from './constants.js'
import { InvalidParametersError } from './errors.js'
import { OPEN_NO_FOLLOW, openNoFollow } from './file-source.js'
import { hashHere } from './hash-pool.js'
import type { AbortOptions } from '@homecloud/interface'
import type { BigIntStats } from 'node:fs'

const log = logger('homecloud:store:chunker')

/** A file's chunks and its stat taken after they were read. */
export interface ChunkedFileContent {
  chunks: FileChunk[]
  /** fstat of the open file after its last read: compare it with a stat taken before to know nothing changed meanwhile. */
  stat: BigIntStats
}

/**
 * Chunks whole files by path, many at a time (a scan of a folder). A small
 * file (≤ `INLINE_HASH_BYTES`) costs one read into a pooled buffer, one fstat
 * and a hash on this thread, so any number run side by side and none waits
 * for the hash worker; bigger files stream through one `ChunkReader`
 * (bounded memory, hashing on the worker), one file at a time. Callers bound
 * how many files they chunk at once (each holds a file descriptor).
 */
export class FileChunker {
  readonly #reader: ChunkReader
  /** Big files wait here for the reader: its buffer serves one file at a time. */
  #streaming: Promise<unknown> = Promise.resolve()
  /** Free read buffers for small files (at most `SMALL_FILE_BUFFERS` kept). */
  readonly #buffers: ArrayBuffer[] = []

  constructor (init: ChunkReaderInit = {}) {
    this.#reader = new ChunkReader(init)
  }

  /** Drops the kept small-file read buffers (an idle device: up to 1 MiB); later files allocate again. */
  release (): void {
    this.#buffers.length = 0
  }

  /**
   * The chunks of the regular file at `path`, in order, covering the bytes
   * read (a symlink is not followed: ELOOP), and its stat after the read.
   * Bytes and stat agree unless the file changed meanwhile, which moves its
   * mtime: callers compare the stat with one taken before.
   */
  async chunkFile (path: string, options: AbortOptions = {}): Promise<ChunkedFileContent> {
    options.signal?.throwIfAborted()
    const small = await this.#small(path)
    if (small !== undefined) return small
    // a bigger file: opened again, so what is streamed and its stat come from one open file
    const handle = await openNoFollow(path)
    try {
      const queued = performance.now()
      const run = this.#streaming.catch(() => {}).then(async () => {
        const started = performance.now()
        const chunks: FileChunk[] = []
        for await (const chunk of this.#reader.chunks(handle, options)) chunks.push(chunk)
        const stat = regularFile(await handle.stat({ bigint: true }), path)
        log('chunked %s (%d bytes, %d chunks) in %d ms after %d ms queued, hashing share %s', path, stat.size, chunks.length, Math.round(performance.now() - started), Math.round(started - queued), this.#reader.hashShare.toFixed(2))
        return { chunks, stat }
      })
      this.#streaming = run
      return await run
    } finally {
      await handle.close()
    }
  }

  /** Resolves once no big file is being chunked (the reader's buffer is free). */
  async idle (): Promise<void> {
    await this.#streaming.catch(() => {})
  }

  /**
   * One read of up to `INLINE_HASH_BYTES` + 1 bytes, then fstat: when the
   * file's size is what was read, that is the whole file; otherwise undefined
   * (a bigger file: it is streamed). A bare descriptor, not a FileHandle:
   * a third less CPU a file, which is most of a scan of many small files.
   */
  async #small (path: string): Promise<ChunkedFileContent | undefined> {
    const fd = await call<number>(cb => { fs.open(path, OPEN_NO_FOLLOW, cb) })
    // whole words for the cutter's 4-byte loads, from byte 0 of the buffer's own memory
    const memory = this.#buffers.pop() ?? new ArrayBuffer((INLINE_HASH_BYTES + 8) & ~3)
    try {
      const bytes = new Uint8Array(memory)
      const bytesRead = await call<number>(cb => { fs.read(fd, bytes, 0, INLINE_HASH_BYTES + 1, 0, cb) })
      if (bytesRead > INLINE_HASH_BYTES) return undefined
      const stat = regularFile(await call<BigIntStats>(cb => { fs.fstat(fd, { bigint: true }, cb) }), path)
      if (stat.size !== BigInt(bytesRead)) return undefined
      const words = new Uint32Array(memory)
      const ranges: number[] = []
      for (let start = 0; start < bytesRead;) {
        const cut = this.#reader.cutter.cut(bytes, words, start, bytesRead)
        ranges.push(start, cut - start)
        start = cut
      }
      const chunks = hashHere(bytes, ranges).map((digest, i) => ({ cid: CID.createV1(raw.code, digest), offset: ranges[2 * i], length: ranges[2 * i + 1] }))
      return { chunks, stat }
    } finally {
      await call<void>(cb => { fs.close(fd, cb) })
      if (this.#buffers.length < SMALL_FILE_BUFFERS) this.#buffers.push(memory)
    }
  }
}

function regularFile (stat: BigIntStats, path: string): BigIntStats {
  if (!stat.isFile()) throw new InvalidParametersError(`${path} is not a regular file`)
  return stat
}

/** A node:fs callback call as a promise. */
async function call<T> (fn: (cb: (err: NodeJS.ErrnoException | null, value: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    fn((err, value) => { if (err != null) reject(err); else resolve(value) })
  })
}
