import { MAX_LOCATIONS_PER_LOOKUP } from './constants.js'
import { InvalidParametersError } from './errors.js'
import type { ChunkRange, FileChunkRef, FileLocation, FileRecord, IndexedFileEntry, StoreIndex } from './store-index.js'

/** A StoreIndex in memory: for tests and as a test double. */
export class MemoryIndex implements StoreIndex {
  readonly #blocks = new Map<string, Uint8Array>()
  readonly #files = new Map<string, { file: FileRecord, chunks: FileChunkRef[] }>()
  /** block key → `${path}\0${offset}` → location */
  readonly #locations = new Map<string, Map<string, FileLocation>>()
  readonly #pins = new Set<string>()

  async getBlock (key: string): Promise<Uint8Array | undefined> {
    return this.#blocks.get(key)
  }

  async hasBlock (key: string): Promise<boolean> {
    return this.#blocks.has(key)
  }

  async hasBlocks (keys: readonly string[]): Promise<boolean[]> {
    return keys.map(key => this.#blocks.has(key))
  }

  async putBlock (key: string, bytes: Uint8Array): Promise<void> {
    this.#blocks.set(key, bytes.slice())
  }

  async deleteBlock (key: string): Promise<void> {
    this.#blocks.delete(key)
  }

  async * blocks (): AsyncGenerator<{ key: string, bytes: Uint8Array }> {
    for (const [key, bytes] of [...this.#blocks]) {
      yield { key, bytes }
    }
  }

  async setFile (file: FileRecord, chunks: FileChunkRef[]): Promise<void> {
    await this.deleteFile(file.path)
    this.#files.set(file.path, { file: { ...file }, chunks: chunks.map(c => ({ ...c })) })
    for (const c of chunks) {
      let places = this.#locations.get(c.key)
      if (places == null) {
        places = new Map()
        this.#locations.set(c.key, places)
      }
      places.set(`${file.path}\0${c.offset}`, { path: file.path, offset: c.offset, length: c.length })
    }
  }

  /** Nothing here can fail half way: the paths are checked first. */
  async setFiles (files: readonly IndexedFileEntry[]): Promise<void> {
    if (new Set(files.map(f => f.file.path)).size !== files.length) throw new InvalidParametersError('setFiles was given a path twice')
    for (const { file, chunks } of files) await this.setFile(file, chunks)
  }

  async getFile (path: string): Promise<FileRecord | undefined> {
    const entry = this.#files.get(path)
    return entry == null ? undefined : { ...entry.file }
  }

  async deleteFile (path: string): Promise<void> {
    const entry = this.#files.get(path)
    if (entry == null) return
    this.#files.delete(path)
    for (const c of entry.chunks) {
      const places = this.#locations.get(c.key)
      places?.delete(`${path}\0${c.offset}`)
      if (places?.size === 0) this.#locations.delete(c.key)
    }
  }

  async * files (): AsyncGenerator<FileRecord> {
    for (const { file } of [...this.#files.values()]) {
      yield { ...file }
    }
  }

  async * fileChunks (path: string, range: ChunkRange = {}): AsyncGenerator<FileChunkRef> {
    // chunks are kept in offset order (setFile takes them in order)
    const from = range.from ?? 0
    const chunks = (this.#files.get(path)?.chunks ?? []).filter(c => c.offset >= from)
    for (const c of chunks.slice(0, range.limit ?? chunks.length)) {
      yield { ...c }
    }
  }

  async locations (key: string): Promise<FileLocation[]> {
    return [...(this.#locations.get(key)?.values() ?? [])].slice(0, MAX_LOCATIONS_PER_LOOKUP).map(l => ({ ...l }))
  }

  async locationsOf (keys: readonly string[]): Promise<FileLocation[][]> {
    return Promise.all(keys.map(async key => this.locations(key)))
  }

  async addPin (cid: string): Promise<void> {
    this.#pins.add(cid)
  }

  async deletePin (cid: string): Promise<void> {
    this.#pins.delete(cid)
  }

  async hasPin (cid: string): Promise<boolean> {
    return this.#pins.has(cid)
  }

  async * pins (): AsyncGenerator<string> {
    yield * [...this.#pins]
  }

  async close (): Promise<void> {}
}
