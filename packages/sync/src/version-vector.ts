/**
 * Per-file version vectors: device id → counter of changes that device made
 * to the file. They order changes without reading any clock (RELIABILITY:
 * clock skew). Counters are never read as time.
 */
export type VersionVector = Readonly<Record<string, number>>

export type VersionOrder = 'equal' | 'greater' | 'less' | 'concurrent'

/** How `a` relates to `b`: 'greater' when `a` dominates (has seen every change of `b` and more). */
export function compareVersions (a: VersionVector, b: VersionVector): VersionOrder {
  let aAhead = false
  let bAhead = false
  for (const device of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const x = a[device] ?? 0
    const y = b[device] ?? 0
    if (x > y) aAhead = true
    else if (y > x) bAhead = true
  }
  if (aAhead && bAhead) return 'concurrent'
  if (aAhead) return 'greater'
  if (bAhead) return 'less'
  return 'equal'
}

/** The least vector that dominates or equals both. */
export function mergeVersions (a: VersionVector, b: VersionVector): VersionVector {
  const out: Record<string, number> = { ...a }
  for (const [device, n] of Object.entries(b)) {
    if (n > (out[device] ?? 0)) out[device] = n
  }
  return sortKeys(out)
}

/** `v` with one more change by `device`. */
export function bumpVersion (v: VersionVector, device: string): VersionVector {
  return sortKeys({ ...v, [device]: (v[device] ?? 0) + 1 })
}

/** Is `v` a well-formed vector (non-empty keys, counters positive safe integers, at most `maxDevices`)? */
export function isVersionVector (v: unknown, maxDevices: number): v is VersionVector {
  if (v == null || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) return false
  const entries = Object.entries(v)
  if (entries.length > maxDevices) return false
  return entries.every(([k, n]) => k.length > 0 && Number.isSafeInteger(n) && (n as number) > 0)
}

function sortKeys (v: Record<string, number>): VersionVector {
  return Object.fromEntries(Object.entries(v).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0))
}
