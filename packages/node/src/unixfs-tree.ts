/**
 * Reading a fetched UnixFS DAG out of the local block store, as a list of
 * entries to create and, per file, the places of its raw chunks. Everything a
 * peer sent is checked here before a path or an offset is derived from it:
 * names, sizes, depths and counts. Walks are iterative (DAGs can be deep).
 */
import * as dagPb from '@ipld/dag-pb'
import { MAX_BLOCK_SIZE, MAX_TREE_DEPTH, MAX_TREE_ENTRIES } from '@homecloud/store'
import { UnixFS } from 'ipfs-unixfs'
import * as raw from 'multiformats/codecs/raw'
import { MAX_ENTRY_NAME_BYTES, MAX_FILE_DAG_DEPTH } from './constants.js'
import { BadDagError, UnsafeNameError } from './errors.js'
import type { AbortOptions } from '@homecloud/interface'
import type { CID } from 'multiformats/cid'

/** Reads a block that must be in the local store (the DAG nodes were fetched first). */
export type GetBlock = (cid: CID, options?: AbortOptions) => Promise<Uint8Array>

/** UnixFS metadata a node carries, each part only when the DAG has it. */
export interface EntryMeta {
  /** Permission bits, 0o777 at most: set-id and sticky bits from a peer are dropped. */
  mode?: number
  /** Modification time in seconds since the epoch (with its fraction). */
  mtime?: number
}

export type TreeEntry =
  | { kind: 'directory', path: string[], cid: CID, meta?: EntryMeta }
  /** `size` is unknown only for a root that is a raw block (a one-chunk file): its length is what arrives. */
  | { kind: 'file', path: string[], cid: CID, size?: number, meta?: EntryMeta }
  | { kind: 'symlink', path: string[], cid: CID, target: string, meta?: EntryMeta }

/** A raw chunk of a file at its offset; `length` is unknown only for a raw root. */
export interface Leaf {
  cid: CID
  offset: number
  length?: number
}

/** Bytes a file node carries itself (UnixFS without raw leaves), at their offset. */
export interface InlineData {
  offset: number
  bytes: Uint8Array
}

interface Decoded {
  node: dagPb.PBNode
  unixfs: UnixFS
}

async function decode (getBlock: GetBlock, cid: CID, options: AbortOptions): Promise<Decoded> {
  if (cid.code !== dagPb.code) {
    throw new BadDagError(`${cid.toString()} is neither a UnixFS node (dag-pb) nor a raw chunk (codec 0x${cid.code.toString(16)})`)
  }
  const bytes = await getBlock(cid, options)
  try {
    const node = dagPb.decode(bytes)
    if (node.Data == null) throw new Error('the node has no UnixFS data')
    return { node, unixfs: UnixFS.unmarshal(node.Data) }
  } catch (err) {
    throw new BadDagError(`${cid.toString()} is not a valid UnixFS node: ${(err as Error).message}`, { cause: err })
  }
}

function toSize (value: bigint | number, what: string): number {
  const n = Number(value)
  if (!Number.isSafeInteger(n) || n < 0) throw new BadDagError(`${what} has an impossible size ${value.toString()}`)
  return n
}

const utf8 = new TextEncoder()

/** A directory entry name from a peer: one plain path component, or an error naming it. */
export function checkEntryName (name: string, where: string): void {
  const bytes = utf8.encode(name).length
  const reason = name === '' || name === '.' || name === '..'
    ? 'is not a file name'
    : name.includes('/') ? 'contains "/"' : name.includes('\0') ? 'contains NUL' : bytes > MAX_ENTRY_NAME_BYTES ? `is longer than ${MAX_ENTRY_NAME_BYTES} bytes` : undefined
  if (reason !== undefined) {
    throw new UnsafeNameError(`refusing entry ${JSON.stringify(name)} in ${where}: the name ${reason}`)
  }
}

function describe (path: string[]): string {
  return path.length === 0 ? 'the root' : JSON.stringify(path.join('/'))
}

/** Seconds either side of the epoch an mtime may be (year ±33,000: what a filesystem can hold). */
const MAX_MTIME_SECONDS = 2 ** 40

/**
 * The mode and mtime of a node, checked. ipfs-unixfs reports its default mode
 * (0644 / 0755) when a node has none, so only another mode counts as set: a
 * node that names the default gets what `get` creates anyway.
 */
function metaOf (unixfs: UnixFS, path: string[]): EntryMeta | undefined {
  const meta: EntryMeta = {}
  const defaultMode = unixfs.isDirectory() ? 0o755 : 0o644
  if (unixfs.type !== 'symlink' && unixfs.mode !== undefined && unixfs.mode !== defaultMode) meta.mode = unixfs.mode & 0o777
  if (unixfs.mtime !== undefined) {
    const secs = Number(unixfs.mtime.secs)
    const nsecs = unixfs.mtime.nsecs ?? 0
    if (!Number.isSafeInteger(secs) || Math.abs(secs) > MAX_MTIME_SECONDS || !Number.isInteger(nsecs) || nsecs < 0 || nsecs >= 1e9) {
      throw new BadDagError(`${describe(path)} has an impossible mtime (${unixfs.mtime.secs.toString()} s, ${nsecs} ns)`)
    }
    meta.mtime = secs + nsecs / 1e9
  }
  return meta.mode === undefined && meta.mtime === undefined ? undefined : meta
}

/**
 * The entries of the tree at `root`, parents before children, children in
 * name order. Throws BadDagError / UnsafeNameError on anything it will not
 * write, before it is yielded.
 */
