/**
 * `npm start`: two devices on this machine, on loopback, connected to each other.
 * Each is a real `homecloud` daemon in its own process with its own repo in a
 * temporary folder. The first creates a private swarm, invites the second and
 * shares a folder of sample files with it; the demo shows the sync until both
 * folders are byte-identical (compared by hashes). Runs until Ctrl-C (or
 * SIGTERM), then stops both and removes the folder. Reads nothing from stdin,
 * so it runs the same without a terminal.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import type { DeviceIdentity, PeerConnectionInfo } from '@homecloud/interface'
import type { ShareOffer, ShareStatus } from '@homecloud/node'
import { folderTree, sameFolders } from '@homecloud/sync'
import { BIN_PATH, runCli, spawnDaemon } from './child.js'
import type { CliResult, DaemonChild } from './child.js'
import { formatBytes } from './progress.js'
import { repoPaths } from './repo.js'

const DEVICES = ['home-box', 'parents-box'] as const
const DAEMON_ARGS = ['--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0', '--no-mdns', '--no-upnp']
/** The demo gives up on the first sync after this long (a 5 MiB folder takes about a second). */
const SYNC_TIMEOUT_MS = 120_000
const POLL_MS = 250

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

  const [mine, theirs] = await shareSampleFolder(dir, repos)

  say('Both devices are running. Try:')
  for (const [i, repo] of repos.entries()) {
    const paths = repoPaths(repo)
    say(`  ${DEVICES[i]}: API ${daemons[i].apiUrl}  token file ${paths.token}`)
    say(`    ${homecloud} --repo ${repo} status`)
    say(`    curl -H "Authorization: Bearer $(cat ${paths.token})" ${daemons[i].apiUrl}/api/v1/peers`)
  }
  say(`    ${homecloud} --repo ${repos[1]} share status family-docs`)
  say()
  say('The shared folder, on each device:')
  say(`  ${DEVICES[0]}: ${mine}`)
  say(`  ${DEVICES[1]}: ${theirs}`)
  say(`Edit a file in one (e.g. echo hello >> ${join(mine, 'notes', 'todo.txt')}): it appears in the other within a second or two.`)
  say()
  say('Press Ctrl-C to stop both devices and remove the demo folder.')

  const exits = daemons.map(async (daemon, i) => daemon.exited.then(({ code, signal }) =>
    ({ reason: `${DEVICES[i]} exited unexpectedly (code ${code}, signal ${signal})`, failed: true })))
  return Promise.race([stopRequested.then((reason) => ({ reason, failed: false })), ...exits])
}

/** Waits (bounded, and ending early on Ctrl-C) until `condition` holds. */
async function until (condition: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (stopping !== undefined) throw new Error(`${stopping} during setup`)
    if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs / 1000} s`)
    await new Promise((resolve) => setTimeout(resolve, POLL_MS))
  }
}

/** A few text files, a subfolder and a 5 MiB binary. */
async function writeSampleFiles (root: string): Promise<void> {
  await mkdir(join(root, 'notes'), { recursive: true })
  await mkdir(join(root, 'photos'), { recursive: true })
  await writeFile(join(root, 'README.txt'), 'This folder is shared by two Home Cloud devices.\nEdit, add or delete a file here: the other device follows.\n')
  await writeFile(join(root, 'notes', 'todo.txt'), '- call the parents\n- back up the photos\n')
  await writeFile(join(root, 'notes', 'ideas.md'), '# Ideas\n\nA box at home, a box at the parents\', the same folder on both.\n')
  await writeFile(join(root, 'photos', 'holiday.bin'), randomBytes(5 * 1024 * 1024))
}

/**
 * Swarm, invite, join, then the sample folder shared from the first device
 * and accepted on the second; progress is printed until both folders are
 * byte-identical. Returns the two folders.
 */
async function shareSampleFolder (dir: string, repos: string[]): Promise<[string, string]> {
  const folders: [string, string] = [join(dir, `${DEVICES[0]}-docs`), join(dir, `${DEVICES[1]}-docs`)]
  say(`${DEVICES[0]} creates the private swarm "family" and invites ${DEVICES[1]}:`)
  await cli(['--repo', repos[0], 'swarm', 'create', 'family'])
  const code = (await cli(['--repo', repos[0], 'swarm', 'invite', 'family'])).stdout.split('\n')[0]
  say(`  homecloud swarm invite family -> ${code}`)
  say('  ' + (await cli(['--repo', repos[1], 'swarm', 'join', code])).stdout.trim())
  say()

  await writeSampleFiles(folders[0])
  say(`${DEVICES[0]} shares ${folders[0]} (3 text files in 2 subfolders, a 5 MiB photo):`)
  say('  ' + (await cli(['--repo', repos[0], 'share', 'add', folders[0], '--swarm', 'family', '--name', 'family-docs'])).stdout.split('\n')[0])
  await until(async () => {
    const { offers } = JSON.parse((await cli(['--repo', repos[1], 'share', 'list', '--json'])).stdout) as { offers: ShareOffer[] }
    return offers.some((offer) => offer.name === 'family-docs')
  }, 30_000, `${DEVICES[1]} was not offered the share`)
  say(`${DEVICES[1]} is offered it and accepts it into ${folders[1]}:`)
  say('  ' + (await cli(['--repo', repos[1], 'share', 'accept', 'family-docs', folders[1]])).stdout.split('\n')[0])

  const startedAt = Date.now()
  let shown = ''
  await until(async () => {
    const status = JSON.parse((await cli(['--repo', repos[1], 'share', 'status', 'family-docs', '--json'])).stdout) as ShareStatus
    const line = `  ${DEVICES[1]}: ${status.state}, ${status.files} files (${formatBytes(status.bytes)}) here` +
      (status.needFiles > 0 ? `, ${status.needFiles} files (${formatBytes(status.needBytes)}) to go, ${Math.floor(status.progress * 100)}%` : '')
    if (line !== shown) say(line)
    shown = line
    return sameFolders(folders)
  }, SYNC_TIMEOUT_MS, 'the two folders did not become identical')
  const files = Object.values(await folderTree(folders[1])).filter((v) => v !== 'dir').length
  say(`Both folders are identical (${files} files, compared by SHA-256) after ${((Date.now() - startedAt) / 1000).toFixed(1)} s.`)
  say()
  return folders
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
