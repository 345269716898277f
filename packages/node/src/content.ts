/**
 * Content on a device (issue 3, D5–D7): the chunk store, the chunk exchange
 * running as a libp2p service over it, and the operations the CLI drives:
 * `add` (index in place, announce), `get` (fetch a UnixFS tree from peers
 * straight into files, resumable, written atomically) and `blocks`.
 */
import { createHash } from 'node:crypto'
import { lstat, rename, stat } from 'node:fs/promises'
import { basename, dirname, isAbsolute, join, resolve } from 'node:path'
import * as dagPb from '@ipld/dag-pb'
import { chunkExchange, MAX_PEERS_PER_FETCH } from '@homecloud/exchange'
import { AbortError, CustomProgressEvent, InvalidParametersError, LimitExceededError, NotFoundError } from '@homecloud/interface'
import { createLevelStore, createMemoryStore, IndexedChunkStore, MAX_TREE_ENTRIES } from '@homecloud/store'
import { logger } from '@libp2p/logger'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { parseMultiaddr } from './config.js'
import { FIND_PROVIDERS_TIMEOUT_MS, GET_BATCH_CHUNKS, GET_DIAL_TIMEOUT_MS, LOG_SCOPE, MAX_PROVIDERS, PROVIDE_TIMEOUT_MS } from './constants.js'
import { DialFailedError, NodeNotStartedError, NoProvidersError, OutputExistsError } from './errors.js'
import { SERVICE } from './libp2p-options.js'
import { applyMeta, PartialOutput, settleFile, syncDirectory, type Placement } from './partial-output.js'
import { fileLeaves, isLeaf, walkTree, type EntryMeta, type GetBlock } from './unixfs-tree.js'
import type {
  AddContentResult, BlocksApi, ContentOptions, ContentProgress, DeviceContentApi, GetContentOptions, GetContentResult
} from './content-types.js'
import type { HomecloudNodeConfig } from './types.js'
import type { ChunkExchange, ChunkExchangeComponents, ChunkSink, ChunkSource, PeerRate, ServePolicy } from '@homecloud/exchange'
import type { AbortOptions } from '@homecloud/interface'
import type { ChunkStore, IndexedChunk } from '@homecloud/store'
import type { Libp2p, PeerId } from '@libp2p/interface'

const log = logger(`${LOG_SCOPE}:content`)

/**
 * Serve whatever the store holds. The hook stays so that private share
 * content can be limited to the share's roster (the private-swarm wiring
 * passes its own policy); a denial looks exactly like "not held".
 */
export const SERVE_WHAT_IS_HELD: ServePolicy = () => true

export interface DeviceContentInit {
  /** LevelDB folder of the chunk store; in memory when absent (tests). */
  storePath?: string
  servePolicy: ServePolicy
}

/**
 * The content part of a config, checked.
 *
 * @throws {InvalidParametersError}
 */
export function resolveContentConfig (config: HomecloudNodeConfig): DeviceContentInit {
  const { storePath, servePolicy } = config
  if (storePath != null && (typeof storePath !== 'string' || !isAbsolute(storePath))) {
    throw new InvalidParametersError('config.storePath must be an absolute path when set')
  }
  if (storePath != null && (storePath === config.datastorePath || storePath === config.swarmDatastorePath)) {
    throw new InvalidParametersError('config.storePath must differ from the other databases\' folders')
  }
  if (servePolicy != null && typeof servePolicy !== 'function') {
    throw new InvalidParametersError('config.servePolicy must be a function (peer, cid) => boolean')
  }
  return { ...(storePath == null ? {} : { storePath }), servePolicy: servePolicy ?? SERVE_WHAT_IS_HELD }
}

/** Where a get of `root` into `output` builds its tree: hidden, next to the output, one per root. */
export function partialPathFor (output: string, root: CID): string {
  const name = basename(output)
  const base = Buffer.byteLength(name) > 200 ? createHash('sha256').update(name).digest('hex').slice(0, 16) : name
  // the tail of the CID is the tail of its digest: a partial of another root is never mistaken for this one
  return join(dirname(output), `.${base}.${root.toV1().toString().slice(-10)}.homecloud-partial`)
}

function notFoundToUndefined (err: unknown): undefined {
  const code = (err as { code?: string }).code
  if (code === 'ERR_NOT_FOUND' || code === 'ERR_UNSUPPORTED_HASH' || code === 'ERR_STORE_CLOSED') return undefined
  throw err
}

function withSignal (options: AbortOptions, timeoutMs: number): AbortSignal {
  return AbortSignal.any([AbortSignal.timeout(timeoutMs), ...(options.signal == null ? [] : [options.signal])])
}

