import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { CHUNK_BUFFER_IDLE_MS, CHUNK_BUFFER_SIZE, HASH_BATCHES_IN_FLIGHT, INLINE_HASH_BYTES, MAIN_THREAD_HASH_SHARE, READ_SIZE } from './constants.js'
import { GearCutter, type ChunkingParams } from './gear.js'
import { IdleTimer, hashHere, hashPool, type Sha256Digest } from './hash-pool.js'
import type { AbortOptions } from '@homecloud/interface'
import type { FileHandle } from 'node:fs/promises'

/** One chunk of a file. */
export interface FileChunk {
  cid: CID
  /** Byte offset in the file. */
  offset: number
  length: number
}

export interface ChunkReaderInit {
  chunking?: Partial<ChunkingParams>
  /** Size of the one buffer the reader uses (bounded memory); at least 2 × max + read size. */
  bufferSize?: number
  /** The buffer is freed this many ms after the last file is chunked (0: at once). */
  idleTimeout?: number
  /** Share of each batch this thread hashes at first (`MAIN_THREAD_HASH_SHARE`); it adapts from there. */
  hashShare?: number
  /** false: `hashShare` stays as given (benchmarks comparing shares); default true. */
  balanceHashShare?: boolean
}

/** Most of a batch this thread hashes: beyond half, the worker would wait more than it works. */
export const MAX_HASH_SHARE = 0.5

/** How far the share moves after each batch: from 0.25 to either end in a dozen batches (~48 MiB). */
const HASH_SHARE_STEP = 0.02

/** Chunks cut after one read, hashed together by the hash worker. */
interface Batch {
  /** File offset, length pairs. */
  chunks: number[]
  /** Start and end of the batch in the buffer: keep these bytes until it is hashed. */
  from: number
  to: number
  digests: Promise<Sha256Digest[]>
  /** Set once the worker's part is hashed: how long the worker had waited for it. */
  workerIdleMs?: number
  /** The worker hashes part of it. */
  remote: boolean
}

/**
 * Cuts files into chunks and hashes them, streaming with bounded memory: one
 * shared buffer, the Gear loop on this thread, sha2-256 on the hash worker,
 * which reads the chunks straight from the buffer while the next read is cut.
 * A batch of at most `INLINE_HASH_BYTES` (a small file, the tail of one) is
 * hashed on this thread: the worker round trip would cost more than the hash.
 * Of bigger batches this thread hashes a share too, balanced as it goes so
 * neither thread waits for the other (`hashShare`): how much the Gear loop,
 * the reads and the rest of the process cost this thread against sha2-256
 * differs from machine to machine and with load (a daemon's main thread does
 * more than a bench's; without SHA instructions sha2-256 costs far more).
 * Reuse one reader for many files; it chunks one file at a time. The buffer
 * is allocated by the first file and freed `idleTimeout` after the last one,
 * so back-to-back files share it and an idle reader holds none.
 */
export class ChunkReader {
  readonly cutter: GearCutter
  readonly #size: number
  /** Allocated by `chunks()` when needed: a reader that is not chunking (a daemon that only fetches, or is idle) holds no buffer. */
  #memory?: SharedArrayBuffer
  #buf: Uint8Array = new Uint8Array(0)
  #words: Uint32Array = new Uint32Array(0)
  readonly #readSize: number
  readonly #idle: IdleTimer
  /** `chunks()` running now. */
  #runs = 0
  #share: number
  readonly #balanced: boolean

  constructor (init: ChunkReaderInit = {}) {
    this.cutter = new GearCutter(init.chunking)
    const { max } = this.cutter.params
    this.#readSize = Math.max(READ_SIZE, max)
    const size = Math.max(init.bufferSize ?? CHUNK_BUFFER_SIZE, 2 * max + this.#readSize)
    this.#size = size + 3 - ((size + 3) % 4)
    this.#idle = new IdleTimer(init.idleTimeout ?? CHUNK_BUFFER_IDLE_MS, () => { this.#release() })
    this.#share = Math.min(MAX_HASH_SHARE, Math.max(0, init.hashShare ?? MAIN_THREAD_HASH_SHARE))
    this.#balanced = init.balanceHashShare ?? true
  }

  /** Share of a batch's bytes this thread hashes now (the worker the rest). */
  get hashShare (): number {
    return this.#share
  }

  /**
   * After waiting `waitedMs` for the worker's part of a batch, which the
   * worker began after waiting `workerIdleMs` for it: this thread takes more
   * of the next batches when it waited longer than the worker, less otherwise.
   */
  #balance (waitedMs: number, workerIdleMs: number): void {
    const share = this.#share + (waitedMs > workerIdleMs ? HASH_SHARE_STEP : -HASH_SHARE_STEP)
    this.#share = Math.min(MAX_HASH_SHARE, Math.max(0, share))
  }

