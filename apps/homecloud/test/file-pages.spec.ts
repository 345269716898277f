import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { deflateSync } from 'node:zlib'
import { cleanFileRuns, codeMappings } from '../src/file-pages.js'

const PRESENT = 1n << 63n
const FILE_PAGE = 1n << 61n

function pagemap (entries: bigint[]): Uint8Array {
  const bytes = new Uint8Array(entries.length * 8)
  const view = new DataView(bytes.buffer)
  entries.forEach((entry, i) => { view.setBigUint64(i * 8, entry, true) })
  return bytes
}

describe('dropping clean code pages (file-pages)', () => {
  it('looks only at non-writable mappings of the executable and of shared objects', () => {
    const maps = [
      '55d0a0000000-55d0a2000000 r--p 00000000 08:01 1 /opt/node/bin/node',
      '55d0a2000000-55d0a6000000 r-xp 02000000 08:01 1 /opt/node/bin/node',
      '55d0a6000000-55d0a6100000 r--p 06000000 08:01 1 /opt/node/bin/node',
      '55d0a6100000-55d0a6200000 rw-p 06100000 08:01 1 /opt/node/bin/node',
      '7f0000000000-7f0000100000 r-xp 00000000 08:01 2 /usr/lib/x86_64-linux-gnu/libc.so.6',
      '7f0000100000-7f0000110000 rw-p 00100000 08:01 2 /usr/lib/x86_64-linux-gnu/libc.so.6',
      '7f0000200000-7f0000300000 r-xp 00000000 08:01 3 /repo/node_modules/classic-level/prebuilds/linux-x64/classic-level.node',
      '7f0000400000-7f0000500000 r--s 00000000 08:01 4 /home/me/.homecloud/blocks/000123.ldb',
      '7f0000600000-7f0000700000 r-xp 00000000 08:01 5 /usr/lib/libold.so.1 (deleted)',
      '7f0000800000-7f0000900000 r--p 00000000 08:01 6 /usr/lib/locale/C.utf8/LC_CTYPE',
      '7f0000a00000-7f0000b00000 rw-p 00000000 00:00 0 ',
      '7ffc00000000-7ffc00002000 r-xp 00000000 00:00 0                          [vdso]'
    ].join('\n')
    assert.deepEqual(codeMappings(maps, '/opt/node/bin/node').map(m => [m.start.toString(16), m.end.toString(16), m.path]), [
      ['55d0a0000000', '55d0a2000000', '/opt/node/bin/node'],
      ['55d0a2000000', '55d0a6000000', '/opt/node/bin/node'],
      ['55d0a6000000', '55d0a6100000', '/opt/node/bin/node'],
      ['7f0000000000', '7f0000100000', '/usr/lib/x86_64-linux-gnu/libc.so.6'],
      ['7f0000200000', '7f0000300000', '/repo/node_modules/classic-level/prebuilds/linux-x64/classic-level.node']
    ])
  })

  it('drops only present file pages: never a page the process wrote (anonymous) or one not present', () => {
    const swapped = 1n << 62n
    const entries = [
      PRESENT | FILE_PAGE | 123n, PRESENT | FILE_PAGE, // a run of two
      PRESENT, // written: an anonymous copy in a private mapping
      0n, // not present
      FILE_PAGE, // file page, not present
      swapped,
      PRESENT | FILE_PAGE, PRESENT | FILE_PAGE, PRESENT | FILE_PAGE // a run to the end
    ]
    assert.deepEqual(cleanFileRuns(pagemap(entries)), [[0, 2], [6, 3]])
    assert.deepEqual(cleanFileRuns(pagemap([PRESENT])), [])
    assert.deepEqual(cleanFileRuns(new Uint8Array(0)), [])
  })

  it('a real process gives back its code pages and runs on correctly, while another thread runs code', { timeout: 60_000 }, async (t) => {
    const glibc = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime
    if (process.platform !== 'linux' || glibc === undefined) {
      t.skip('needs Linux with glibc (madvise and /proc/self/pagemap through koffi)')
      return
    }
    const script = `
      import { Worker } from 'node:worker_threads'
      import { createHash, generateKeyPairSync, sign, verify } from 'node:crypto'
      import { deflateSync, inflateSync } from 'node:zlib'
      import { readFileSync } from 'node:fs'
      import koffi from 'koffi'
      import { filePageDropper } from ${JSON.stringify(fileURLToPath(new URL('../src/file-pages.js', import.meta.url)))}
      const rssFile = () => Number(/RssFile:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'latin1'))[1]) * 1024
      const work = () => {
        const data = Buffer.alloc(1 << 20, 7)
        const { publicKey, privateKey } = generateKeyPairSync('ed25519')
        const signature = sign(null, data, privateKey)
        return [
          createHash('sha256').update(data).digest('hex'),
          inflateSync(deflateSync(data)).equals(data),
          verify(null, data, publicKey, signature),
          JSON.stringify(JSON.parse(JSON.stringify({ a: [1, 'x', { b: null }] }))),
          new Intl.DateTimeFormat('de-DE', { timeZone: 'UTC' }).format(new Date(0))
        ]
      }
      // a second thread runs code (hashing, zlib) the whole time its pages are dropped
      const worker = new Worker(\`
        const { createHash } = process.getBuiltinModule('node:crypto'); const zlib = process.getBuiltinModule('node:zlib')
        const { parentPort } = process.getBuiltinModule('node:worker_threads')
        let stop = false; parentPort.on('message', () => { stop = true })
        const data = Buffer.alloc(1 << 16, 3); let rounds = 0; let hash
        const loop = () => {
          for (let i = 0; i < 50; i++) { hash = createHash('sha256').update(zlib.deflateSync(data)).digest('hex'); rounds++ }
          if (stop) parentPort.postMessage({ rounds, hash }); else setImmediate(loop)
        }
        loop()\`, { eval: true })
      const before = work()
      const drop = filePageDropper(koffi.load('libc.so.6'))
      const rssBefore = rssFile()
      let dropped = 0
      for (let i = 0; i < 20; i++) { dropped += drop(); work(); await new Promise(resolve => setImmediate(resolve)) }
      const lastDrop = drop()
      const rssAfter = rssFile()
      const after = work()
      worker.postMessage('stop')
      const fromWorker = await new Promise(resolve => worker.once('message', resolve))
      await worker.terminate()
      console.log(JSON.stringify({ before, after, dropped, lastDrop, rssBefore, rssAfter, fromWorker }))
    `
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'], cwd: fileURLToPath(new URL('.', import.meta.url)) })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (data: Buffer) => { stdout += data.toString() })
    child.stderr.on('data', (data: Buffer) => { stderr += data.toString() })
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => { child.once('close', (c, s) => { resolve([c, s]) }) })
    assert.deepEqual({ code, signal }, { code: 0, signal: null }, stderr)
    const result = JSON.parse(stdout) as {
      before: unknown[], after: unknown[], dropped: number, lastDrop: number, rssBefore: number, rssAfter: number,
      fromWorker: { rounds: number, hash: string }
    }
    assert.deepEqual(result.after, result.before, 'the same results after the pages were dropped')
    assert.equal(result.before[0], createHash('sha256').update(Buffer.alloc(1 << 20, 7)).digest('hex'))
    assert.deepEqual(result.before.slice(1, 3), [true, true])
    assert.ok(result.fromWorker.rounds > 0, 'the worker ran')
    assert.equal(result.fromWorker.hash, createHash('sha256').update(deflateSync(Buffer.alloc(1 << 16, 3))).digest('hex'))
    assert.ok(result.dropped >= 20 * 2 ** 20, `dropped ${result.dropped} bytes over 21 drops`)
    assert.ok(result.lastDrop > 0 && result.rssAfter < result.rssBefore, JSON.stringify(result))
  })
})