async function exists (path: string): Promise<boolean> {
  return lstat(path).then(() => true, (err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return false
    throw err
  })
}

export class DeviceContent implements DeviceContentApi {
  private readonly init: DeviceContentInit
  private libp2p?: Libp2p
  private current?: ChunkStore
  /** Outputs of the gets running now: two gets into one place would share a partial output. */
  private readonly outputs = new Set<string>()
  readonly blocks: BlocksApi
  /** What the exchange serves from: the store while it is open, nothing otherwise. */
  private readonly source: ChunkSource = {
    get: async (cid, options) => this.current?.get(cid, options).catch(notFoundToUndefined)
  }

  constructor (init: DeviceContentInit) {
    this.init = init
    this.blocks = {
      stat: async (options) => this.store.stat(options),
      gc: async (options = {}) => {
        let blocks = 0
        let bytes = 0
        const { removedBlocks, removedBytes } = await this.store.gc({
          signal: options.signal,
          onProgress: (evt) => {
            blocks++
            bytes += evt.detail.bytes
            emit(options, { phase: 'gc', bytes, chunks: blocks })
          }
        })
        return { removedBlocks, removedBytes }
      },
      verify: async (options = {}) => {
        const result = await this.store.verify({
          signal: options.signal,
          onProgress: (evt) => {
            if (evt.type === 'store:verify:progress') emit(options, { phase: 'verify', bytes: 0, chunks: evt.detail.checked })
          }
        })
        return {
          checked: result.checked,
          bad: result.bad.map(entry => ({ ...entry, cid: entry.cid.toString() }))
        }
      }
    }
  }

  /** The exchange for libp2p's services map; it serves through the policy from whatever store is open. */
  exchangeService (): (components: ChunkExchangeComponents) => ChunkExchange {
    return chunkExchange({ serve: { source: this.source, policy: this.init.servePolicy } })
  }

  /** The libp2p node the exchange service runs in (set once it is created). */
  bind (libp2p: Libp2p): void {
    this.libp2p = libp2p
  }

  /** Opens the store (before libp2p starts serving from it). */
  async open (): Promise<void> {
    if (this.current != null) return
    // the memory store lives as long as the device (tests): it is never closed
    this.current = this.init.storePath == null ? createMemoryStore() : await createLevelStore({ path: this.init.storePath })
  }

  /** Closes the store (after libp2p stopped serving from it). */
  async close (): Promise<void> {
    if (this.current == null || this.init.storePath == null) return
    const store = this.current
    this.current = undefined
    await store.close()
  }

  /** Drops the store's caches for serving files (its places, open files, write buffer): see HomecloudNode.releaseCaches. */
  async releaseCaches (): Promise<void> {
    if (this.current instanceof IndexedChunkStore) await this.current.releaseCaches()
  }

  get store (): ChunkStore {
    if (this.current == null) throw new NodeNotStartedError('the chunk store is closed: start the device')
    return this.current
  }

  private get exchange (): ChunkExchange {
    const exchange = this.libp2p?.services[SERVICE.chunks] as ChunkExchange | undefined
    if (exchange == null) throw new NodeNotStartedError('the chunk exchange is not running')
    return exchange
  }

  async add (path: string, options: ContentOptions = {}): Promise<AddContentResult> {
    if (typeof path !== 'string' || !isAbsolute(path)) {
      throw new InvalidParametersError(`add needs an absolute path, got ${JSON.stringify(path)}`)
    }
    const totals = { files: 0, bytes: 0 }
    let chunks = 0
    let bytes = 0
    const root = await this.store.addPath(path, {
      signal: options.signal,
      onProgress: (evt) => {
        if (evt.type === 'store:add:scan') {
          Object.assign(totals, evt.detail)
          emit(options, { phase: 'scan', bytes: 0, bytesTotal: totals.bytes, chunks: 0, files: 0, filesTotal: totals.files })
        } else if (evt.type === 'store:add:progress') {
          if (evt.detail.bytes > bytes) chunks++
          bytes = evt.detail.bytes
          emit(options, { phase: 'index', bytes, bytesTotal: totals.bytes, chunks, files: evt.detail.files, filesTotal: totals.files })
        }
      }
    })
    const provided = await this.provide(root, options)
    log('added %s as %c (%d files, %d bytes, provided: %s)', path, root, totals.files, totals.bytes, provided)
    return { cid: root.toString(), files: totals.files, bytes: totals.bytes, provided }
  }

