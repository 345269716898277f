// Shared helpers of the benchmarks: size arguments, random files, a temp dir under bench/.work.
import { randomFillSync } from 'node:crypto'
import { mkdir, open, rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const MiB = 1024 * 1024

/** "1G", "256M", "64K" or a byte count. */
export function parseSize (text, fallback) {
  if (text == null) return fallback
  const m = /^(\d+(?:\.\d+)?)([KMG]i?B?)?$/i.exec(text)
  if (m == null) throw new Error(`bad size ${text}: use e.g. 1G, 256M, 1048576`)
  const unit = { K: 1024, M: MiB, G: 1024 * MiB }[(m[2] ?? '').charAt(0).toUpperCase()] ?? 1
  return Math.round(Number(m[1]) * unit)
}

export function mb (bytes) {
  return (bytes / MiB).toFixed(2) + ' MiB'
}

/** A fresh directory under bench/.work (gitignored); remove it with `rm(dir, { recursive: true })`. */
export async function workDir (name) {
  const dir = join(dirname(fileURLToPath(import.meta.url)), '.work', `${name}-${process.pid}`)
  await mkdir(dir, { recursive: true })
  return dir
}

/** Writes `size` random bytes to `path`, preceded by `prefix`, in 4 MiB pieces. */
export async function writeRandomFile (path, size, { prefix, seedFrom } = {}) {
  const out = await open(path, 'w')
  try {
    if (prefix != null) await out.write(prefix)
    if (seedFrom != null) {
      // copy another file's bytes (for "same file with an insert")
      const src = await open(seedFrom, 'r')
      const buf = Buffer.allocUnsafe(4 * MiB)
      try {
        for (let pos = 0; ;) {
          const { bytesRead } = await src.read(buf, 0, buf.length, pos)
          if (bytesRead === 0) break
          await out.write(buf.subarray(0, bytesRead))
          pos += bytesRead
        }
      } finally {
        await src.close()
      }
      return
    }
    const buf = Buffer.allocUnsafe(4 * MiB)
    for (let left = size; left > 0; left -= buf.length) {
      randomFillSync(buf)
      await out.write(buf.subarray(0, Math.min(left, buf.length)))
    }
  } finally {
    await out.close()
  }
}

export async function removeDir (dir) {
  await rm(dir, { recursive: true, force: true })
}

/** Polls `fn` every 200 ms until it returns true (errors count as not yet), at most `timeoutMs`. */
export async function until (what, fn, timeoutMs) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    let last
    try {
      if (await fn()) return
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs} ms${last == null ? '' : `: ${last.message}`}`)
    await new Promise(resolve => setTimeout(resolve, 200))
  }
}

/** Flips one byte in the middle of the SIZE-byte file at `path`, in place (issue 5 b). */
export async function flipMiddleByte (path, size) {
  const handle = await open(path, 'r+')
  try {
    const b = Buffer.alloc(1)
    await handle.read(b, 0, 1, Math.floor(size / 2))
    b[0] ^= 0xff
    await handle.write(b, 0, 1, Math.floor(size / 2))
  } finally {
    await handle.close()
  }
}
