/**
 * `npm start`: two devices on this machine, on loopback, connected to each other.
 * Each is a real `homecloud` daemon in its own process with its own repo in a
 * temporary folder. Runs until Ctrl-C (or SIGTERM), then stops both and removes
 * the folder. Reads nothing from stdin, so it runs the same without a terminal.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import type { DeviceIdentity, PeerConnectionInfo } from '@homecloud/interface'
import { BIN_PATH, runCli, spawnDaemon } from './child.js'
import type { CliResult, DaemonChild } from './child.js'
import { repoPaths } from './repo.js'

const DEVICES = ['home-box', 'parents-box'] as const
const DAEMON_ARGS = ['--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0', '--no-mdns', '--no-upnp']

function say (text = ''): void {
  process.stdout.write(text + '\n')
}

/** Set once Ctrl-C (or SIGTERM) arrives; setup stops at its next step. */
let stopping: string | undefined

async function cli (args: string[]): Promise<CliResult> {
  if (stopping !== undefined) {
    throw new Error(`${stopping} during setup`)
  }
  const result = await runCli(args)
  if (result.code !== 0) {
    throw new Error(`homecloud ${args.join(' ')} failed (exit ${result.code}): ${result.stderr.trim()}`)
  }
  return result
}

/** A dialable address of a device, with its /p2p/ suffix. */
function dialAddress (identity: DeviceIdentity): string {
  const address = identity.addresses.find((a) => a.startsWith('/ip4/127.0.0.1/')) ?? identity.addresses[0]
  if (address === undefined) {
    throw new Error(`${identity.name} has no listen address`)
  }
  return address.includes('/p2p/') ? address : `${address}/p2p/${identity.peerId}`
}

/** Resolves to the reason the demo ends: a signal, or a device that died. */
async function run (dir: string, daemons: DaemonChild[], stopRequested: Promise<string>): Promise<{ reason: string, failed: boolean }> {
  // this very Node (the system's may be too old for libp2p) running this very binary
  const homecloud = `${relative(process.cwd(), process.execPath)} ${relative(process.cwd(), BIN_PATH)}`
  say(`Home Cloud demo: two devices on this machine, in ${dir}`)
  say()
  const repos = DEVICES.map((name) => join(dir, name))
  for (const [i, name] of DEVICES.entries()) {
    await cli(['--repo', repos[i], 'init', '--name', name])
  }

  for (const [i, name] of DEVICES.entries()) {
    if (stopping !== undefined) {
      throw new Error(`${stopping} during setup`)
    }
    say(`starting ${name}: homecloud --repo ${repos[i]} start ${DAEMON_ARGS.join(' ')}`)
    daemons.push(await spawnDaemon(repos[i], DAEMON_ARGS, {
      detached: true,
      onLine: (line) => { say(`  [${name}] ${line}`) }
    }))
  }
  say()

  const identities: DeviceIdentity[] = []
  for (const repo of repos) {
    identities.push(JSON.parse((await cli(['--repo', repo, 'id', '--json'])).stdout) as DeviceIdentity)
  }
  const target = dialAddress(identities[1])
  say(`connecting ${identities[0].name} to ${identities[1].name}: homecloud --repo ${repos[0]} connect ${target}`)
  say('  ' + (await cli(['--repo', repos[0], 'connect', target])).stdout.trim())
  say()

  for (const [i, repo] of repos.entries()) {
    const { peers } = JSON.parse((await cli(['--repo', repo, 'peers', '--json'])).stdout) as { peers: PeerConnectionInfo[] }
    const other = identities[1 - i]
    const seen = peers.some((peer) => peer.peerId === other.peerId)
    say(`${identities[i].name} (${identities[i].peerId}) ${seen ? 'is connected to' : 'does NOT see'} ${other.name}:`)
    say((await cli(['--repo', repo, 'peers'])).stdout.replace(/^/gm, '  ').trimEnd())
    say()
  }

  say('Both devices are running. Try:')
  for (const [i, repo] of repos.entries()) {
    const paths = repoPaths(repo)
    say(`  ${DEVICES[i]}: API ${daemons[i].apiUrl}  token file ${paths.token}`)
    say(`    ${homecloud} --repo ${repo} status`)
    say(`    curl -H "Authorization: Bearer $(cat ${paths.token})" ${daemons[i].apiUrl}/api/v1/peers`)
  }
  say()
  say('Press Ctrl-C to stop both devices and remove the demo folder.')

  const exits = daemons.map(async (daemon, i) => daemon.exited.then(({ code, signal }) =>
    ({ reason: `${DEVICES[i]} exited unexpectedly (code ${code}, signal ${signal})`, failed: true })))
  return Promise.race([stopRequested.then((reason) => ({ reason, failed: false })), ...exits])
}

async function main (): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'homecloud-demo-'))
  const daemons: DaemonChild[] = []
  const { promise: stopRequested, resolve: requestStop } = Promise.withResolvers<string>()
  const onSignal = (signal: NodeJS.Signals): void => {
    stopping ??= signal
    requestStop(signal)
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  process.on('SIGHUP', onSignal)
  let code: number
  try {
    const { reason, failed } = await run(dir, daemons, stopRequested)
    say()
    say(`${reason}: stopping`)
    code = failed ? 1 : 0
  } catch (err) {
    process.stderr.write(`demo failed: ${(err as Error).message}\n`)
    code = 1
  } finally {
    for (const [i, daemon] of daemons.entries()) {
      const { code: exit } = await daemon.stop('SIGTERM')
      say(`${DEVICES[i]} stopped (exit ${exit})`)
      if (exit !== 0) {
        code = 1
      }
    }
    await rm(dir, { recursive: true, force: true })
    say(`removed ${dir}`)
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    process.off('SIGHUP', onSignal)
  }
  return code
}

process.exitCode = await main()
