import { spawn } from 'node:child_process'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { createLevelStore, type ChunkStore } from '@homecloud/store'
import { removeDir, tempDir, waitFor as waitUntil, type WaitForOptions } from '@homecloud/test-support'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { ShareHistory } from '../src/history.js'
import { MemoryShareKv } from '../src/share-kv.js'
import { nodeFs } from '../src/fs.js'
import { entryFromScan, inotifyQueueLimit, scanShare, tombstoneFromScan, type SnapshotBlock, type SnapshotBlocks, type ChunkFile, type ChunkFileFn, type LocalEntry, type ScanInit, type ScanResult, type ShareFs } from '../src/index.js'

export { inTempDir, removeDir, tempDir } from '@homecloud/test-support'

export async function rawCid (bytes: Uint8Array): Promise<CID> {
  return CID.createV1(raw.code, await sha256.digest(bytes))
}

/**
 * Test double of the store's chunker: fixed-size chunks, sha2-256 raw CIDs,
 * read through a ShareFs. Counts calls so tests can see what was rehashed.
 */
export function fixedChunker (fs: ShareFs, size = 4): ChunkFileFn & { calls: string[], blocks: Map<string, Uint8Array> } {
  const calls: string[] = []
  const blocks = new Map<string, Uint8Array>()
  const fn = async (path: string): Promise<ChunkFile> => {
    calls.push(path)
    const handle = await fs.openRead(path)
    const chunks: ChunkFile['chunks'] = []
    try {
      for (let offset = 0; ; offset += size) {
        const buf = new Uint8Array(size)
        const n = await handle.read(buf, offset)
        if (n === 0) break
        const bytes = buf.slice(0, n)
        const cid = await rawCid(bytes)
        blocks.set(cid.toString(), bytes)
        chunks.push({ cid, offset, length: n })
        if (n < size) break
      }
    } finally {
      await handle.close()
    }
    return { chunks }
  }
  return Object.assign(fn, { calls, blocks })
}

/** test-support's waitFor with the bound sync's specs were written against (10 s, polled every 10 ms). */
export async function waitFor<T> (fn: () => T | Promise<T>, options: WaitForOptions = {}): Promise<NonNullable<T>> {
  return waitUntil(fn, { timeout: 10_000, interval: 10, ...options })
}

export const text = (s: string): Uint8Array => new TextEncoder().encode(s)

export const SCAN_DEVICE = '12D3KooWLocalLocalLocalLocalLocalLocalLocalLocalLocal'

/** Every result of one scan. */
export async function scanAll (init: ScanInit, onProgress?: (e: { type: string }) => void): Promise<ScanResult[]> {
  const out: ScanResult[] = []
  for await (const r of scanShare(init, { onProgress })) out.push(r)
  return out
}

/** The index share sync would keep, built from scan results. */
export function toIndex (results: ScanResult[], prev = new Map<string, LocalEntry>()): Map<string, LocalEntry> {
  const index = new Map(prev)
  for (const r of results) {
    if (r.kind === 'entry') {
      const next = entryFromScan(index.get(r.entry.path), r.entry, SCAN_DEVICE)
      if (next != null) index.set(r.entry.path, next)
    } else if (r.kind === 'deleted') {
      index.set(r.path, tombstoneFromScan(index.get(r.path) as LocalEntry, SCAN_DEVICE, 0))
    }
  }
  return index
}

/** Snapshot blocks held in memory (a missing one throws). */
export function blockMap (blocks: SnapshotBlock[]): SnapshotBlocks & { map: Map<string, Uint8Array> } {
  const map = new Map(blocks.map(b => [b.cid.toString(), b.bytes]))
  return {
    map,
    get: async (cid) => map.get(cid.toString()) ?? Promise.reject(new Error(`no block ${cid.toString()}`))
  }
}

/** Runs a crash-writer child (`node script ...args`) until it prints "paused", then SIGKILLs it and waits for the exit. */
export async function killWhenPaused (script: string, args: string[]): Promise<void> {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => { if (d.toString().includes('paused')) resolve() })
    child.on('exit', (code) => { reject(new Error(`child exited (${code}) before pausing`)) })
  })
  const exited = new Promise(resolve => child.once('exit', resolve))
  child.kill('SIGKILL')
  await exited
}

/** A share folder `root` and its history on a real LevelDB store, in a new temp folder; `close` removes it all. */
export async function shareWithHistory (): Promise<{ root: string, store: ChunkStore, history: ShareHistory, close: () => Promise<void> }> {
  const dir = await tempDir()
  const root = join(dir, 'share')
  await mkdir(root)
  const store = await createLevelStore({ path: join(dir, 'store') })
  const history = await ShareHistory.load({ share: 's', kv: new MemoryShareKv(), store, fs: nodeFs, root, retentionMs: 3_600_000, maxBytes: 1 << 20 })
  return {
    root,
    store,
    history,
    close: async () => {
      await store.close()
      await removeDir(dir)
    }
  }
}

/** Why a test that fills the kernel's inotify queue cannot run here, or false. */
export function skipQueueOverflow (): string | false {
  if (process.platform !== 'linux') return 'inotify is Linux only'
  // a bigger queue takes more files to fill than a unit test should write
  return inotifyQueueLimit() > 65_536 ? `fs.inotify.max_queued_events is ${inotifyQueueLimit()}` : false
}
