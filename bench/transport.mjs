// Connection encrypters compared on loopback (issue 5 a): one stream moving N bytes in
// 256 KiB messages (backpressure honoured: send() false -> onDrain()) from a sender process
// to this receiving process, over one connection of
//   raw         plain TCP (net sockets, no libp2p): the reference,
//   noise       libp2p tcp + @chainsafe/libp2p-noise + yamux with the daemons' noiseCrypto
//               (@homecloud/node: cached session keys, no copy of each message; what the daemons use),
//   noise-stock the same with noise's own default crypto,
//   tls         libp2p tcp + @libp2p/tls + yamux (node:tls, OpenSSL picks the TLS 1.3 suite),
//   tls-aes128 / tls-chacha   the same with the dialer offering only that suite
//               (tls.DEFAULT_CIPHERS of this process while it dials),
// with the yamux settings of the daemons (DEFAULT_LIMITS). Each round runs every kind once on
// a fresh connection; prints MB/s and the CPU seconds per GB of each side, then the median
// of the rounds and each kind's ratio to noise. Then the cost of setting a connection up:
// --handshakes N sequential dials (+ close) per encrypter, wall ms and CPU ms of each side per
// connection (an inbound flood pays the listener's share, RELIABILITY.md).
//
// --ballast MiB keeps that much live heap (small objects) in both processes, as a daemon's
// indexes and caches are: with a big old generation every major GC costs more, which shows
// whether an encrypter keeps buffers alive long enough to be promoted. Run with the daemon's
// V8 flags (`node --max-semi-space-size=2 bench/transport.mjs`; the sender inherits them).
//
// Found on 2 cores (issue 5 a): one stream over tls used ~0.55-0.7x noise's CPU per GB at
// 1.5-2.3x its rate, but between two daemons (get.mjs, share-bulk.mjs) the receiver's saving
// was matched by more CPU on the sender (mostly GC on V8's worker threads), so the daemons
// stay on noise; @libp2p/tls 3.1 also turned clean hang-ups into resets (EPIPE) at the peer.
//
// Usage: node bench/transport.mjs [SIZE=1G] [--rounds N=3] [--kinds raw,noise,tls,...] [--handshakes N=50] [--ballast MiB=0]
import { fork } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createServer, connect as tcpConnect } from 'node:net'
import tls from 'node:tls'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { DEFAULT_LIMITS, noiseCrypto } from '@homecloud/node'
import { tcp } from '@libp2p/tcp'
import { tls as libp2pTls } from '@libp2p/tls'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { MiB, parseSize } from './util.mjs'

const MESSAGE = 256 * 1024
const PUSH = '/homecloud-bench/push/1.0.0'
const KINDS = ['raw', 'noise', 'noise-stock', 'tls', 'tls-aes128', 'tls-chacha']
/** The connection encrypter of each libp2p node of both processes. */
const ENCRYPTERS = {
  noise: () => noise({ crypto: noiseCrypto }),
  'noise-stock': () => noise(),
  tls: () => libp2pTls()
}
/** The node (encrypter) a kind dials. */
const encrypterOf = kind => kind.startsWith('noise') ? kind : 'tls'
/** TLS 1.3 suites the dialer offers per kind; undefined: Node's default list. */
const SUITES = { 'tls-aes128': 'TLS_AES_128_GCM_SHA256', 'tls-chacha': 'TLS_CHACHA20_POLY1305_SHA256' }
const DEFAULT_CIPHERS = tls.DEFAULT_CIPHERS

// the negotiated suite of the last TLS handshake: @libp2p/tls asks for the peer
// certificate once the handshake is done, so note the cipher there
let lastCipher
const getPeerCertificate = tls.TLSSocket.prototype.getPeerCertificate
tls.TLSSocket.prototype.getPeerCertificate = function (...args) {
  lastCipher = this.getCipher()?.name
  return getPeerCertificate.apply(this, args)
}

async function createNode (encrypter) {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [ENCRYPTERS[encrypter]()],
    streamMuxers: [yamux({
      maxInboundStreams: DEFAULT_LIMITS.maxStreamsPerConnection,
      maxOutboundStreams: DEFAULT_LIMITS.maxStreamsPerConnection
    })],
    // libp2p's default of 5 inbound connections per IP per second would refuse the handshake rounds
    connectionManager: { inboundConnectionThreshold: 1e6 }
  })
}

/** One started node per encrypter. */
async function createNodes () {
  return Object.fromEntries(await Promise.all(Object.keys(ENCRYPTERS).map(async name => [name, await createNode(name)])))
}

/** Message i of the data: a fresh buffer each time (as a daemon reads chunks), its index in the first 8 bytes. */
function messageAt (base, i, size) {
  const buf = Buffer.allocUnsafe(size)
  base.copy(buf, 0, 0, size)
  buf.writeBigUInt64BE(BigInt(i), 0)
  return buf
}

