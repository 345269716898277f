// Two devices on loopback: a provider process and this fetching process, one
// tcp+noise+yamux connection. Measures, in the same run:
//   (a) a plain libp2p stream pushing N bytes,
//   (b) fetching the same N bytes as 256 KiB chunks through @homecloud/exchange
//       (every block hashed by the exchange before it is handed to the sink),
// and prints both throughputs and the ratio b/a (goal >= 0.8).
//
// Usage: node bench/fetch.mjs [N]   N in bytes, or with a K/M/G suffix (default 1G)
//        node bench/fetch.mjs 256M --rounds 5   alternate a/b five times (default 3), report the best of each
//        node bench/fetch.mjs 256M --only exchange   one side only (for profiling)
// The source and sink are in memory and flat: chunk i is a fixed random buffer
// with i written in its first 8 bytes, built on demand; the sink only counts.
//
// Imported by other benchmarks (bench/get.mjs) for the plain-stream baseline:
// `plainStreamRates(total, rounds)`.
import { fork } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { chunkExchange } from '@homecloud/exchange'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'

const CHUNK = 256 * 1024
const PUSH = '/homecloud-bench/push/1.0.0'

function parseSize (text) {
  const m = /^(\d+(?:\.\d+)?)([KMG]?)i?B?$/i.exec(text)
  if (m === null) throw new Error(`not a size: ${text}`)
  const unit = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2].toUpperCase()]
  return Math.round(Number(m[1]) * unit)
}

async function createNode (services = {}) {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services
  })
}

/** Chunk i of the data set, built on demand so memory stays flat. */
function chunkAt (base, i, size) {
  const buf = Buffer.allocUnsafe(size)
  base.copy(buf, 0, 0, size)
  buf.writeBigUInt64BE(BigInt(i), 0)
  return buf
}

async function provider (total, plainOnly) {
  const count = Math.ceil(total / CHUNK)
  const base = randomBytes(CHUNK)
  const sizeOf = i => (i === count - 1 ? total - CHUNK * (count - 1) : CHUNK)
  const index = new Map()
  const cids = []
  for (let i = 0; i < count && !plainOnly; i++) {
    const cid = CID.createV1(0x55, Digest.create(0x12, createHash('sha256').update(chunkAt(base, i, sizeOf(i))).digest()))
    index.set(cid.toString(), i)
    cids.push(cid.toString())
  }
  const source = {
    async get (cid) {
      const i = index.get(cid.toString())
      return i === undefined ? undefined : chunkAt(base, i, sizeOf(i))
    }
  }
  const node = await createNode({ chunks: chunkExchange({ serve: { source, policy: () => true } }) })
  await node.handle(PUSH, async (stream) => {
    for (let i = 0; i < count; i++) {
      if (!stream.send(chunkAt(base, i, sizeOf(i)))) {
        await stream.onDrain()
      }
    }
    await stream.close().catch(() => {})
  })
  process.send({ addrs: node.getMultiaddrs().map(String), cids })
  process.on('message', async (msg) => {
    if (msg === 'cpu') {
      const { user, system } = process.cpuUsage()
      process.send({ cpu: (user + system) / 1e6 })
    }
    if (msg === 'stop') {
      await node.stop()
      process.exit(0)
    }
  })
}

/** Forks the provider process; resolves with it and its addresses (and CIDs unless plainOnly). */
async function startProvider (total, plainOnly = false) {
  const args = ['--serve', String(total), ...(plainOnly ? ['--plain-only'] : [])]
  const child = fork(fileURLToPath(import.meta.url), args, { stdio: 'inherit' })
  const ready = await new Promise((resolve, reject) => {
    child.once('message', resolve)
    child.once('exit', code => { reject(new Error(`provider exited with ${code}`)) })
  })
  return { child, ready }
}

/** Receives `total` bytes pushed by the provider on a plain libp2p stream; bytes per second. */
async function plainRate (node, peer, total) {
  const stream = await node.dialProtocol(peer, PUSH)
  let bytes = 0
  const start = performance.now()
  for await (const chunk of stream) {
    bytes += chunk.byteLength
  }
  const seconds = (performance.now() - start) / 1000
  if (bytes !== total) throw new Error(`plain stream moved ${bytes} of ${total} bytes`)
  return total / seconds
}

/**
 * The baseline of the other transfer benchmarks: a provider process pushes
 * `total` bytes over one plain libp2p stream (tcp+noise+yamux, loopback) to
 * this process, `rounds` times on one connection. Per round: `rate` in bytes
 * per second and the CPU seconds each side used (`receiverCpu`, `senderCpu`).
 */
