// Multi-source fetch over capped uplinks (issue 3): four providers, each in its own
// network namespace with its uplink capped by `tc tbf rate 8mbit`, one fetcher in a
// fifth namespace, all on a bridge in 10.77.<subnet>.0/24 (bench/lib/netns.mjs).
// Every provider serves the same N bytes as 256 KiB chunks generated from a seed
// (AES-CTR keystream, so every process derives the same CIDs without sharing data);
// the fetcher dials all four and fetches every chunk with @homecloud/exchange (which
// hashes each block before the sink sees it) into a sink that only counts.
//
//   baseline   each provider pushes bytes over plain TCP at once: what the caps allow
//   full       all four serve to the end: aggregate >= 27 Mbit/s (85% of 4 x 8) PASS/FAIL
//   kill       one provider is SIGKILLed after ~30% of the bytes arrived: the fetch
//              must still complete with every chunk verified
//
// Usage (root; Node 24 first in PATH):
//   node bench/multisource.mjs [SIZE]     SIZE of the data set, e.g. 64M (default), 256M, 1G
//     --only full|kill       one scenario     --seed TEXT            data set seed
//     --baseline SIZE        per provider, 0 skips (default 4M)
//     --rate 8mbit --burst 16kb --latency 50ms   the tbf of each provider's uplink
//     --kill-at 0.3          fraction of bytes after which a provider is killed
//     --timeout SECONDS      the whole run (default: from SIZE)
//     --subnet N             10.77.N.0/24 (default 1)
// Exit code 0 only if every scenario run passed.
import { createCipheriv, createHash } from 'node:crypto'
import { createConnection, createServer } from 'node:net'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { createLab, TBF_DEFAULTS } from './lib/netns.mjs'
import { MiB, mb, parseSize } from './util.mjs'

const CHUNK = 256 * 1024
const LIBP2P_PORT = 4001
const RAW_PORT = 4002
const PROVIDERS = ['p1', 'p2', 'p3', 'p4']
const GOAL_MBIT = 27
const MAX_SIZE = 16 * 1024 * MiB
const SELF = fileURLToPath(import.meta.url)

// ---------------------------------------------------------------- data set

/** Chunk i is the AES-256-CTR keystream of sha256(seed) from counter i·2^96: deterministic, fast, incompressible. */
function dataset (seed, size) {
  const key = createHash('sha256').update(`homecloud-bench-multisource:${seed}`).digest()
  const count = Math.ceil(size / CHUNK)
  const zeros = Buffer.alloc(CHUNK)
  const sizeOf = i => (i === count - 1 ? size - CHUNK * (count - 1) : CHUNK)
  const chunk = (i) => {
    const iv = Buffer.alloc(16)
    iv.writeUInt32BE(i, 0) // a chunk is 16,384 AES blocks: the low counter bytes never reach the index
    return createCipheriv('aes-256-ctr', key, iv).update(zeros.subarray(0, sizeOf(i)))
  }
  return { count, chunk, sizeOf }
}

async function cidsOf (data) {
  const { CID } = await import('multiformats/cid')
  const Digest = await import('multiformats/hashes/digest')
  const cids = []
  for (let i = 0; i < data.count; i++) {
    cids.push(CID.createV1(0x55, Digest.create(0x12, createHash('sha256').update(data.chunk(i)).digest())))
  }
  return cids
}

// ---------------------------------------------------------------- child processes

async function createNode (listen, services) {
  const { noise } = await import('@chainsafe/libp2p-noise')
  const { yamux } = await import('@chainsafe/libp2p-yamux')
  const { tcp } = await import('@libp2p/tcp')
  const { createLibp2p } = await import('libp2p')
  return createLibp2p({
    addresses: { listen },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // pings wait behind bulk data on a capped uplink; a late ping is not a dead connection (FACTS.md)
    connectionMonitor: { abortConnectionOnPingFailure: false },
    services
  })
}