  /** Announces `root` in the DHT, bounded; a failure is logged, not thrown (the content is added either way). */
  private async provide (root: CID, options: AbortOptions): Promise<boolean> {
    if (this.libp2p?.services.dht == null) return false
    try {
      await this.libp2p.contentRouting.provide(root, { signal: withSignal(options, PROVIDE_TIMEOUT_MS) })
      return true
    } catch (err) {
      if (options.signal?.aborted === true) throw new AbortError(undefined, { cause: err })
      log.error('could not announce %c in the DHT - %e', root, err)
      return false
    }
  }

  async get (cid: string, output: string, options: GetContentOptions = {}): Promise<GetContentResult> {
    const root = parseCid(cid)
    if (typeof output !== 'string' || !isAbsolute(output) || resolve(output) !== output || basename(output) === '') {
      throw new InvalidParametersError(`get needs an absolute, normalised output path, got ${JSON.stringify(output)}`)
    }
    const from = options.from ?? []
    if (!Array.isArray(from) || from.length > MAX_PEERS_PER_FETCH) {
      throw new InvalidParametersError(`from must be a list of at most ${MAX_PEERS_PER_FETCH} multiaddrs`)
    }
    const addresses = from.map(address => checkPeerAddress(address, this.libp2p?.peerId))
    if (this.outputs.has(output)) throw new OutputExistsError(`a get into ${output} is already running`)
    this.outputs.add(output)
    try {
      return await this.runGet(root, output, addresses, options)
    } finally {
      this.outputs.delete(output)
    }
  }

  private async runGet (root: CID, output: string, from: string[], options: GetContentOptions): Promise<GetContentResult> {
    const store = this.store
    const exchange = this.exchange
    const parent = dirname(output)
    // the user chose this folder: a symlink on the way there is followed (names from peers never are)
    if (!(await stat(parent).then(st => st.isDirectory(), () => false))) {
      throw new NotFoundError(`the folder ${parent} does not exist`)
    }
    if (await exists(output)) throw new OutputExistsError(`${output} already exists: choose another output (get never overwrites)`)

    log('get %c into %s', root, output)
    emit(options, { phase: 'providers', bytes: 0, chunks: 0 })
    const peers = from.length > 0 ? await this.dialAll(from, options) : await this.findProviders(root, options)
    log('get %c: fetching from %d peers', root, peers.length)
    const wasPinned = await store.isPinned(root)
    // pinned first, so a gc during the get (or before a rerun) keeps the DAG nodes already fetched
    if (!wasPinned) await store.pin(root)
    try {
      return await this.fetchTree(store, exchange, root, output, peers, options)
    } catch (err) {
      if (!wasPinned) await store.unpin(root).catch(() => {})
      throw err
    }
  }