/** Live heap of about `mib` MiB in small objects (arrays of short strings and numbers). */
function ballast (mib) {
  const held = []
  for (let i = 0; i < mib * 1024; i++) {
    held.push(Array.from({ length: 16 }, (_, j) => ({ key: `k${i}-${j}`, value: i * j })))
  }
  return held
}

/** The sending process: one libp2p node per encrypter and a TCP server, each pushes `total` bytes per stream/connection. */
async function sender (total, ballastMiB) {
  globalThis.ballast = ballast(ballastMiB)
  const base = randomBytes(MESSAGE)
  const count = Math.ceil(total / MESSAGE)
  const sizeOf = i => (i === count - 1 ? total - MESSAGE * (count - 1) : MESSAGE)
  const nodes = await createNodes()
  for (const node of Object.values(nodes)) {
    await node.handle(PUSH, async (stream) => {
      for (let i = 0; i < count; i++) {
        if (!stream.send(messageAt(base, i, sizeOf(i)))) await stream.onDrain()
      }
      await stream.close().catch(() => {})
    })
  }
  const server = createServer(async (socket) => {
    socket.on('error', () => {})
    for (let i = 0; i < count; i++) {
      if (!socket.write(messageAt(base, i, sizeOf(i)))) await new Promise(resolve => socket.once('drain', resolve))
    }
    socket.end()
  })
  await new Promise(resolve => server.listen(0, '127.0.0.1', resolve))
  process.send({
    ...Object.fromEntries(Object.entries(nodes).map(([name, node]) => [name, node.getMultiaddrs().map(String)])),
    raw: server.address().port
  })
  process.on('message', async (msg) => {
    if (msg === 'cpu') {
      const { user, system } = process.cpuUsage()
      process.send({ cpu: (user + system) / 1e6 })
    } else if (msg === 'stop') {
      server.close()
      await Promise.all(Object.values(nodes).map(async node => node.stop()))
      process.exit(0)
    }
  })
}

/** Reads `total` bytes from a fresh raw TCP connection; seconds. */
async function rawRound (port, total) {
  const start = performance.now()
  const socket = tcpConnect(port, '127.0.0.1')
  let bytes = 0
  for await (const chunk of socket) bytes += chunk.byteLength
  if (bytes !== total) throw new Error(`raw TCP moved ${bytes} of ${total} bytes`)
  return (performance.now() - start) / 1000
}

/** Dials a fresh connection of `kind` and reads `total` bytes from one stream; seconds (handshake excluded) and the suite. */
async function libp2pRound (node, addrs, kind, total) {
  for (const conn of node.getConnections()) await conn.close()
  tls.DEFAULT_CIPHERS = SUITES[kind] ?? DEFAULT_CIPHERS
  lastCipher = undefined
  let conn
  try {
    conn = await node.dial(addrs.map(a => multiaddr(a)))
  } finally {
    tls.DEFAULT_CIPHERS = DEFAULT_CIPHERS
  }
  const want = encrypterOf(kind) === 'tls' ? '/tls/1.0.0' : '/noise'
  if (conn.encryption !== want) throw new Error(`${kind}: the connection negotiated ${conn.encryption}`)
  const start = performance.now()
  const stream = await conn.newStream(PUSH)
  let bytes = 0
  for await (const chunk of stream) bytes += chunk.byteLength
  if (bytes !== total) throw new Error(`${kind} moved ${bytes} of ${total} bytes`)
  return { seconds: (performance.now() - start) / 1000, suite: want === '/noise' ? 'ChaChaPoly (noise)' : lastCipher }
}

const median = xs => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]

/** Sets up and closes `count` connections of `encrypter` one after another; ms per connection (wall, CPU of each side). */
async function handshakes (node, addrs, encrypter, count, senderCpu) {
  for (const conn of node.getConnections()) await conn.close()
  const theirs = await senderCpu()
  const ours = process.cpuUsage()
  const start = performance.now()
  for (let i = 0; i < count; i++) {
    const conn = await node.dial(addrs.map(a => multiaddr(a)))
    await conn.close()
  }
  const used = process.cpuUsage(ours)
  return {
    wall: (performance.now() - start) / count,
    dialer: (used.user + used.system) / 1e3 / count,
    listener: ((await senderCpu()) - theirs) * 1e3 / count
  }
}

