/**
 * Which blocks of the store are public content: the UnixFS trees `add`
 * pinned (and `get` pinned after fetching them). Share files are indexed in
 * the same store, so "held" no longer means "may be served to anyone": the
 * device's serve policy asks this set, and the share service for members.
 *
 * The set holds the raw chunks reachable from pinned dag-pb (or raw) roots,
 * bounded by `MAX_PUBLIC_CHUNKS`; it is rebuilt after `add`/`get`, and on a
 * miss when the pins changed or a pinned DAG was still incomplete (at most
 * once per `PUBLIC_RECHECK_MS`). DAG nodes (dag-pb) are only ever made by
 * add and get, so a held one is public; dag-cbor blocks (share snapshots,
 * kept history) never are.
 */
import * as dagPb from '@ipld/dag-pb'
import { blockLinks } from '@homecloud/store'
import { logger } from '@libp2p/logger'
import * as raw from 'multiformats/codecs/raw'
import { LOG_SCOPE, MAX_PUBLIC_CHUNKS, PUBLIC_RECHECK_MS } from './constants.js'
import type { ChunkStore } from '@homecloud/store'
import type { CID } from 'multiformats/cid'

const log = logger(`${LOG_SCOPE}:public`)

export interface PublicContentInit {
  /** The store while it is open. */
  store(): Pick<ChunkStore, 'get' | 'pins'> | undefined
  maxChunks?: number
  recheckMs?: number
  now?(): number
}

/** One chunk's key in the set: its digest bytes as a one-byte string (compact, and equal for v0/v1 CIDs). */
function keyOf (cid: CID): string {
  return Buffer.from(cid.multihash.bytes).toString('latin1')
}

export class PublicContent {
  readonly #init: PublicContentInit
  readonly #max: number
  readonly #recheckMs: number
  #chunks = new Set<string>()
  /** The pins the set was built from (undefined: never built, or invalidated). */
  #pins?: string
  #incomplete = false
  #checkedAt = 0
  #building?: Promise<void>
  #warned = false

  constructor (init: PublicContentInit) {
    this.#init = init
    this.#max = init.maxChunks ?? MAX_PUBLIC_CHUNKS
    this.#recheckMs = init.recheckMs ?? PUBLIC_RECHECK_MS
  }

  /** Pins changed through `add` or `get`: the next question rebuilds the set. */
  invalidate (): void {
    this.#pins = undefined
  }

  /** Is `cid` public content this device may serve to anyone? */
  async has (cid: CID): Promise<boolean> {
    if (cid.code === dagPb.code) return true
    if (cid.code !== raw.code) return false
    const key = keyOf(cid)
    if (this.#pins !== undefined && this.#chunks.has(key)) return true
    await this.#refresh()
    return this.#chunks.has(key)
  }

  async #refresh (): Promise<void> {
    const now = (this.#init.now ?? Date.now)()
    if (this.#pins !== undefined && now - this.#checkedAt < this.#recheckMs) return
    this.#checkedAt = now
    this.#building ??= this.#rebuild().finally(() => { this.#building = undefined })
    await this.#building
  }

  async #rebuild (): Promise<void> {
    const store = this.#init.store()
    if (store == null) return
    const roots: CID[] = []
    for await (const pin of store.pins()) {
      if (pin.code === dagPb.code || pin.code === raw.code) roots.push(pin)
    }
    const signature = roots.map(String).sort().join(' ')
    if (signature === this.#pins && !this.#incomplete) return
    const chunks = new Set<string>()
    let incomplete = false
    const stack = [...roots]
    const seen = new Set<string>()
    while (stack.length > 0) {
      const cid = stack.pop() as CID
      if (cid.code === raw.code) {
        if (chunks.size >= this.#max) {
          if (!this.#warned) log.error('public content has more than %d chunks: the rest is not served until some is unpinned', this.#max)
          this.#warned = true
          break
        }
        chunks.add(keyOf(cid))
        continue
      }
      if (cid.code !== dagPb.code || seen.has(keyOf(cid))) continue
      // DAG nodes are bounded with the chunks: a tree of empty files has nodes and no chunks
      if (seen.size >= this.#max) break
      seen.add(keyOf(cid))
      let bytes: Uint8Array
      try {
        bytes = await store.get(cid)
      } catch {
        // a get still fetching this DAG: look again on a later miss
        incomplete = true
        continue
      }
      stack.push(...blockLinks(cid, bytes))
    }
    this.#chunks = chunks
    this.#pins = signature
    this.#incomplete = incomplete
    log('public content: %d chunks under %d pins%s', chunks.size, roots.length, incomplete ? ' (some DAG nodes missing)' : '')
  }
}