  /** Bytes of chunking buffer held now (0 while idle). */
  get bufferBytes (): number {
    return this.#memory?.byteLength ?? 0
  }

  #release (): void {
    this.#memory = undefined
    this.#buf = new Uint8Array(0)
    this.#words = new Uint32Array(0)
  }

  /** The chunks of the file open on `handle`, in order. */
  async * chunks (handle: FileHandle, options: AbortOptions = {}): AsyncGenerator<FileChunk> {
    if (this.#memory === undefined) {
      this.#memory = new SharedArrayBuffer(this.#size)
      this.#buf = new Uint8Array(this.#memory)
      this.#words = new Uint32Array(this.#memory)
    }
    const buf = this.#buf
    const words = this.#words
    const { max } = this.cutter.params
    const memory = this.#memory
    this.#runs++
    this.#idle.cancel()
    const batches: Batch[] = []
    // attached on the first batch the worker hashes: a small file never talks to it
    let hashing: number | undefined
    const hash = async (batch: Batch, ranges: number[], bytes: number): Promise<Sha256Digest[]> => {
      if (bytes <= INLINE_HASH_BYTES) return hashHere(buf, ranges)
      hashing ??= hashPool.attach(memory)
      batch.remote = true
      // the worker hashes the first chunks, this thread the last `share` of the bytes meanwhile
      let split = ranges.length
      for (let mine = 0; split > 2 && mine + ranges[split - 1] <= bytes * this.#share; split -= 2) mine += ranges[split - 1]
      const remote = hashPool.hashTimed(hashing, split === ranges.length ? ranges : ranges.slice(0, split))
      const local = split === ranges.length ? [] : hashHere(buf, ranges.slice(split))
      const { digests, workerIdleMs } = await remote
      batch.workerIdleMs = workerIdleMs
      return local.length === 0 ? digests : [...digests, ...local]
    }
    let base = 0 // file offset of buf[0]
    let start = 0 // start of the chunk being cut
    let end = 0 // end of the bytes read
    let eof = false
    try {
      while (!eof) {
        options.signal?.throwIfAborted()
        if (buf.length - end < this.#readSize) {
          // move the uncut tail (< max bytes) to the front, once batches hashed there are done
          for (const b of batches) if (b.from < end - start) await b.digests
          buf.copyWithin(0, start, end)
          base += start
          end -= start
          start = 0
        }
        const { bytesRead } = await handle.read(buf, end, this.#readSize, base + end)
        end += bytesRead
        eof = bytesRead === 0
        const chunks: number[] = []
        const ranges: number[] = []
        const from = start
        while (end - start >= max || (eof && end > start)) {
          const cut = this.cutter.cut(buf, words, start, end)
          chunks.push(base + start, cut - start)
          ranges.push(start, cut - start)
          start = cut
        }
        if (chunks.length > 0) {
          const batch: Batch = { chunks, from, to: start, digests: Promise.resolve([]), remote: false }
          batch.digests = hash(batch, ranges, start - from)
          batches.push(batch)
        }
        while (batches.length > (eof ? 0 : HASH_BATCHES_IN_FLIGHT - 1)) {
          const batch = batches.shift() as Batch
          const waiting = performance.now()
          const digests = await batch.digests
          // the last batches of a file are waited for whatever the balance: they teach nothing
          if (batch.remote && !eof && this.#balanced) this.#balance(performance.now() - waiting, batch.workerIdleMs ?? 0)
          yield * settle(batch, digests)
        }
      }
    } finally {
      // no hash may still read the buffer when the next file uses it
      await Promise.allSettled(batches.map(async b => b.digests))
      if (hashing !== undefined) hashPool.detach(hashing)
      if (--this.#runs === 0) this.#idle.start()
    }
  }
}

function * settle (batch: Batch, digests: Sha256Digest[]): Generator<FileChunk> {
  for (let i = 0; i < digests.length; i++) {
    yield { cid: CID.createV1(raw.code, digests[i]), offset: batch.chunks[2 * i], length: batch.chunks[2 * i + 1] }
  }
}