async function main (total, rounds, kinds, handshakeCount, ballastMiB) {
  globalThis.ballast = ballast(ballastMiB)
  const child = fork(fileURLToPath(import.meta.url), ['--send', String(total), String(ballastMiB)], { stdio: 'inherit' })
  const ready = await new Promise((resolve, reject) => {
    child.once('message', resolve)
    child.once('exit', code => { reject(new Error(`sender exited with ${code}`)) })
  })
  const senderCpu = async () => {
    child.send('cpu')
    return new Promise(resolve => child.once('message', m => { resolve(m.cpu) }))
  }
  const nodes = await createNodes()
  const gb = total / 1e9
  const results = Object.fromEntries(kinds.map(kind => [kind, []]))
  const suites = {}
  try {
    console.log(`${(total / MiB).toFixed(0)} MiB per stream in ${MESSAGE / 1024} KiB messages, loopback, ${rounds} round(s), Node ${process.version}, OpenSSL ${process.versions.openssl}` +
      `, V8 flags ${process.execArgv.join(' ') || '(none)'}, heap used ${(process.memoryUsage().heapUsed / MiB).toFixed(0)} MiB`)
    for (let round = 1; round <= rounds; round++) {
      const parts = []
      for (const kind of kinds) {
        const theirs = await senderCpu()
        const ours = process.cpuUsage()
        let seconds
        if (kind === 'raw') {
          seconds = await rawRound(ready.raw, total)
        } else {
          const encrypter = encrypterOf(kind)
          const result = await libp2pRound(nodes[encrypter], ready[encrypter], kind, total)
          seconds = result.seconds
          suites[kind] = result.suite
        }
        const used = process.cpuUsage(ours)
        const entry = {
          rate: total / seconds / 1e6,
          receiver: (used.user + used.system) / 1e6 / gb,
          sender: ((await senderCpu()) - theirs) / gb
        }
        results[kind].push(entry)
        parts.push(`${kind} ${entry.rate.toFixed(0)} MB/s (CPU-s/GB send ${entry.sender.toFixed(2)}, recv ${entry.receiver.toFixed(2)})`)
      }
      console.log(`round ${round}: ${parts.join(' | ')}`)
    }
    console.log('\nmedian of rounds:')
    const noiseRate = results.noise === undefined ? undefined : median(results.noise.map(r => r.rate))
    const noiseCpu = results.noise === undefined ? undefined : median(results.noise.map(r => r.sender + r.receiver))
    for (const kind of kinds) {
      const rate = median(results[kind].map(r => r.rate))
      const send = median(results[kind].map(r => r.sender))
      const recv = median(results[kind].map(r => r.receiver))
      const both = median(results[kind].map(r => r.sender + r.receiver))
      const vsNoise = noiseRate === undefined ? '' : `, ${(rate / noiseRate).toFixed(2)}x noise's rate, ${(both / noiseCpu).toFixed(2)}x its CPU`
      console.log(`  ${kind.padEnd(11)} ${rate.toFixed(0).padStart(5)} MB/s  CPU-s/GB send ${send.toFixed(2)}, recv ${recv.toFixed(2)}, both ${both.toFixed(2)}${vsNoise}${suites[kind] !== undefined ? `  [${suites[kind]}]` : ''}`)
    }
    if (handshakeCount > 0) {
      console.log(`\nconnection setup (dial + close, ${handshakeCount} in a row, after 5 to warm up):`)
      for (const encrypter of ['noise', 'tls']) {
        await handshakes(nodes[encrypter], ready[encrypter], encrypter, 5, senderCpu)
        const h = await handshakes(nodes[encrypter], ready[encrypter], encrypter, handshakeCount, senderCpu)
        console.log(`  ${encrypter.padEnd(10)} ${h.wall.toFixed(1)} ms each, CPU ms dialer ${h.dialer.toFixed(1)}, listener ${h.listener.toFixed(1)}`)
      }
    }
  } finally {
    await Promise.all(Object.values(nodes).map(async node => node.stop()))
    child.send('stop')
  }
}

// run only as a script (or as the forked sender), not when imported
const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href
const args = process.argv.slice(2)
if (isMain && args[0] === '--send') {
  await sender(Number(args[1]), Number(args[2]))
} else if (isMain) {
  const roundsAt = args.indexOf('--rounds')
  const kindsAt = args.indexOf('--kinds')
  const handshakesAt = args.indexOf('--handshakes')
  const ballastAt = args.indexOf('--ballast')
  const values = new Set([roundsAt, kindsAt, handshakesAt, ballastAt].filter(i => i >= 0).map(i => i + 1))
  const kinds = kindsAt >= 0 ? args[kindsAt + 1].split(',') : KINDS
  const unknown = kinds.filter(kind => !KINDS.includes(kind))
  if (unknown.length > 0) throw new Error(`unknown kind(s) ${unknown.join(', ')}: use ${KINDS.join(', ')}`)
  await main(parseSize(args.find((arg, i) => !arg.startsWith('--') && !values.has(i)), 1024 * MiB), roundsAt >= 0 ? Number(args[roundsAt + 1]) : 3, kinds,
    handshakesAt >= 0 ? Number(args[handshakesAt + 1]) : 50, ballastAt >= 0 ? Number(args[ballastAt + 1]) : 0)
}
