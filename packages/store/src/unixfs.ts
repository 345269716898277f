import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import * as raw from 'multiformats/codecs/raw'
import { MAX_DIRECTORY_NODE_SIZE, MAX_LINKS_PER_NODE } from './constants.js'
import { LimitExceededError } from './errors.js'
import { blockCid } from './hash.js'
import type { CID } from 'multiformats/cid'

/**
 * UnixFS DAGs over chunks, the same trees kubo and ipfs-unixfs-importer build
 * with `--cid-version=1 --raw-leaves` and the balanced layout (174 links per
 * node): encoding is left to ipfs-unixfs and @ipld/dag-pb, only the layout is here.
 */

/** A node of a DAG and the bytes of all blocks under it (dag-pb's Tsize). */
export interface DagEntry {
  cid: CID
  size: number
}

/** A leaf of a file: a raw chunk. */
export interface Leaf {
  cid: CID
  length: number
}

/** A named child of a directory. */
export interface DirectoryEntry extends DagEntry {
  name: string
}

/** Where new DAG nodes go. */
export type PutBlock = (cid: CID, bytes: Uint8Array) => Promise<void>

interface FileLevelNode extends DagEntry {
  /** Bytes of file content under this node. */
  fileSize: number
}

async function encodeNode (node: dagPb.PBNode, put: PutBlock): Promise<{ cid: CID, bytes: Uint8Array }> {
  const bytes = dagPb.encode(dagPb.prepare(node))
  const cid = await blockCid(dagPb.code, bytes)
  await put(cid, bytes)
  return { cid, bytes }
}

/**
 * The root of a file made of `leaves` (in order). An empty file is the empty
 * raw block, stored with `put`; a one-chunk file is its chunk.
 */
export async function buildFile (leaves: Leaf[], put: PutBlock): Promise<DagEntry> {
  if (leaves.length === 0) {
    const bytes = new Uint8Array(0)
    const cid = await blockCid(raw.code, bytes)
    await put(cid, bytes)
    return { cid, size: 0 }
  }
  if (leaves.length === 1) {
    return { cid: leaves[0].cid, size: leaves[0].length }
  }
  let level: FileLevelNode[] = leaves.map(leaf => ({ cid: leaf.cid, size: leaf.length, fileSize: leaf.length }))
  while (level.length > 1) {
    const next: FileLevelNode[] = []
    for (let i = 0; i < level.length; i += MAX_LINKS_PER_NODE) {
      const children = level.slice(i, i + MAX_LINKS_PER_NODE)
      const unixfs = new UnixFS({ type: 'file', blockSizes: children.map(c => BigInt(c.fileSize)) })
      const links = children.map(c => ({ Name: '', Tsize: c.size, Hash: c.cid }))
      const { cid, bytes } = await encodeNode({ Data: unixfs.marshal(), Links: links }, put)
      next.push({
        cid,
        size: bytes.length + children.reduce((sum, c) => sum + c.size, 0),
        fileSize: children.reduce((sum, c) => sum + c.fileSize, 0)
      })
    }
    level = next
  }
  return { cid: level[0].cid, size: level[0].size }
}

/** A UnixFS directory node; dag-pb's `prepare` sorts the links by name. */
export async function buildDirectory (path: string, entries: DirectoryEntry[], put: PutBlock): Promise<DagEntry> {
  const node = dagPb.prepare({
    Data: new UnixFS({ type: 'directory' }).marshal(),
    Links: entries.map(e => ({ Name: e.name, Tsize: e.size, Hash: e.cid }))
  })
  const bytes = dagPb.encode(node)
  if (bytes.length > MAX_DIRECTORY_NODE_SIZE) {
    throw new LimitExceededError(`directory ${path} has too many entries (${entries.length}) for one node; sharded directories are not supported`)
  }
  const cid = await blockCid(dagPb.code, bytes)
  await put(cid, bytes)
  return { cid, size: bytes.length + entries.reduce((sum, e) => sum + e.size, 0) }
}

/** A UnixFS symlink node: the link is recorded, never followed. */
export async function buildSymlink (target: string, put: PutBlock): Promise<DagEntry> {
  const unixfs = new UnixFS({ type: 'symlink', data: new TextEncoder().encode(target) })
  const { cid, bytes } = await encodeNode({ Data: unixfs.marshal(), Links: [] }, put)
  return { cid, size: bytes.length }
}

