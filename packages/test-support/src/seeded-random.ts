/** mulberry32: a small seeded PRNG, so a property test or a failing run can be replayed from its seed. */
export function seededRandom (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** `size` bytes from a generator seeded by `random` (incompressible, different for every draw). */
export function seededBytes (random: () => number, size: number): Buffer {
  const out = Buffer.allocUnsafe(Math.ceil(size / 4) * 4)
  const next = seededRandom(Math.floor(random() * 2 ** 32))
  for (let i = 0; i < out.byteLength; i += 4) out.writeUInt32LE(Math.floor(next() * 2 ** 32), i)
  return out.subarray(0, size)
}