  private async fetchTree (store: ChunkStore, exchange: ChunkExchange, root: CID, output: string, peers: PeerId[], options: GetContentOptions): Promise<GetContentResult> {
    const { signal } = options
    // 1. the DAG nodes (directories, file nodes) into the block store; raw chunks wait for step 3
    let dagBlocks = 0
    if (root.code !== raw.code) {
      let nodes = 0
      const result = await exchange.fetch(root, {
        peers,
        signal,
        sink: storeSink(store),
        links: (cid, bytes) => {
          if (cid.code !== dagPb.code) return []
          const links = dagPb.decode(bytes).Links
          if ((nodes += links.length) > 2 * MAX_TREE_ENTRIES) throw new LimitExceededError(`the DAG of ${root.toString()} is too large`)
          return links.map(link => link.Hash).filter(child => child.code !== raw.code)
        },
        onProgress: (evt) => {
          const p = evt.detail.progress
          emit(options, { phase: 'dag', bytes: p.bytes, chunks: p.chunksDone, chunksTotal: p.chunksTotal, peers: p.peers })
        }
      })
      dagBlocks = result.chunks
    }

    log('get %c: %d DAG blocks fetched', root, dagBlocks)
    // 2. totals, and every name, size and kind checked before anything is written
    const getBlock: GetBlock = async (cid, o) => store.get(cid, o)
    const totals = { files: 0, directories: 0, symlinks: 0, bytes: 0, chunks: 0 }
    for await (const entry of walkTree(getBlock, root, options)) {
      if (entry.kind === 'directory') totals.directories++
      else if (entry.kind === 'symlink') totals.symlinks++
      else {
        totals.files++
        totals.bytes += entry.size ?? 0
        for await (const part of fileLeaves(getBlock, entry.cid, entry.size, options)) if (isLeaf(part)) totals.chunks++
      }
      emit(options, { phase: 'scan', bytes: 0, bytesTotal: totals.bytes, chunks: 0, chunksTotal: totals.chunks, files: totals.files })
    }

    log('get %c: %d files, %d bytes in %d chunks to place', root, totals.files, totals.bytes, totals.chunks)
    // 3. the tree and its file chunks, in batches, into the partial output
    const done = { receivedChunks: 0, receivedBytes: 0, reusedChunks: 0, reusedBytes: 0 }
    let peerRates: PeerRate[] = []
    const progress = (): ContentProgress => ({
      phase: 'data',
      bytes: done.receivedBytes + done.reusedBytes,
      bytesTotal: totals.bytes,
      chunks: done.receivedChunks + done.reusedChunks,
      chunksTotal: totals.chunks,
      reusedBytes: done.reusedBytes,
      reusedChunks: done.reusedChunks,
      files: totals.files,
      peers: peerRates
    })
    const partialRoot = partialPathFor(output, root)
    const partial = new PartialOutput({
      root: partialRoot,
      // has() first: a miss (the usual answer on a fresh get) then costs no error and its stack trace
      localCopy: async (cid, o) => await store.has(cid, o) ? store.get(cid, o).catch(notFoundToUndefined) : undefined,
      onChunk: (chunk) => {
        done[chunk.reused ? 'reusedChunks' : 'receivedChunks'] += chunk.places
        done[chunk.reused ? 'reusedBytes' : 'receivedBytes'] += chunk.bytes
        emit(options, progress())
      }
    })
    try {
      let batch = new Map<string, { cid: CID, places: Placement[] }>()
      let placed = 0
      const flush = async (): Promise<void> => {
        if (batch.size === 0) return
        await exchange.fetch([...batch.values()].map(entry => entry.cid), {
          peers,
          signal,
          sink: partial.sink(batch),
          onProgress: (evt) => { peerRates = evt.detail.progress.peers }
        })
        batch = new Map()
        placed = 0
      }
      for await (const entry of walkTree(getBlock, root, options)) {
        await partial.create(entry)
        if (entry.kind !== 'file') continue
        const file = partial.pathOf(entry)
        for await (const part of fileLeaves(getBlock, entry.cid, entry.size, options)) {
          if (!isLeaf(part)) {
            await partial.write({ file, offset: part.offset, length: part.bytes.length }, part.bytes, entry.cid)
            continue
          }
          const key = part.cid.toString()
          let chunk = batch.get(key)
          if (chunk === undefined) {
            chunk = { cid: part.cid, places: [] }
            batch.set(key, chunk)
          }
          chunk.places.push({ file, offset: part.offset, length: part.length })
          // a file of one repeated chunk makes few CIDs but many places: both are bounded
          if (batch.size >= GET_BATCH_CHUNKS || ++placed >= 4 * GET_BATCH_CHUNKS) await flush()
        }
      }
      await flush()
    } finally {
      await partial.close()
    }

    log('get %c: all chunks in place, making them durable', root)
    // 4. durable, then in place, then indexed (D7)
    emit(options, { ...progress(), phase: 'finish' })
    // directories with a mode or mtime last, deepest first: their mtime holds only once nothing in them changes
    const withMeta: Array<{ path: string, meta: EntryMeta }> = []
    for await (const entry of walkTree(getBlock, root, options)) {
      const path = partial.pathOf(entry)
      if (entry.kind === 'file') await settleFile(path, entry.size, entry.meta)
      else if (entry.kind === 'symlink') await applyMeta(path, 'symlink', entry.meta)
      else if (entry.meta !== undefined) withMeta.push({ path, meta: entry.meta })
      else await syncDirectory(path)
    }
    for (const directory of withMeta.reverse()) {
      await applyMeta(directory.path, 'directory', directory.meta)
      await syncDirectory(directory.path)
    }
    if (await exists(output)) throw new OutputExistsError(`${output} appeared during the get; the result stays in ${partialRoot}`)
    await rename(partialRoot, output)
    log('get %c: renamed into place, indexing', root)
    await syncDirectory(dirname(output))
    for await (const entry of walkTree(getBlock, root, options)) {
      if (entry.kind !== 'file') continue
      const path = join(output, ...entry.path)
      const chunks: IndexedChunk[] = []
      for await (const part of fileLeaves(getBlock, entry.cid, entry.size, options)) {
        if (isLeaf(part)) chunks.push({ cid: part.cid, offset: part.offset, length: part.length ?? (await lstat(path)).size })
      }
      await store.indexFile(path, chunks)
    }
    log('got %c into %s: %d files, %d bytes (%d received, %d reused)', root, output, totals.files, totals.bytes, done.receivedBytes, done.reusedBytes)
    return {
      cid: root.toString(),
      output,
      files: totals.files,
      directories: totals.directories,
      symlinks: totals.symlinks,
      bytes: totals.bytes,
      ...done,
      dagBlocks,
      peers: peers.map(peer => peer.toString())
    }
  }

