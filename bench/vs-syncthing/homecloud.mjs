// Two real Home Cloud daemons on loopback sharing one folder, set up the way a person
// would with the CLI: init, start (loopback only, no mDNS/UPnP/DHT), connect, a private
// swarm (create, invite, join), `share add` on A and `share accept` on B (send-receive on
// both, like the Syncthing folder). Status is read from the daemons' control API (the
// same answer as `homecloud share status --json`, without starting a CLI process per poll).
import { createWriteStream, existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { until } from '../util.mjs'

const DIST = fileURLToPath(new URL('../../apps/homecloud/dist/src/', import.meta.url))
const SHARE = 'data'
const SWARM = 'fam'
const DAEMON_ARGS = ['--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0', '--no-mdns', '--no-upnp', '--dht', 'off']
const HOUR = 3_600_000

/** true, or why the Home Cloud half cannot run (not built, no `share` command yet). */
export async function homecloudReady () {
  if (!existsSync(join(DIST, 'bin.js'))) return 'apps/homecloud is not built (tsc -b apps/homecloud)'
  if (Number(process.versions.node.split('.')[0]) < 22) return `node ${process.version} is too old: run with /work/main/node_modules/.bin/node`
  const { runCli } = await import(join(DIST, 'child.js'))
  const { code, stderr } = await runCli(['share', '--help'])
  return code === 0 ? true : `\`homecloud share\` is not available yet (${stderr.trim()})`
}

/**
 * `debug`: DEBUG scopes for the daemons (e.g. `homecloud:sync*`); their output goes to DIR/hc-X.log.
 * `memTrace`: path prefix of the daemons' memory logs (mem-trace.mjs, one per pid); `snapshotMib`: its heap snapshot threshold.
 * `nodeOptions`: NODE_OPTIONS of the daemons (flags to compare; the daemon's own DAEMON_NODE_FLAGS stay).
 */
export async function startHomecloudPair ({ dir, track, debug, memTrace, snapshotMib, nodeOptions }) {
  const { runCli, spawnDaemon } = await import(join(DIST, 'child.js'))
  const { connectToDaemon } = await import(join(DIST, 'api-client.js'))
  const { repoPaths } = await import(join(DIST, 'repo.js'))

  const cli = async (dev, args) => {
    const { code, stdout, stderr } = await runCli(['--repo', dev.repo, ...args], { timeoutMs: HOUR })
    if (code !== 0) throw new Error(`homecloud ${args.join(' ')} on ${dev.name} failed (${code}): ${stderr.trim()}`)
    return stdout
  }

  const devs = []
  for (const name of ['a', 'b']) {
    const dev = { name: `hc-${name}`, repo: join(dir, `repo-${name}`), share: join(dir, `share-${name}`), stage: join(dir, `stage-${name}`) }
    await mkdir(dev.stage, { recursive: true })
    if (name === 'a') await mkdir(dev.share, { recursive: true }) // B's is made by `share accept`
    await cli(dev, ['init', '--name', dev.name])
    const log = createWriteStream(join(dir, `${dev.name}.log`))
    dev.daemon = await spawnDaemon(dev.repo, DAEMON_ARGS, {
      timeoutMs: 60_000,
      env: {
        ...(debug == null ? {} : { DEBUG: debug }),
        ...(memTrace == null
          ? {}
          : {
              HOMECLOUD_BENCH_MEMTRACE: memTrace,
              ...(snapshotMib == null ? {} : { HOMECLOUD_BENCH_SNAPSHOT_MIB: String(snapshotMib) })
            }),
        NODE_OPTIONS: [
          memTrace == null ? '' : `--import ${fileURLToPath(new URL('./mem-trace.mjs', import.meta.url))}`,
          nodeOptions ?? '',
          process.env.NODE_OPTIONS ?? ''
        ].join(' ').trim()
      },
      onLine: (line) => { log.write(line + '\n') }
    })
    track(dev.daemon.child)
    dev.pid = dev.daemon.child.pid
    const id = JSON.parse(await cli(dev, ['id', '--json']))
    const tcp = id.addresses.find(a => a.startsWith('/ip4/127.0.0.1/tcp/'))
    if (tcp == null) throw new Error(`${dev.name} listens on no loopback TCP address: ${id.addresses.join(' ')}`)
    dev.address = tcp.includes('/p2p/') ? tcp : `${tcp}/p2p/${id.peerId}`
    dev.port = Number(/\/tcp\/(\d+)/.exec(tcp)[1])
    dev.api = await connectToDaemon(repoPaths(dev.repo))
    devs.push(dev)
  }
  const [a, b] = devs
  await cli(b, ['connect', a.address])
  await cli(a, ['swarm', 'create', SWARM])
  const code = (await cli(a, ['swarm', 'invite', SWARM])).split('\n')[0].trim()
  await cli(b, ['swarm', 'join', code])
  await cli(a, ['share', 'add', a.share, '--swarm', SWARM, '--name', SHARE])
  await until(`hc-b sees the offer of share ${SHARE}`, async () => {
    const { offers } = await b.api.get('share/offers')
    return offers.some(o => o.name === SHARE)
  }, 60_000)
  await cli(b, ['share', 'accept', SHARE, b.share])

  const status = async (dev) => dev.api.get(`share/status?share=${SHARE}`)
  const system = {
    name: 'hc',
    a,
    b,
    ports: [a.port, b.port],
    memTrace,
    pids: () => [a.pid, b.pid],
    status,
    async idle () {
      for (const dev of devs) {
        const st = await status(dev)
        if (st.state !== 'idle' || st.needFiles !== 0 || st.needBytes !== 0) return false
        if (!st.peers.every(p => p.online && p.inSync)) return false
      }
      return true
    },
    /** "A state / B state" (`key`; `text` adds the files B still needs), for the timeline of a change. */
    async phase () {
      const states = await Promise.all(devs.map(status))
      return {
        key: states.map(st => st.state).join(' / '),
        text: states.map(st => st.needFiles > 0 ? `${st.state}(need ${st.needFiles})` : st.state).join(' / ')
      }
    },
    async waitIdle (timeoutMs) {
      await until('home cloud idle', () => system.idle(), timeoutMs)
    },
    /** LevelDB indexes, heads, roster, config: everything but the chunk store. */
    indexDirs: () => devs.map(dev => repoPaths(dev.repo).shares),
    storeDirs: () => devs.map(dev => repoPaths(dev.repo).store),
    describe: () => 'Home Cloud',
    async stop () {
      await Promise.all(devs.map(dev => dev.daemon.stop('SIGTERM', 20_000)))
    }
  }
  await system.waitIdle(120_000)
  return system
}
