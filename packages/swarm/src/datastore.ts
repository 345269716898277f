/**
 * Where a device keeps its swarms: a narrow key-value interface with an in-memory and a
 * LevelDB implementation, and the record layout on top of it.
 */
import * as dagCbor from '@ipld/dag-cbor'

/** The little a swarm needs from a key-value store. Keys are strings, values bytes. */
export interface SwarmDatastore {
  get(key: string): Promise<Uint8Array | undefined>
  put(key: string, value: Uint8Array): Promise<void>
  delete(key: string): Promise<void>
  /** Every pair whose key starts with `prefix`, in key order. */
  list(prefix: string): AsyncIterable<[string, Uint8Array]>
}

/** Keeps everything in a Map: tests, and devices that need no persistence. */
export class MemorySwarmDatastore implements SwarmDatastore {
  private readonly data = new Map<string, Uint8Array>()

  async get (key: string): Promise<Uint8Array | undefined> {
    return this.data.get(key)
  }

  async put (key: string, value: Uint8Array): Promise<void> {
    this.data.set(key, value.slice())
  }

  async delete (key: string): Promise<void> {
    this.data.delete(key)
  }

  async * list (prefix: string): AsyncIterable<[string, Uint8Array]> {
    const keys = [...this.data.keys()].filter(k => k.startsWith(prefix)).sort()
    for (const key of keys) {
      const value = this.data.get(key)
      if (value !== undefined) yield [key, value]
    }
  }
}

/**
 * The part of a `level` database (or sublevel) used here; open it with
 * `{ keyEncoding: 'utf8', valueEncoding: 'view' }`.
 */
export interface LevelLike {
  get(key: string): Promise<Uint8Array | undefined>
  put(key: string, value: Uint8Array): Promise<void>
  del(key: string): Promise<void>
  iterator(options: { gte: string, lt: string }): AsyncIterable<[string, Uint8Array]>
}

/** Swarms in LevelDB: the node hands over a sublevel of its database. */
export class LevelSwarmDatastore implements SwarmDatastore {
  constructor (private readonly db: LevelLike) {}

  async get (key: string): Promise<Uint8Array | undefined> {
    const value = await this.db.get(key)
    return value === undefined ? undefined : plain(value)
  }

  async put (key: string, value: Uint8Array): Promise<void> {
    await this.db.put(key, value)
  }

  async delete (key: string): Promise<void> {
    await this.db.del(key)
  }

  async * list (prefix: string): AsyncIterable<[string, Uint8Array]> {
    // '\uffff' sorts after every key that starts with `prefix`
    for await (const [key, value] of this.db.iterator({ gte: prefix, lt: `${prefix}\uffff` })) yield [key, plain(value)]
  }
}

/** classic-level hands out Buffers; callers compare with plain Uint8Arrays. */
function plain (value: Uint8Array): Uint8Array {
  return Object.getPrototypeOf(value) === Uint8Array.prototype ? value : new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
}

/** What is kept about one swarm besides its entries. */
export interface StoredSwarm {
  id: string
  name: string
  /** Known secrets by hex commitment: the current one, and older ones until replaced. */
  secrets: Record<string, Uint8Array>
}

/**
 * Layout: `swarm/<id>/meta` (dag-cbor `StoredSwarm`), `swarm/<id>/entry/<cid>` (entry block).
 * Entries are written before the meta record, so a swarm without meta is an interrupted join and
 * is ignored on load.
 */
export class SwarmRecords {
  constructor (private readonly store: SwarmDatastore) {}

  async saveMeta (meta: StoredSwarm): Promise<void> {
    await this.store.put(`swarm/${meta.id}/meta`, dagCbor.encode(meta))
  }

  async saveEntry (swarmId: string, key: string, bytes: Uint8Array): Promise<void> {
    await this.store.put(`swarm/${swarmId}/entry/${key}`, bytes)
  }

  async * loadAll (): AsyncIterable<{ meta: StoredSwarm, entries: Uint8Array[] }> {
    const metas: StoredSwarm[] = []
    for await (const [key, value] of this.store.list('swarm/')) {
      if (key.endsWith('/meta')) metas.push(dagCbor.decode<StoredSwarm>(value))
    }
    for (const meta of metas) {
      const entries: Uint8Array[] = []
      for await (const [, value] of this.store.list(`swarm/${meta.id}/entry/`)) entries.push(value)
      yield { meta, entries }
    }
  }

  async deleteSwarm (swarmId: string): Promise<void> {
    await this.store.delete(`swarm/${swarmId}/meta`)
    const keys: string[] = []
    for await (const [key] of this.store.list(`swarm/${swarmId}/`)) keys.push(key)
    for (const key of keys) await this.store.delete(key)
  }
}