export async function * walkTree (getBlock: GetBlock, root: CID, options: AbortOptions = {}): AsyncGenerator<TreeEntry> {
  const stack: Array<{ cid: CID, path: string[], size?: number }> = [{ cid: root, path: [] }]
  let entries = 0
  while (stack.length > 0) {
    options.signal?.throwIfAborted()
    const { cid, path, size } = stack.pop() as { cid: CID, path: string[], size?: number }
    if (++entries > MAX_TREE_ENTRIES) throw new BadDagError(`the tree has more than ${MAX_TREE_ENTRIES} entries`)
    if (cid.code === raw.code) {
      if (size !== undefined && size > MAX_BLOCK_SIZE) throw new BadDagError(`${describe(path)} is a single chunk of ${size} bytes; the limit is ${MAX_BLOCK_SIZE}`)
      yield { kind: 'file', path, cid, size }
      continue
    }
    const { node, unixfs } = await decode(getBlock, cid, options)
    switch (unixfs.type) {
      case 'file':
      case 'raw':
        yield { kind: 'file', path, cid, size: toSize(unixfs.fileSize(), describe(path)), meta: metaOf(unixfs, path) }
        break
      case 'symlink': {
        let target: string
        try {
          target = new TextDecoder('utf-8', { fatal: true }).decode(unixfs.data ?? new Uint8Array())
        } catch (err) {
          throw new BadDagError(`symlink ${describe(path)} has a target that is not UTF-8`, { cause: err })
        }
        if (target === '' || target.includes('\0')) throw new BadDagError(`symlink ${describe(path)} has an empty target or one with NUL`)
        yield { kind: 'symlink', path, cid, target, meta: metaOf(unixfs, path) }
        break
      }
      case 'directory': {
        if (path.length >= MAX_TREE_DEPTH) throw new BadDagError(`${describe(path)} is deeper than ${MAX_TREE_DEPTH} levels`)
        const names = new Set<string>()
        const children: Array<{ cid: CID, path: string[], size?: number }> = []
        for (const link of node.Links) {
          const name = link.Name ?? ''
          checkEntryName(name, describe(path))
          if (names.has(name)) throw new UnsafeNameError(`refusing ${describe(path)}: it names ${JSON.stringify(name)} twice`)
          names.add(name)
          children.push({ cid: link.Hash, path: [...path, name], size: link.Hash.code === raw.code ? link.Tsize : undefined })
        }
        yield { kind: 'directory', path, cid, meta: metaOf(unixfs, path) }
        // pushed in reverse so they come out in the order the directory lists them
        for (let i = children.length - 1; i >= 0; i--) stack.push(children[i])
        break
      }
      default:
        throw new BadDagError(`${describe(path)} is a UnixFS ${unixfs.type} node, which is not supported (sharded directories, metadata)`)
    }
  }
}

/**
 * The raw chunks of the file at `cid` (of `size` bytes when known), in file
 * order with their offsets, and the bytes file nodes carry inline. Sizes are
 * checked against the `blockSizes` of every node.
 */
export async function * fileLeaves (getBlock: GetBlock, cid: CID, size: number | undefined, options: AbortOptions = {}): AsyncGenerator<Leaf | InlineData> {
  const stack: Array<{ cid: CID, offset: number, size?: number, depth: number }> = [{ cid, offset: 0, size, depth: 0 }]
  while (stack.length > 0) {
    options.signal?.throwIfAborted()
    const item = stack.pop() as { cid: CID, offset: number, size?: number, depth: number }
    if (item.cid.code === raw.code) {
      if (item.size !== undefined && item.size > MAX_BLOCK_SIZE) throw new BadDagError(`chunk ${item.cid.toString()} is said to be ${item.size} bytes; the limit is ${MAX_BLOCK_SIZE}`)
      yield { cid: item.cid, offset: item.offset, length: item.size }
      continue
    }
    if (item.depth > MAX_FILE_DAG_DEPTH) throw new BadDagError(`file ${cid.toString()} is deeper than ${MAX_FILE_DAG_DEPTH} levels`)
    const { node, unixfs } = await decode(getBlock, item.cid, options)
    if (unixfs.type !== 'file' && unixfs.type !== 'raw') throw new BadDagError(`${item.cid.toString()} is a ${unixfs.type} node inside file ${cid.toString()}`)
    const nodeSize = toSize(unixfs.fileSize(), item.cid.toString())
    if (item.size !== undefined && nodeSize !== item.size) {
      throw new BadDagError(`file node ${item.cid.toString()} holds ${nodeSize} bytes; its parent says ${item.size}`)
    }
    if (node.Links.length !== unixfs.blockSizes.length) {
      throw new BadDagError(`file node ${item.cid.toString()} has ${node.Links.length} links but ${unixfs.blockSizes.length} block sizes`)
    }
    const data = unixfs.data ?? new Uint8Array()
    if (data.length > 0) yield { offset: item.offset, bytes: data }
    let offset = item.offset + data.length
    const children: Array<{ cid: CID, offset: number, size: number, depth: number }> = []
    for (let i = 0; i < node.Links.length; i++) {
      const childSize = toSize(unixfs.blockSizes[i], item.cid.toString())
      children.push({ cid: node.Links[i].Hash, offset, size: childSize, depth: item.depth + 1 })
      offset += childSize
    }
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i])
  }
}

export function isLeaf (part: Leaf | InlineData): part is Leaf {
  return 'cid' in part
}
