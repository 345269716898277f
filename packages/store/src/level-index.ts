import { Level } from 'level'
import type { FileChunkRef, FileLocation, FileRecord, StoreIndex } from './store-index.js'

function sublevels (db: Level<string, string>) {
  return {
    blocks: db.sublevel<string, Uint8Array>('blocks', { valueEncoding: 'view' }),
    files: db.sublevel<string, string>('files', {}),
    chunks: db.sublevel<string, string>('chunks', {}),
    locations: db.sublevel<string, string>('locations', {}),
    pins: db.sublevel<string, string>('pins', {})
  }
}

/** Keys sort as strings: zero-padded offsets keep a file's chunks in order. */
function offsetKey (offset: number): string {
  return offset.toString().padStart(16, '0')
}

/** `prefix\0…` range of a sublevel. */
function under (prefix: string): { gt: string, lt: string } {
  return { gt: `${prefix}\0`, lt: `${prefix}\x01` }
}

/**
 * A StoreIndex in LevelDB. Sublevels: `blocks` (key → bytes), `files`
 * (path → FileRecord), `chunks` (path, offset → key, length), `locations`
 * (key, path, offset → length), `pins` (CID → ''). A file's entries change in
 * one atomic batch.
 */
export class LevelIndex implements StoreIndex {
  readonly #db: Level<string, string>
  readonly #sub: ReturnType<typeof sublevels>

  private constructor (db: Level<string, string>) {
    this.#db = db
    this.#sub = sublevels(db)
  }

  /** Opens (creating if needed) the database in directory `path`. */
  static async open (path: string): Promise<LevelIndex> {
    const db = new Level<string, string>(path)
    await db.open()
    return new LevelIndex(db)
  }

  async getBlock (key: string): Promise<Uint8Array | undefined> {
    return this.#sub.blocks.get(key)
  }

  async hasBlock (key: string): Promise<boolean> {
    return this.#sub.blocks.has(key)
  }

  async putBlock (key: string, bytes: Uint8Array): Promise<void> {
    await this.#sub.blocks.put(key, bytes)
  }

  async deleteBlock (key: string): Promise<void> {
    await this.#sub.blocks.del(key)
  }

  async * blocks (): AsyncGenerator<{ key: string, bytes: Uint8Array }> {
    for await (const [key, bytes] of this.#sub.blocks.iterator()) {
      yield { key, bytes }
    }
  }

  async setFile (file: FileRecord, chunks: FileChunkRef[]): Promise<void> {
    const batch = this.#db.batch()
    await this.#deleteFileOps(file.path, batch)
    const { path, ...rest } = file
    batch.put(path, JSON.stringify(rest), { sublevel: this.#sub.files })
    for (const c of chunks) {
      batch.put(`${path}\0${offsetKey(c.offset)}`, `${c.key}\0${c.length}`, { sublevel: this.#sub.chunks })
      batch.put(`${c.key}\0${path}\0${c.offset}`, String(c.length), { sublevel: this.#sub.locations })
    }
    await batch.write()
  }

  async getFile (path: string): Promise<FileRecord | undefined> {
    const value = await this.#sub.files.get(path)
    return value == null ? undefined : { path, ...JSON.parse(value) as Omit<FileRecord, 'path'> }
  }

  async deleteFile (path: string): Promise<void> {
    const batch = this.#db.batch()
    await this.#deleteFileOps(path, batch)
    await batch.write()
  }

  async #deleteFileOps (path: string, batch: ReturnType<Level<string, string>['batch']>): Promise<void> {
    for await (const c of this.fileChunks(path)) {
      batch.del(`${path}\0${offsetKey(c.offset)}`, { sublevel: this.#sub.chunks })
      batch.del(`${c.key}\0${path}\0${c.offset}`, { sublevel: this.#sub.locations })
    }
    batch.del(path, { sublevel: this.#sub.files })
  }

  async * files (): AsyncGenerator<FileRecord> {
    for await (const [path, value] of this.#sub.files.iterator()) {
      yield { path, ...JSON.parse(value) as Omit<FileRecord, 'path'> }
    }
  }

  async * fileChunks (path: string): AsyncGenerator<FileChunkRef> {
    for await (const [k, value] of this.#sub.chunks.iterator(under(path))) {
      const [key, length] = value.split('\0')
      yield { key, offset: Number(k.slice(path.length + 1)), length: Number(length) }
    }
  }

  async locations (key: string): Promise<FileLocation[]> {
    const found: FileLocation[] = []
    for await (const [k, length] of this.#sub.locations.iterator(under(key))) {
      const rest = k.slice(key.length + 1)
      const sep = rest.lastIndexOf('\0')
      found.push({ path: rest.slice(0, sep), offset: Number(rest.slice(sep + 1)), length: Number(length) })
    }
    return found
  }

  async addPin (cid: string): Promise<void> {
    await this.#sub.pins.put(cid, '')
  }

  async deletePin (cid: string): Promise<void> {
    await this.#sub.pins.del(cid)
  }

  async hasPin (cid: string): Promise<boolean> {
    return this.#sub.pins.has(cid)
  }

  async * pins (): AsyncGenerator<string> {
    yield * this.#sub.pins.keys()
  }

  async close (): Promise<void> {
    await this.#db.close()
  }
}