  /** Dials every `--from` address; the get goes on with those that answer. */
  private async dialAll (addresses: string[], options: AbortOptions): Promise<PeerId[]> {
    const libp2p = this.libp2p
    if (libp2p == null) throw new NodeNotStartedError()
    const peers = new Map<string, PeerId>()
    const failures: Error[] = []
    await Promise.all(addresses.map(async address => {
      try {
        const connection = await libp2p.dial(parseMultiaddr(address, 'from'), { signal: withSignal(options, GET_DIAL_TIMEOUT_MS) })
        peers.set(connection.remotePeer.toString(), connection.remotePeer)
      } catch (err) {
        if (options.signal?.aborted === true) throw new AbortError(undefined, { cause: err })
        log('get: could not dial %s - %e', address, err)
        failures.push(new DialFailedError(`could not connect to ${address}: ${(err as Error).message}`, { cause: err }))
      }
    }))
    if (peers.size === 0) throw failures[0]
    return [...peers.values()]
  }

  /** Providers of `root` in the DHT (not this device), dialled; NoProvidersError when none answers. */
  private async findProviders (root: CID, options: AbortOptions): Promise<PeerId[]> {
    const libp2p = this.libp2p
    if (libp2p == null) throw new NodeNotStartedError()
    if (libp2p.services.dht == null) {
      throw new NoProvidersError(`no peers given for ${root.toString()} and the DHT is off: give --from MULTIADDR`)
    }
    const found = new Map<string, PeerId>()
    const signal = withSignal(options, FIND_PROVIDERS_TIMEOUT_MS)
    try {
      for await (const provider of libp2p.contentRouting.findProviders(root, { signal })) {
        if (provider.id.equals(libp2p.peerId)) continue
        found.set(provider.id.toString(), provider.id)
        if (found.size >= MAX_PROVIDERS) break
      }
    } catch (err) {
      if (options.signal?.aborted === true) throw new AbortError(undefined, { cause: err })
      // a timeout or a failed query still leaves the providers found so far
      log('get: looking for providers of %c ended - %e', root, err)
    }
    if (found.size === 0) {
      throw new NoProvidersError(`no providers of ${root.toString()} found in the DHT: give --from MULTIADDR of a device that has it`)
    }
    const reachable: PeerId[] = []
    await Promise.all([...found.values()].map(async peer => {
      try {
        await libp2p.dial(peer, { signal: withSignal(options, GET_DIAL_TIMEOUT_MS) })
        reachable.push(peer)
      } catch (err) {
        if (options.signal?.aborted === true) throw new AbortError(undefined, { cause: err })
        log('get: provider %p of %c is unreachable - %e', peer, root, err)
      }
    }))
    if (reachable.length === 0) {
      throw new NoProvidersError(`${found.size} providers of ${root.toString()} were found in the DHT, none could be reached`)
    }
    return reachable
  }
}

function emit (options: ContentOptions, progress: ContentProgress): void {
  options.onProgress?.(new CustomProgressEvent('content:progress', progress))
}

function parseCid (text: string): CID {
  if (typeof text !== 'string' || text.length === 0 || text.length > 256) {
    throw new InvalidParametersError('a CID must be a string of 1 to 256 characters')
  }
  let cid: CID
  try {
    cid = CID.parse(text)
  } catch (err) {
    throw new InvalidParametersError(`${JSON.stringify(text)} is not a CID`, { cause: err })
  }
  if (cid.code !== dagPb.code && cid.code !== raw.code) {
    throw new InvalidParametersError(`${text} is not a UnixFS file tree (codec 0x${cid.code.toString(16)})`)
  }
  return cid.toV1()
}

/** A `from` address must name the peer (Noise then proves it) and not be this device. */
function checkPeerAddress (address: string, self: PeerId | undefined): string {
  const ma = parseMultiaddr(address, 'from')
  const target = ma.getComponents().findLast(c => c.name === 'p2p')?.value
  if (target == null) throw new InvalidParametersError(`from: "${address}" must end with /p2p/<peer id>`)
  if (self != null && target === self.toString()) throw new InvalidParametersError('from: that is this device\'s own address')
  return address
}

/** The block store as the sink of DAG nodes. */
function storeSink (store: ChunkStore): ChunkSink {
  return {
    has: async (cid, options) => store.has(cid, options),
    put: async (cid, bytes, options) => { await store.put(cid, bytes, options) },
    get: async (cid, options) => store.get(cid, options).catch(notFoundToUndefined)
  }
}