function emit (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

/** Children end when the bench does: its end of our stdin closes even if it was SIGKILLed. */
function exitWithParent (stop) {
  process.stdin.resume()
  process.stdin.once('end', () => { void stop().finally(() => process.exit(0)) })
  process.stdin.once('error', () => process.exit(0))
}

async function provider ({ seed, size, host }) {
  const { chunkExchange } = await import('@homecloud/exchange')
  const data = dataset(seed, size)
  const index = new Map((await cidsOf(data)).map((cid, i) => [cid.toString(), i]))
  const source = {
    async get (cid) {
      const i = index.get(cid.toString())
      return i === undefined ? undefined : data.chunk(i)
    }
  }
  const node = await createNode([`/ip4/${host}/tcp/${LIBP2P_PORT}`], { chunks: chunkExchange({ serve: { source, policy: () => true } }) })
  // plain TCP push for the baseline: the client sends an 8-byte count, we send that many bytes
  const raw = createServer(socket => {
    socket.once('data', async (head) => {
      let left = Number(head.readBigUInt64BE(0))
      for (let i = 0; left > 0; i++) {
        const buf = data.chunk(i % data.count).subarray(0, Math.min(left, CHUNK))
        left -= buf.byteLength
        if (!socket.write(buf)) await new Promise(resolve => socket.once('drain', resolve))
      }
      socket.end()
    })
    socket.on('error', () => {})
  })
  await new Promise((resolve, reject) => { raw.once('error', reject); raw.listen(RAW_PORT, host, resolve) })
  exitWithParent(async () => { raw.close(); await node.stop() })
  emit({ ready: { peerId: node.peerId.toString(), addrs: node.getMultiaddrs().map(String) } })
}

async function rawBaseline (hosts, perProvider) {
  const start = performance.now()
  const seconds = await Promise.all(hosts.map(host => new Promise((resolve, reject) => {
    let got = 0
    const socket = createConnection({ host, port: RAW_PORT }, () => {
      const head = Buffer.alloc(8)
      head.writeBigUInt64BE(BigInt(perProvider))
      socket.write(head)
    })
    socket.on('data', buf => { got += buf.byteLength })
    socket.on('error', reject)
    socket.on('close', () => {
      if (got === perProvider) resolve((performance.now() - start) / 1000)
      else reject(new Error(`raw push from ${host} moved ${got} of ${perProvider} bytes`))
    })
  })))
  return { bytes: perProvider * hosts.length, seconds: (performance.now() - start) / 1000, perProvider: seconds }
}

async function fetcher ({ seed, size, providers, baseline, timeout }) {
  const { chunkExchange } = await import('@homecloud/exchange')
  const { multiaddr } = await import('@multiformats/multiaddr')
  const signal = AbortSignal.timeout(timeout)
  const cids = await cidsOf(dataset(seed, size))
  const seen = new Set()
  let sinkBytes = 0
  let duplicates = 0
  const sink = {
    async has () { return false },
    async put (cid, bytes) {
      const key = cid.toString()
      if (seen.has(key)) duplicates++
      seen.add(key)
      sinkBytes += bytes.byteLength
    }
  }
  const node = await createNode([], { chunks: chunkExchange({ sink }) })
  exitWithParent(async () => { await node.stop() })
  try {
    const peers = []
    for (const p of providers) {
      const conn = await node.dial(multiaddr(p.addrs[0]), { signal })
      peers.push(conn.remotePeer)
    }
    if (baseline > 0) {
      emit({ baseline: await rawBaseline(providers.map(p => p.host), baseline) })
    }
    const start = performance.now()
    let lastEmit = 0
    const perPeer = progress => Object.fromEntries(progress.peers.map(r => [r.peer, r.bytes]))
    const onProgress = (evt) => {
      const t = performance.now() - start
      if (evt.type === 'exchange:fetch:peer-dropped') {
        emit({ dropped: { t, peer: evt.detail.peer, code: evt.detail.code, message: evt.detail.message, bytes: evt.detail.progress.bytes } })
      } else if (evt.type === 'exchange:fetch:chunk' && t - lastEmit >= 50) {
        lastEmit = t
        emit({ progress: { t, bytes: evt.detail.progress.bytes, peers: perPeer(evt.detail.progress) } })
      }
    }
    const result = await node.services.chunks.fetch(cids, { peers, onProgress, signal })
    const seconds = (performance.now() - start) / 1000
    const stats = node.services.chunks.stats()
    emit({
      result: {
        seconds,
        bytes: result.bytes,
        chunks: result.chunks,
        sinkBytes,
        sinkChunks: seen.size,
        duplicates,
        expectedChunks: cids.length,
        peers: result.peers,
        stats: { wrongBlocks: stats.wrongBlocks, lateBlocks: stats.lateBlocks, unrequestedBlocks: stats.unrequestedBlocks }
      }
    })
  } finally {
    await node.stop()
  }
}

// ---------------------------------------------------------------- orchestration

function spawnRole (lab, nodeName, role, params) {
  const child = lab.spawn(nodeName, process.execPath, [SELF, '--role', role, '--params', JSON.stringify(params)], {
    stdio: ['pipe', 'pipe', 'inherit']
  })
  // lines are queued until someone waits for them: a child may answer before we listen
  child.inbox = []
  child.wake = () => {}
  createInterface({ input: child.stdout }).on('line', line => {
    try {
      child.inbox.push(JSON.parse(line))
    } catch {
      process.stdout.write(`  [${nodeName}] ${line}\n`)
    }
    child.wake()
  })
  child.once('exit', () => { child.wake() })
  return child
}

/** Resolves with the first message for which `pick(msg)` returns a value; rejects if the child exits first. */
async function waitLine (child, pick, onOther = () => {}) {
  for (;;) {
    while (child.inbox.length > 0) {
      const msg = child.inbox.shift()
      const value = pick(msg)
      if (value !== undefined) return value
      onOther(msg)
    }
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`child exited (${child.signalCode ?? child.exitCode}) before answering`)
    }
    await new Promise(resolve => { child.wake = resolve })
  }
}

