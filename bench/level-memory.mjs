// Memory that one LevelDB (classic-level) keeps after a share-like workload, for its
// default options and for smaller ones (issue 5 f: a daemon holds four databases). Each
// case runs in a fresh child process: open, write ROUNDS snapshots of ~2.6 MiB in ~13 KiB
// values (a share of 12,000 entries republished), 12,000 index records of ~200 bytes, get
// every key twice (gets fill the block cache); the anonymous RSS it added (VmRSS - file pages, from
// /proc/self/status) and LevelDB's own `leveldb.approximate-memory-usage`.
//
// Usage: node bench/level-memory.mjs [--rounds N=20]
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Level } from 'level'
import { MiB, removeDir, workDir } from './util.mjs'

const CASES = {
  default: {},
  'cache 2 MiB, write buffer 1 MiB': { cacheSize: 2 * MiB, writeBufferSize: MiB },
  'cache 1 MiB, write buffer 512 KiB': { cacheSize: MiB, writeBufferSize: MiB / 2 }
}

function anon () {
  const text = readFileSync('/proc/self/status', 'utf8')
  return Number(/^RssAnon:\s+(\d+) kB$/m.exec(text)[1]) * 1024
}

async function child (name, rounds) {
  const dir = await workDir(`level-memory-${name.replace(/\W+/g, '-')}`)
  try {
    globalThis.gc?.()
    const before = anon()
    const db = new Level(join(dir, 'db'), { keyEncoding: 'utf8', valueEncoding: 'view', ...CASES[name] })
    await db.open()
    for (let r = 0; r < rounds; r++) {
      const ops = []
      for (let i = 0; i < 200; i++) ops.push({ type: 'put', key: `b/${r % 3}/${i}`, value: randomBytes(13 * 1024) })
      await db.batch(ops)
    }
    for (let i = 0; i < 12_000; i += 500) {
      await db.batch(Array.from({ length: 500 }, (_, j) => ({ type: 'put', key: `i/${String(i + j).padStart(6, '0')}`, value: randomBytes(200) })))
    }
    // gets fill the block cache (iterators do not, by default)
    const keys = await db.keys().all()
    for (let pass = 0; pass < 2; pass++) {
      for (let i = 0; i < keys.length; i += 500) await db.getMany(keys.slice(i, i + 500))
    }
    globalThis.gc?.()
    const used = db.getProperty('leveldb.approximate-memory-usage')
    const after = anon()
    await db.close()
    return { added: after - before, leveldb: Number(used) }
  } finally {
    await removeDir(dir)
  }
}

const { values } = parseArgs({ options: { rounds: { type: 'string' }, case: { type: 'string' } } })
const rounds = Number(values.rounds ?? 20)
if (values.case != null) {
  process.stdout.write(JSON.stringify(await child(values.case, rounds)))
} else {
  console.log(`level-memory: ${rounds} snapshot rounds of 200 × 13 KiB, 12,000 index records, every key read twice`)
  for (const name of Object.keys(CASES)) {
    const out = execFileSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--case', name, '--rounds', String(rounds)], { encoding: 'utf8' })
    const { added, leveldb } = JSON.parse(out)
    console.log(`${name}: anonymous RSS +${(added / MiB).toFixed(1)} MiB, leveldb.approximate-memory-usage ${(leveldb / MiB).toFixed(1)} MiB`)
  }
}
