// Share scan benchmark (issue 5, the sending side): the scanner as the daemon runs it
// (scanShare + the store's chunker + store.indexFile into LevelDB), in the same run as
// store.addPath of the same file:
//   big:   first scan of a SIZE random file, then one byte flipped in its middle and rescanned;
//   tiny:  COUNT new files of 1 B–1 KiB scanned, then scanned again unchanged.
// Goals: the rescan of a changed big file at addPath speed; 10,000 tiny files well under 2 s.
// Usage: node --max-semi-space-size=2 bench/scan.mjs [size=256M] [count=10000] [rounds=2] [modes=serial,parallel]
// (serial: one file at a time through one ChunkReader, as share-service.ts chunked before;
// parallel: the scanner's window of entries in flight with store.chunkFile)
// (the daemon runs with --max-semi-space-size=2: run the script under it too)
import { open } from 'node:fs/promises'
import { join } from 'node:path'
import { createLevelStore } from '@homecloud/store'
import { ChunkReader } from '@homecloud/store'
import { nodeFs, scanShare } from '@homecloud/sync'
import { constants as fsConstants } from 'node:fs'
import { MiB, flipMiddleByte, parseSize, removeDir, workDir, writeRandomFile } from './util.mjs'
import { mkdir, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'

const size = parseSize(process.argv[2], 256 * MiB)
const count = Number(process.argv[3] ?? 10_000)
const rounds = Number(process.argv[4] ?? 2)
const modes = (process.argv[5] ?? 'serial,parallel').split(',')
let mode = modes[0]

async function timed (fn) {
  const cpu = process.cpuUsage()
  const start = performance.now()
  const value = await fn()
  const used = process.cpuUsage(cpu)
  return { value, seconds: (performance.now() - start) / 1000, cpu: (used.user + used.system) / 1e6 }
}

/** The daemon's chunkFile as it was (share-service.ts): one reader, files one at a time, then indexed in place. */
function serialChunker ({ store }) {
  const reader = new ChunkReader()
  let chunking = Promise.resolve()
  return async (path, options) => {
    const run = chunking.catch(() => {}).then(async () => {
      const handle = await open(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW)
      const chunks = []
      try {
        for await (const c of reader.chunks(handle, options)) chunks.push(c)
      } finally {
        await handle.close()
      }
      return chunks
    })
    chunking = run
    const chunks = await run
    await store.indexFile(path, chunks, options)
    return { chunks }
  }
}

const MODES = {
  serial: { chunker: serialChunker, concurrency: 1 },
  parallel: { chunker: ({ store }) => async (path, options) => store.chunkFile(path, options), concurrency: undefined }
}

/** One scan of `root` over `index` (a Map, updated in place as the share index would be). */
async function scan (root, store, index) {
  const chunkFile = MODES[mode].chunker({ store })
  const concurrency = MODES[mode].concurrency
  let hashed = 0
  let errors = 0
  for await (const r of scanShare({ fs: nodeFs, root, chunkFile, previous: index, concurrency })) {
    if (r.kind === 'entry') {
      if (r.entry.changed) {
        hashed++
        const e = r.entry
        index.set(e.path, {
          path: e.path, type: e.type, size: e.size, mtime: Math.round(e.mtimeMs), mode: e.mode, version: {}, modifiedBy: 'bench',
          ...(e.type === 'file' ? { chunks: e.chunks ?? index.get(e.path)?.chunks ?? [] } : {}),
          local: { ino: e.ino, mtimeMs: e.mtimeMs }
        })
      }
    } else if (r.kind === 'error') {
      errors++
      console.log(`  scan error ${r.path}: ${r.error.message}`)
    }
  }
  return { hashed, errors }
}

function line (name, t, bytes) {
  const rate = bytes != null ? `, ${(bytes / MiB / t.seconds).toFixed(0)} MiB/s` : ''
  return `${name} ${t.seconds.toFixed(3)} s (${t.cpu.toFixed(2)} CPU-s${rate})`
}

const dir = await workDir('scan')
try {
  const root = join(dir, 'share')
  await mkdir(root)
  const big = join(root, 'big.bin')
  await writeRandomFile(big, size)
  const tinyRoot = join(dir, 'tiny')
  await mkdir(join(tinyRoot, 'files'), { recursive: true })
  for (let i = 0; i < count; i++) {
    await writeFile(join(tinyRoot, 'files', `f${String(i).padStart(5, '0')}.txt`), randomBytes(1 + (i * 7919) % 1024))
  }
  console.log(`scan benchmark: ${(size / MiB).toFixed(0)} MiB file, ${count} tiny files, ${rounds} rounds, modes ${modes.join(', ')} (data in page cache)`)
  for (let round = 1; round <= rounds; round++) {
    const addStore = await createLevelStore({ path: join(dir, `add-${round}`) })
    try {
      console.log(`round ${round}: ${line('addPath', await timed(() => addStore.addPath(big)), size)}`)
    } finally {
      await addStore.close()
    }
    for (mode of modes) {
      const store = await createLevelStore({ path: join(dir, `store-${round}-${mode}`) })
      try {
        const index = new Map()
        const first = await timed(() => scan(root, store, index))
        await flipMiddleByte(big, size)
        const flip = await timed(() => scan(root, store, index))
        if (flip.value.hashed !== 1) throw new Error(`rescan after a flip hashed ${flip.value.hashed} files`)
        const unchanged = await timed(() => scan(root, store, index))
        const tinyIndex = new Map()
        const tiny = await timed(() => scan(tinyRoot, store, tinyIndex))
        if (tiny.value.hashed !== count + 1) throw new Error(`tiny scan reported ${tiny.value.hashed} changed entries`)
        const tinyAgain = await timed(() => scan(tinyRoot, store, tinyIndex))
        if (tinyAgain.value.hashed !== 0) throw new Error(`unchanged tiny rescan hashed ${tinyAgain.value.hashed}`)
        console.log(`round ${round} ${mode}: ${line('first scan', first, size)} | ${line('flip rescan', flip, size)} | ${line('unchanged rescan', unchanged)}`)
        console.log(`round ${round} ${mode}: ${line(`tiny scan (${count} new)`, tiny)} | ${line('tiny rescan (unchanged)', tinyAgain)}`)
      } finally {
        await store.close()
      }
    }
  }
} finally {
  await removeDir(dir)
}
