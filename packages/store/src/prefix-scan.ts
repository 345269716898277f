/** The part of a LevelDB iterator an ordered pass needs. */
export interface SeekableIterator {
  seek(target: string): void
  nextv(size: number): Promise<Array<[string, string]>>
}

/**
 * Orders strings as LevelDB orders their UTF-8 bytes (code point order).
 * `<` compares UTF-16 units, where an astral character (a surrogate pair)
 * sorts before U+E000–U+FFFF: file names can hold both.
 */
export function byteOrder (a: string, b: string): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x === y) continue
    const surrogateX = x >= 0xd800 && x <= 0xdfff
    const surrogateY = y >= 0xd800 && y <= 0xdfff
    if (surrogateX !== surrogateY) return surrogateX ? 1 : -1
    return x - y
  }
  return a.length - b.length
}

export interface PrefixScanInit {
  /** Entries read per step. */
  step: number
  /** Most entries kept per prefix (the rest of a prefix's entries are skipped). */
  cap: number
  /** Once this many entries are kept, the prefixes not reached yet are left unread (`undefined`): bounds the memory of a long pass. */
  budget?: number
}

/**
 * The entries under each of `prefixes` (sorted by `byteOrder`, distinct, none a prefix of
 * another) in one ordered pass over `iterator`, whose range must start at or
 * before the first prefix and end after the last. A seek only for a prefix
 * the entries read so far do not settle, then steps of `step` entries: where
 * the range holds few entries among the prefixes (new paths, new chunks), one
 * step settles many; where it holds many, a prefix costs a seek and a step
 * (no iterator opened and closed per prefix).
 */
export async function scanPrefixes (iterator: SeekableIterator, prefixes: readonly string[], init: PrefixScanInit): Promise<Array<Array<[string, string]> | undefined>> {
  const { step: stepSize, cap, budget = Number.POSITIVE_INFINITY } = init
  const out: Array<Array<[string, string]> | undefined> = prefixes.map(() => [])
  let entries: Array<[string, string]> = []
  let at = 0
  /** The iterator reached the end of its range: nothing is past `entries`. */
  let end = false
  let kept = 0
  const step = async (): Promise<void> => {
    entries = await iterator.nextv(stepSize)
    at = 0
    // only an empty step says so: a step may stop short when its entries reach the iterator's bytes cap
    end = entries.length === 0
  }
  for (let i = 0; i < prefixes.length; i++) {
    if (kept >= budget) {
      out.fill(undefined, i)
      break
    }
    const prefix = prefixes[i]
    while (at < entries.length && byteOrder(entries[at][0], prefix) < 0) at++
    if (at === entries.length) {
      if (end) break
      iterator.seek(prefix)
      await step()
    }
    // entries from here on were read in one run from a place at or before `prefix`: none of its entries is missed
    const found: Array<[string, string]> = []
    for (;;) {
      while (at < entries.length && entries[at][0].startsWith(prefix)) {
        if (found.length < cap) found.push(entries[at])
        at++
      }
      if (at < entries.length || end || found.length >= cap) break
      await step()
    }
    out[i] = found
    kept += found.length
  }
  return out
}
