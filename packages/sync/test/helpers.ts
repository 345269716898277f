import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { entryFromScan, scanShare, tombstoneFromScan, type SnapshotBlock, type SnapshotBlocks, type ChunkFile, type ChunkFileFn, type LocalEntry, type ScanInit, type ScanResult, type ShareFs } from '../src/index.js'

/** A fresh temp directory; remove it with `rm(dir, { recursive: true })`. */
export async function tempDir (prefix = 'hc-sync-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix))
}

export async function removeDir (dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true })
}

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

/** mulberry32: a small seeded PRNG so property tests are reproducible. */
export function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Waits until `fn` returns a truthy value, or fails after `timeout` ms. */
export async function waitFor<T> (fn: () => T | Promise<T>, { timeout = 10_000, interval = 10 } = {}): Promise<T> {
  const end = Date.now() + timeout
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > end) throw new Error('waitFor: condition not met in time')
    await new Promise(resolve => setTimeout(resolve, interval))
  }
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
