/**
 * Dropping the clean pages of the program's own code from an idle daemon (issue 5 f).
 *
 * After a session of work about 50 MiB of a daemon's RSS are pages of the Node binary (V8,
 * ICU, OpenSSL, libuv code and read-only data) and of its shared libraries, touched once
 * and still mapped. They are clean copies of the files: the kernel can read them back from
 * the page cache at the next touch (a minor fault, no disk read while the file stays cached).
 * `madvise(MADV_DONTNEED)` unmaps them from this process; an idle daemon then holds only what
 * it runs while idle. MADV_PAGEOUT would not do: it skips pages other processes map too, and
 * every node process maps the same binary.
 *
 * Only pages that are still the file's own are dropped: in a private mapping a page the
 * process wrote (relocations of read-only-after-relocation data) is anonymous, and dropping
 * it would bring back the file's unrelocated bytes. `/proc/self/pagemap` says per page
 * whether it is present and whether it is a file page; only non-writable mappings of the
 * executable and of shared objects (`.so`, `.node`) are looked at, never data files.
 */
import { closeSync, openSync, readFileSync, readSync, realpathSync } from 'node:fs'
import { logger } from '@libp2p/logger'

const log = logger('homecloud:daemon:trim')

const MADV_DONTNEED = 4
/** pagemap entries read per call: 8 bytes each, so 64 KiB of buffer. */
const PAGEMAP_WINDOW = 8192
/** pagemap entry bits (proc(5)): the page is present; it is a file page or shared anonymous. */
const PRESENT = 1n << 63n
const FILE_PAGE = 1n << 61n

export interface Mapping {
  start: number
  end: number
  path: string
}

/**
 * The mappings of `/proc/self/maps` whose clean pages may be dropped: not writable, of the
 * executable `exePath` or of a shared object, with the file still in place.
 */
export function codeMappings (maps: string, exePath: string): Mapping[] {
  const mappings: Mapping[] = []
  for (const line of maps.split('\n')) {
    const match = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \S+\s+(\/.*)$/.exec(line)
    if (match === null || match[3][1] === 'w') {
      continue
    }
    const path = match[4]
    if (path === exePath || /\.so(\.\d+)*$/.test(path) || path.endsWith('.node')) {
      mappings.push({ start: parseInt(match[1], 16), end: parseInt(match[2], 16), path })
    }
  }
  return mappings
}

/**
 * Runs of pages that are present and still file pages, from pagemap entries (8 bytes each,
 * little-endian): `[first page, count]`, pages counted from the start of `entries`.
 */
export function cleanFileRuns (entries: Uint8Array): Array<[number, number]> {
  const view = new DataView(entries.buffer, entries.byteOffset, entries.byteLength)
  const runs: Array<[number, number]> = []
  let runStart = -1
  const pages = Math.floor(entries.byteLength / 8)
  for (let page = 0; page < pages; page++) {
    const entry = view.getBigUint64(page * 8, true)
    const clean = (entry & PRESENT) !== 0n && (entry & FILE_PAGE) !== 0n
    if (clean && runStart < 0) {
      runStart = page
    } else if (!clean && runStart >= 0) {
      runs.push([runStart, page - runStart])
      runStart = -1
    }
  }
  if (runStart >= 0) {
    runs.push([runStart, pages - runStart])
  }
  return runs
}

type Madvise = (address: number, length: number, advice: number) => number

/**
 * Drops the clean code pages of this process; returns the bytes dropped. `pageSize` is the
 * kernel's (4 KiB on x86, 4 or 16 KiB on a Raspberry Pi): pagemap has one entry per page.
 */
export function dropCleanCodePages (madvise: Madvise, pageSize: number): number {
  const mappings = codeMappings(readFileSync('/proc/self/maps', 'latin1'), realpathSync(process.execPath))
  const pagemap = openSync('/proc/self/pagemap', 'r')
  const entries = new Uint8Array(PAGEMAP_WINDOW * 8)
  let dropped = 0
  try {
    for (const { start, end } of mappings) {
      for (let first = start / pageSize; first < end / pageSize; first += PAGEMAP_WINDOW) {
        const pages = Math.min(PAGEMAP_WINDOW, end / pageSize - first)
        const read = readSync(pagemap, entries, 0, pages * 8, first * 8)
        for (const [page, count] of cleanFileRuns(entries.subarray(0, read))) {
          if (madvise((first + page) * pageSize, count * pageSize, MADV_DONTNEED) === 0) {
            dropped += count * pageSize
          }
        }
      }
    }
  } finally {
    closeSync(pagemap)
  }
  return dropped
}

/** The subset of a koffi library used here. */
export interface NativeLibrary {
  func(signature: string): (...args: unknown[]) => unknown
}

/**
 * The dropper bound to libc's `madvise`, once pagemap is known to be readable here; undefined
 * where it is not (not Linux, a restricted /proc): the trim then keeps these pages.
 */
export function filePageDropper (libc: NativeLibrary): (() => number) | undefined {
  try {
    const madvise = libc.func('int madvise(uintptr_t addr, size_t len, int advice)') as Madvise
    const pageSize = (libc.func('int getpagesize()') as () => number)()
    if (!Number.isInteger(pageSize) || pageSize < 4096 || (pageSize & (pageSize - 1)) !== 0) throw new Error(`odd page size ${pageSize}`)
    closeSync(openSync('/proc/self/pagemap', 'r'))
    return () => dropCleanCodePages(madvise, pageSize)
  } catch (err) {
    log('code pages are not dropped at idle (no madvise or pagemap) - %e', err)
    return undefined
  }
}
