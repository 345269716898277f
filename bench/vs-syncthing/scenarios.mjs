// The data and the changes of the scenarios. Each change is split into
// `prepare` (slow work outside the share: copying, writing a new version next to it) and
// `apply` (the change itself, as instant as the filesystem allows: a rename or a one-byte
// write), so the clock starts when the share actually changes. The same steps run on a
// master copy first, whose hashes are what every receiver must end up with.
import { randomBytes, randomInt } from 'node:crypto'
import { cp, mkdir, open, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { MiB, writeRandomFile } from '../util.mjs'

const KiB = 1024

/** Source trees the scenarios copy from, generated once (random, so nothing dedups). */
export async function makePool (pool, { size, smallCount, renameSize, tinyCount }) {
  await mkdir(join(pool, 'a'), { recursive: true })
  await mkdir(join(pool, 'd'), { recursive: true })
  await writeRandomFile(join(pool, 'a', 'big.bin'), size)
  await writeFiles(join(pool, 'a', 'small'), smallCount, () => randomInt(KiB, 64 * KiB + 1))
  await writeRandomFile(join(pool, 'd', 'movie.bin'), renameSize)
  await writeFiles(join(pool, 'e'), tinyCount, () => randomInt(1, KiB + 1))
}

/** `count` random files of `sizeOf()` bytes, 100 to a folder. */
async function writeFiles (root, count, sizeOf) {
  for (let i = 0; i < count; i++) {
    const dir = join(root, `d${String(Math.floor(i / 100)).padStart(3, '0')}`)
    if (i % 100 === 0) await mkdir(dir, { recursive: true })
    await writeFile(join(dir, `f${String(i).padStart(5, '0')}.bin`), randomBytes(sizeOf()))
  }
}

/** Copy a pool tree into the stage, then move it into the share in one rename. */
function moveIn (pool, name) {
  return {
    prepare: async ({ stage }) => { await cp(join(pool, name), join(stage, name), { recursive: true }) },
    apply: async ({ share, stage }) => { await rename(join(stage, name), join(share, name)) }
  }
}

export function scenarios ({ pool, size, smallCount, renameSize, tinyCount }) {
  const big = join('a', 'big.bin')
  const prefix = Buffer.from('0123456789')
  return [
    {
      id: 'a',
      title: `initial: ${mbText(size)} random file + ${smallCount} files of 1–64 KiB`,
      goal: { speedup: 2 },
      ...moveIn(pool, 'a')
    },
    {
      id: 'b',
      title: `flip 1 byte in the middle of the ${mbText(size)} file`,
      goal: { seconds: 3 },
      prepare: async () => {},
      apply: async ({ share }) => {
        const file = await open(join(share, big), 'r+')
        try {
          const at = Math.floor(size / 2)
          const byte = Buffer.alloc(1)
          await file.read(byte, 0, 1, at)
          byte[0] ^= 0xff
          await file.write(byte, 0, 1, at)
        } finally {
          await file.close()
        }
      }
    },
    {
      id: 'c',
      title: `insert 10 bytes at the start of the ${mbText(size)} file`,
      goal: { seconds: 5, wireBytes: 2 * MiB },
      prepare: async ({ share, stage }) => {
        await writeRandomFile(join(stage, 'big.bin'), 0, { prefix, seedFrom: join(share, big) })
      },
      apply: async ({ share, stage }) => { await rename(join(stage, 'big.bin'), join(share, big)) }
    },
    {
      id: 'd0',
      title: `(setup for d) add a ${mbText(renameSize)} file`,
      ...moveIn(pool, 'd')
    },
    {
      id: 'd',
      title: `rename the ${mbText(renameSize)} file`,
      goal: { seconds: 2, wireBytes: 100 * KiB },
      prepare: async () => {},
      apply: async ({ share }) => { await rename(join(share, 'd', 'movie.bin'), join(share, 'd', 'movie-renamed.bin')) }
    },
    {
      id: 'e',
      title: `add ${tinyCount} tiny files (1 B–1 KiB)`,
      goal: { seconds: 15 },
      ...moveIn(pool, 'e')
    }
  ]
}

export function mbText (bytes) {
  if (bytes >= 1024 * MiB && bytes % (1024 * MiB) === 0) return `${bytes / (1024 * MiB)} GiB`
  return `${Math.round(bytes / MiB)} MiB`
}
