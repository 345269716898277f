// Two Syncthing instances on loopback sharing one folder, configured like FACTS.md's
// "Syncthing at its best": only tcp://127.0.0.1, static addresses, no global/local
// discovery, relays, NAT traversal (UPnP/NAT-PMP/STUN), usage or crash reporting, no
// upgrades, GUI/REST on 127.0.0.1 with an API key, the fs watcher on with the given delay,
// normal CPU priority (its default lowers it), everything else at Syncthing's defaults.
import { execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { until } from '../util.mjs'

export const FOLDER_ID = 'bench'

/** Installs Debian's syncthing when it is missing; its version line. */
export function ensureSyncthing () {
  const found = () => { try { return execFileSync('syncthing', ['--version'], { encoding: 'utf8' }).trim() } catch { return null } }
  let version = found()
  if (version == null) {
    console.log('installing syncthing (apt-get install -y syncthing) ...')
    execFileSync('apt-get', ['install', '-y', 'syncthing'], { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
    version = found()
    if (version == null) throw new Error('syncthing is still missing after apt-get install')
  }
  return version
}

/** A free TCP port on 127.0.0.1 (Syncthing wants its ports in its config). */
export async function freePort () {
  const server = createServer()
  await new Promise((resolve, reject) => server.listen(0, '127.0.0.1', resolve).once('error', reject))
  const { port } = server.address()
  await new Promise(resolve => server.close(resolve))
  return port
}

function esc (text) {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

function configXml ({ self, peer, share, delayS }) {
  const device = (d) => `    <device id="${d.id}" name="${esc(d.name)}" compression="metadata" introducer="false">
        <address>tcp://127.0.0.1:${d.port}</address>
        <paused>false</paused>
        <autoAcceptFolders>false</autoAcceptFolders>
    </device>`
  return `<configuration version="36">
    <folder id="${FOLDER_ID}" label="${FOLDER_ID}" path="${esc(share)}" type="sendreceive" rescanIntervalS="3600" fsWatcherEnabled="true" fsWatcherDelayS="${delayS}" ignorePerms="false" autoNormalize="true">
        <filesystemType>basic</filesystemType>
        <device id="${self.id}"></device>
        <device id="${peer.id}"></device>
        <minDiskFree unit="%">1</minDiskFree>
        <markerName>.stfolder</markerName>
    </folder>
${device(self)}
${device(peer)}
    <gui enabled="true" tls="false" debugging="false">
        <address>127.0.0.1:${self.guiPort}</address>
        <apikey>${self.apiKey}</apikey>
    </gui>
    <options>
        <listenAddress>tcp://127.0.0.1:${self.port}</listenAddress>
        <globalAnnounceServer></globalAnnounceServer>
        <globalAnnounceEnabled>false</globalAnnounceEnabled>
        <localAnnounceEnabled>false</localAnnounceEnabled>
        <relaysEnabled>false</relaysEnabled>
        <natEnabled>false</natEnabled>
        <stunKeepaliveStartS>0</stunKeepaliveStartS>
        <stunServer></stunServer>
        <startBrowser>false</startBrowser>
        <urAccepted>-1</urAccepted>
        <urSeen>3</urSeen>
        <crashReportingEnabled>false</crashReportingEnabled>
        <autoUpgradeIntervalH>0</autoUpgradeIntervalH>
        <setLowPriority>false</setLowPriority>
        <restartOnWakeup>false</restartOnWakeup>
    </options>
</configuration>
`
}

async function rest (inst, path, { method = 'GET', timeoutMs = 10_000 } = {}) {
  const res = await fetch(`http://127.0.0.1:${inst.guiPort}${path}`, {
    method,
    headers: { 'X-API-Key': inst.apiKey },
    signal: AbortSignal.timeout(timeoutMs)
  })
  if (!res.ok) throw new Error(`syncthing ${inst.name} ${path}: HTTP ${res.status} ${await res.text()}`)
  return res.json()
}

/**
 * Starts the pair under `dir`; `track(child)` is told about every process so the caller
 * can kill it on exit. Returns the system object the scenarios drive.
 */
export async function startSyncthingPair ({ dir, label, delayS, track }) {
  const insts = []
  for (const name of ['a', 'b']) {
    const home = join(dir, `home-${name}`)
    const share = join(dir, `share-${name}`)
    const stage = join(dir, `stage-${name}`)
    await mkdir(home, { recursive: true })
    await mkdir(join(share, '.stfolder'), { recursive: true })
    await mkdir(stage, { recursive: true })
    execFileSync('syncthing', ['generate', `--home=${home}`, '--no-default-folder', '--skip-port-probing'], { stdio: 'ignore', env: { ...process.env, HOME: home } })
    const id = execFileSync('syncthing', ['serve', `--home=${home}`, '--device-id'], { encoding: 'utf8', env: { ...process.env, HOME: home } }).trim()
    insts.push({ name: `${label}-${name}`, home, share, stage, id, port: await freePort(), guiPort: await freePort(), apiKey: randomBytes(16).toString('hex') })
  }
  const [a, b] = insts
  for (const [self, peer] of [[a, b], [b, a]]) {
    await writeFile(join(self.home, 'config.xml'), configXml({ self, peer, share: self.share, delayS }))
  }
  for (const inst of insts) {
    const log = createWriteStream(join(dir, `${inst.name}.log`))
    const child = spawn('syncthing', ['serve', `--home=${inst.home}`, '--no-browser', '--no-restart', '--no-upgrade', '--logflags=0'], {
      // STMONITORED: run the syncing process itself, without the monitor parent it forks
      // otherwise (even with --no-restart), so its pid is the one whose CPU and RSS we read
      env: { ...process.env, HOME: inst.home, STMONITORED: '1', STNORESTART: '1', STNOUPGRADE: '1', STNODEFAULTFOLDER: '1' },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    child.stdout.pipe(log)
    child.stderr.pipe(log)
    track(child)
    inst.child = child
    inst.pid = child.pid
  }
  for (const inst of insts) {
    await until(`syncthing ${inst.name} REST`, async () => (await rest(inst, '/rest/system/ping')).ping === 'pong', 60_000)
  }
  await until(`syncthing ${label} a↔b connected`, async () => (await rest(a, '/rest/system/connections')).connections[b.id]?.connected === true, 60_000)

  return {
    name: label,
    a,
    b,
    /** The ports whose packets are this system's traffic. */
    ports: [a.port, b.port],
    pids: () => [a.pid, b.pid],
    /** Both sides idle with nothing needed: the previous change is fully settled. */
    async idle () {
      for (const inst of insts) {
        const st = await rest(inst, `/rest/db/status?folder=${FOLDER_ID}`)
        if (st.state !== 'idle' || st.needTotalItems !== 0 || st.pullErrors > 0) return false
      }
      return true
    },
    /** "A state / B state" (`key`; `text` adds the files B still needs), for the timeline of a change. */
    async phase () {
      const states = await Promise.all(insts.map(inst => rest(inst, `/rest/db/status?folder=${FOLDER_ID}`)))
      return {
        key: states.map(st => st.state).join(' / '),
        text: states.map(st => st.needTotalItems > 0 ? `${st.state}(need ${st.needTotalItems})` : st.state).join(' / ')
      }
    },
    async waitIdle (timeoutMs) {
      await until(`syncthing ${label} idle`, () => this.idle(), timeoutMs)
    },
    /** Syncthing's own count (after TLS, BEP messages incl. compression), for comparison. */
    async appBytes () {
      const c = await rest(a, '/rest/system/connections')
      return c.total.inBytesTotal + c.total.outBytesTotal
    },
    /** Where each instance keeps its index (the database and config). */
    indexDirs: () => [a.home, b.home],
    describe: () => `Syncthing (${delayS} s watcher delay)`,
    async stop () {
      await Promise.all(insts.map(inst => new Promise(resolve => {
        if (inst.child.exitCode != null || inst.child.signalCode != null) return resolve()
        inst.child.once('exit', resolve)
        inst.child.kill('SIGTERM')
        setTimeout(() => inst.child.kill('SIGKILL'), 10_000).unref()
      })))
    }
  }
}