/** Closes a child's stdin (it stops itself) and SIGKILLs it if it has not gone within 3 s. */
async function stopChild (child) {
  if (child.exitCode !== null || child.signalCode !== null) return
  const gone = new Promise(resolve => child.once('exit', resolve))
  child.stdin.end()
  const timer = setTimeout(() => { try { child.kill('SIGKILL') } catch {} }, 3000)
  await gone
  clearTimeout(timer)
}

function qdiscSent (lab, name) {
  const m = /Sent (\d+) bytes \d+ pkt \(dropped (\d+), overlimits (\d+)/.exec(lab.qdiscStats(name))
  return m === null ? { sent: 0, dropped: 0, overlimits: 0 } : { sent: Number(m[1]), dropped: Number(m[2]), overlimits: Number(m[3]) }
}

const mbit = (bytes, seconds) => (bytes * 8 / seconds / 1e6)

async function scenario (lab, opts, kind) {
  const providers = PROVIDERS.map(name => ({ name, child: spawnRole(lab, name, 'provider', { seed: opts.seed, size: opts.size, host: lab.addr(name) }) }))
  const fetcherChild = { child: undefined }
  try {
    for (const p of providers) {
      Object.assign(p, await waitLine(p.child, msg => msg.ready), { host: lab.addr(p.name) })
    }
    const nameOf = Object.fromEntries(providers.map(p => [p.peerId, p.name]))
    const snapshot = () => Object.fromEntries(PROVIDERS.map(name => [name, qdiscSent(lab, name)]))
    let qdiscBefore = snapshot()
    const baseline = kind === 'full' ? opts.baseline : 0
    const child = fetcherChild.child = spawnRole(lab, 'f', 'fetcher', {
      seed: opts.seed,
      size: opts.size,
      baseline,
      timeout: opts.scenarioMs,
      providers: providers.map(p => ({ peerId: p.peerId, addrs: p.addrs, host: p.host }))
    })
    const victim = providers[0]
    let killed
    const dropped = []
    const result = await waitLine(child, msg => msg.result, (msg) => {
      if (msg.baseline !== undefined) {
        qdiscBefore = snapshot() // the fetch's wire bytes only
        const b = msg.baseline
        console.log(`baseline: plain TCP, ${PROVIDERS.length} providers pushing ${mb(b.bytes / PROVIDERS.length)} each at once: ` +
          `${mbit(b.bytes, b.seconds).toFixed(1)} Mbit/s aggregate (per provider done after ${b.perProvider.map(s => s.toFixed(2)).join(', ')} s)`)
      }
      if (msg.dropped !== undefined) dropped.push(msg.dropped)
      if (kind === 'kill' && killed === undefined && msg.progress !== undefined && msg.progress.bytes >= opts.killAt * opts.size) {
        victim.child.kill('SIGKILL')
        killed = { t: msg.progress.t, bytes: msg.progress.bytes }
      }
    })
    const perProvider = providers.map(p => {
      const rate = result.peers.find(r => r.peer === p.peerId)
      const q = qdiscSent(lab, p.name)
      return { name: p.name, bytes: rate?.bytes ?? 0, chunks: rate?.chunks ?? 0, wire: q.sent - qdiscBefore[p.name].sent, drops: q.dropped - qdiscBefore[p.name].dropped }
    })
    const complete = result.sinkChunks === result.expectedChunks && result.sinkBytes === opts.size && result.duplicates === 0
    const rate = mbit(result.bytes, result.seconds)
    console.log(`\n[${kind}] ${mb(opts.size)} as ${result.expectedChunks} chunks of ${CHUNK / 1024} KiB from ${PROVIDERS.length} providers, uplinks tbf ${opts.tbf.rate} burst ${opts.tbf.burst} latency ${opts.tbf.latency}`)
    console.log(`  total ${result.bytes} bytes in ${result.seconds.toFixed(2)} s = ${rate.toFixed(2)} Mbit/s aggregate; sink got ${result.sinkChunks}/${result.expectedChunks} verified chunks, ${result.sinkBytes} bytes`)
    for (const p of perProvider) {
      console.log(`  ${p.name}: ${p.bytes} bytes (${(100 * p.bytes / result.bytes).toFixed(1)}%, ${p.chunks} chunks)  uplink sent ${p.wire} bytes on the wire, ${p.drops} tbf drops`)
    }
    console.log(`  exchange: ${result.stats.lateBlocks} late duplicate blocks, ${result.stats.wrongBlocks} wrong, ${result.stats.unrequestedBlocks} unrequested`)
    for (const d of dropped) console.log(`  dropped ${nameOf[d.peer] ?? d.peer} at ${(d.t / 1000).toFixed(2)} s: ${d.code} (${d.message})`)
    let pass
    if (kind === 'full') {
      pass = complete && rate >= GOAL_MBIT
      console.log(`  aggregate ${rate.toFixed(2)} Mbit/s vs goal ${GOAL_MBIT} Mbit/s: ${pass ? 'PASS' : 'FAIL'}`)
    } else {
      if (killed === undefined) {
        console.log('  the fetch ended before the kill point: FAIL')
        pass = false
      } else {
        const after = (result.seconds * 1000 - killed.t) / 1000
        console.log(`  killed ${victim.name} (SIGKILL) at ${(killed.t / 1000).toFixed(2)} s after ${mb(killed.bytes)} (${(100 * killed.bytes / opts.size).toFixed(0)}%); ` +
          `the rest (${mb(result.bytes - killed.bytes)}) took ${after.toFixed(2)} s = ${mbit(result.bytes - killed.bytes, after).toFixed(2)} Mbit/s from ${PROVIDERS.length - 1}`)
        pass = complete
        console.log(`  fetch completed with every chunk verified after a provider died: ${pass ? 'PASS' : 'FAIL'}`)
      }
    }
    return pass
  } finally {
    await Promise.all([...providers.map(p => stopChild(p.child)), fetcherChild.child && stopChild(fetcherChild.child)])
  }
}

function parseArgs (argv) {
  const opts = { only: undefined, seed: 'homecloud', baseline: 4 * MiB, killAt: 0.3, subnet: 1, timeout: undefined, tbf: { rate: '8mbit', ...TBF_DEFAULTS } }
  let size
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`)
      return argv[++i]
    }
    if (a === '--only') opts.only = value()
    else if (a === '--seed') opts.seed = value()
    else if (a === '--baseline') opts.baseline = parseSize(value())
    else if (a === '--kill-at') opts.killAt = Number(value())
    else if (a === '--timeout') opts.timeout = Number(value())
    else if (a === '--subnet') opts.subnet = Number(value())
    else if (a === '--rate' || a === '--burst' || a === '--latency') opts.tbf[a.slice(2)] = value()
    else if (!a.startsWith('--') && size === undefined) size = a
    else throw new Error(`unknown argument ${a}`)
  }
  opts.size = parseSize(size, 64 * MiB)
  if (!(opts.size > 0 && opts.size <= MAX_SIZE)) throw new Error(`SIZE must be 1 byte .. ${mb(MAX_SIZE)}`)
  if (opts.only !== undefined && !['full', 'kill'].includes(opts.only)) throw new Error('--only takes full or kill')
  if (!(opts.killAt > 0 && opts.killAt < 1)) throw new Error('--kill-at takes a fraction between 0 and 1')
  for (const [k, v] of Object.entries(opts.tbf)) {
    if (!/^\d+(\.\d+)?[a-z]*$/i.test(v)) throw new Error(`--${k} ${v} is not a tc size/rate/time`)
  }
  // a scenario gets 4x the time of a perfect 32 Mbit/s fetch plus a minute for start-up
  const ideal = opts.size * 8 / 32e6
  opts.scenarioMs = Math.round((60 + 4 * ideal) * 1000)
  opts.timeout = opts.timeout ?? Math.round(30 + 2 * (60 + 4 * ideal) + 2 * opts.baseline * 8 / 8e6)
  if (!(opts.timeout > 0)) throw new Error('--timeout takes seconds')
  return opts
}

async function main () {
  const opts = parseArgs(process.argv.slice(2))
  const lab = createLab({
    subnet: opts.subnet,
    nodes: [...PROVIDERS.map(name => ({ name, uplink: opts.tbf })), { name: 'f' }],
    log: line => { console.log(line) }
  })
  // the whole run is bounded: past the deadline everything is killed and the lab deleted
  const deadline = setTimeout(() => {
    console.error(`multisource: overall timeout of ${opts.timeout} s reached, stopping`)
    lab.cleanup()
    process.exit(2)
  }, opts.timeout * 1000)
  let ok = true
  try {
    console.log(`lab: ${PROVIDERS.map(n => `${n} ${lab.addr(n)}`).join(', ')}, fetcher ${lab.addr('f')}; namespaces ${lab.prefix}*`)
    for (const kind of ['full', 'kill']) {
      if (opts.only !== undefined && opts.only !== kind) continue
      ok = (await scenario(lab, opts, kind)) && ok
    }
  } finally {
    clearTimeout(deadline)
    lab.cleanup()
  }
  console.log(`\nmultisource: ${ok ? 'PASS' : 'FAIL'}`)
  process.exitCode = ok ? 0 : 1
}

const roleAt = process.argv.indexOf('--role')
if (roleAt >= 0) {
  const params = JSON.parse(process.argv[process.argv.indexOf('--params') + 1])
  const role = process.argv[roleAt + 1]
  const run = role === 'provider' ? provider : role === 'fetcher' ? fetcher : undefined
  if (run === undefined) throw new Error(`unknown role ${role}`)
  run(params).catch(err => {
    console.error(`multisource ${role}:`, err)
    process.exit(1)
  })
} else {
  await main().catch(err => {
    // a refusal (not root, bad argument) is one line, anything else keeps its stack
    console.error(`multisource: ${err.code === 'ERR_NOT_ROOT' || err instanceof RangeError || /^(--|SIZE|unknown argument)/.test(err.message) ? err.message : err.stack}`)
    process.exitCode = 2
  })
}