export async function plainStreamRates (total, rounds = 1) {
  const { child, ready } = await startProvider(total, true)
  const node = await createNode()
  const childCpu = async () => {
    child.send('cpu')
    return new Promise(resolve => child.once('message', m => { resolve(m.cpu) }))
  }
  try {
    const conn = await node.dial(ready.addrs.map(a => multiaddr(a)))
    const results = []
    for (let round = 0; round < rounds; round++) {
      const sender = await childCpu()
      const receiver = process.cpuUsage()
      const rate = await plainRate(node, conn.remotePeer, total)
      const used = process.cpuUsage(receiver)
      results.push({ rate, receiverCpu: (used.user + used.system) / 1e6, senderCpu: (await childCpu()) - sender })
    }
    return results
  } finally {
    await node.stop()
    child.send('stop')
  }
}

async function fetcher (total, rounds, only) {
  const { child, ready } = await startProvider(total)
  let received = 0
  const sink = {
    async has () { return false },
    async put (_cid, bytes) { received += bytes.byteLength }
  }
  const node = await createNode({ chunks: chunkExchange({ sink }) })
  try {
    const conn = await node.dial(ready.addrs.map(a => multiaddr(a)))
    const peer = conn.remotePeer
    const cids = ready.cids.map(c => CID.parse(c))
    const plain = async () => plainRate(node, peer, total)
    const exchange = async () => {
      received = 0
      const start = performance.now()
      await node.services.chunks.fetch(cids, { peers: [peer] })
      const seconds = (performance.now() - start) / 1000
      if (received !== total) throw new Error(`exchange moved ${received} of ${total} bytes`)
      return total / seconds
    }
    const childCpu = async () => {
      child.send('cpu')
      return new Promise(resolve => child.once('message', m => { resolve(m.cpu) }))
    }
    /** Runs `phase` and reports the CPU seconds each process spent per GB moved. */
    const measured = async (name, phase) => {
      const ours = process.cpuUsage()
      const theirs = await childCpu()
      const rate = await phase()
      const used = process.cpuUsage(ours)
      const gb = total / 1e9
      cpu[name] = `fetcher ${((used.user + used.system) / 1e6 / gb).toFixed(2)} CPU-s/GB, provider ${(((await childCpu()) - theirs) / gb).toFixed(2)} CPU-s/GB`
      return rate
    }
    const cpu = {}
    const mb = r => (r / 1e6).toFixed(1)
    let bestPlain = 0
    let bestExchange = 0
    const ratios = []
    for (let round = 1; round <= rounds; round++) {
      const a = only === 'exchange' ? NaN : await measured('plain', plain)
      const b = only === 'plain' ? NaN : await measured('exchange', exchange)
      bestPlain = Math.max(bestPlain, a || 0)
      bestExchange = Math.max(bestExchange, b || 0)
      ratios.push(b / a)
      console.log(`round ${round}: plain stream ${mb(a)} MB/s, exchange ${mb(b)} MB/s, ratio ${(b / a).toFixed(2)}`)
      for (const name of Object.keys(cpu)) console.log(`  ${name}: ${cpu[name]}`)
    }
    const ratio = bestExchange / bestPlain
    const median = ratios.sort((x, y) => x - y)[Math.floor(ratios.length / 2)]
    console.log(`\n${(total / 1024 ** 2).toFixed(0)} MiB as ${cids.length} chunks of ${CHUNK / 1024} KiB, one connection tcp+noise+yamux on loopback`)
    if (only !== 'exchange') console.log(`(a) plain libp2p stream: ${mb(bestPlain)} MB/s`)
    if (only !== 'plain') console.log(`(b) chunk exchange:      ${mb(bestExchange)} MB/s`)
    if (only === undefined) {
      console.log(`ratio b/a: ${ratio.toFixed(2)} best over best, ${median.toFixed(2)} median of paired rounds (goal >= 0.8) ${ratio >= 0.8 ? 'PASS' : 'FAIL'}`)
    }
    console.log(`fetcher max RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`)
  } finally {
    await node.stop()
    child.send('stop')
  }
}

// run only as a script (or as the forked provider), not when imported
const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href
const args = process.argv.slice(2)
if (isMain && args[0] === '--serve') {
  await provider(Number(args[1]), args[2] === '--plain-only')
} else if (isMain) {
  const roundsAt = args.indexOf('--rounds')
  const onlyAt = args.indexOf('--only')
  // several alternating rounds: a 2-core machine shared with other work is noisy
  const rounds = roundsAt >= 0 ? Number(args[roundsAt + 1]) : 3
  const only = onlyAt >= 0 ? args[onlyAt + 1] : undefined
  const optionValues = new Set([roundsAt, onlyAt].filter(i => i >= 0).map(i => i + 1))
  const sizeArg = args.find((a, i) => !a.startsWith('--') && !optionValues.has(i))
  await fetcher(parseSize(sizeArg ?? '1G'), rounds, only)
}
