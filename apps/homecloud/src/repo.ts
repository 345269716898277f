/**
 * The repo: the folder where a device keeps its key, config, API token and
 * databases. `apps/homecloud` is the only part that reads it (STYLE.md "Inputs").
 *
 * ```
 * <repo>/            0700
 *   config.json      versioned config (config.ts)
 *   key              ed25519 private key, libp2p protobuf (kubo's format), 0600
 *   token            control API bearer token, 0600
 *   datastore/       LevelDB: peer store and DHT records
 *   swarms/          LevelDB: private swarms (rosters, secrets)
 *   store/           LevelDB: chunk index (files referenced in place), DAG nodes, pins
 *   shares/          LevelDB: shares (definitions, file indexes, heads, kept-version records)
 *   lock             pid of the running daemon
 *   api              URL of the running daemon's control API
 * ```
 */
import { randomBytes } from 'node:crypto'
import { chmod, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises'
import { homedir, hostname } from 'node:os'
import { join, resolve } from 'node:path'
import { RepoError } from '@homecloud/interface'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { ConfigError } from './errors.js'
import { MAX_NAME_LENGTH, defaultConfig, parseConfig } from './config.js'
import type { Config } from './config.js'

export interface RepoPaths {
  root: string
  config: string
  key: string
  token: string
  datastore: string
  swarms: string
  store: string
  shares: string
  lock: string
  api: string
}

export function repoPaths (root: string): RepoPaths {
  const dir = resolve(root)
  return {
    root: dir,
    config: join(dir, 'config.json'),
    key: join(dir, 'key'),
    token: join(dir, 'token'),
    datastore: join(dir, 'datastore'),
    swarms: join(dir, 'swarms'),
    store: join(dir, 'store'),
    shares: join(dir, 'shares'),
    lock: join(dir, 'lock'),
    api: join(dir, 'api')
  }
}

/** `--repo DIR`, else `$HOMECLOUD_REPO`, else `~/.homecloud`. */
export function resolveRepoPath (flag: string | undefined, env: NodeJS.ProcessEnv = process.env, home = homedir()): string {
  if (flag !== undefined && flag !== '') {
    return resolve(flag)
  }
  const fromEnv = env.HOMECLOUD_REPO
  if (fromEnv !== undefined && fromEnv !== '') {
    return resolve(fromEnv)
  }
  return join(home, '.homecloud')
}

/** A repo opened for use: everything the daemon needs to start. */
export interface Repo {
  paths: RepoPaths
  config: Config
  privateKey: PrivateKey
  token: string
}

export interface InitResult {
  paths: RepoPaths
  config: Config
  peerId: string
}

/** The device name `init` uses when none is given. */
export function defaultDeviceName (): string {
  return hostname().slice(0, MAX_NAME_LENGTH) || 'homecloud'
}

/**
 * Create a repo: folder (0700), key and token (0600), then config.json last, so a
 * repo with a config is a complete one. Refuses a folder that already holds anything.
 */
export async function initRepo (root: string, options: { name?: string } = {}): Promise<InitResult> {
  const paths = repoPaths(root)
  const name = options.name ?? defaultDeviceName()
  const config = defaultConfig(name)
  // validate before touching the disk: bad input changes nothing
  parseConfig(JSON.stringify(config))
  await mkdir(paths.root, { recursive: true, mode: 0o700 })
  const existing = await readdir(paths.root)
  if (existing.length > 0) {
    throw new RepoError(`${paths.root} already exists and is not empty: refusing to overwrite a repo`)
  }
  await chmod(paths.root, 0o700)
  const privateKey = await generateKeyPair('Ed25519')
  // 'wx' fails if another init won the race for the same folder
  await writeFile(paths.key, privateKeyToProtobuf(privateKey), { mode: 0o600, flag: 'wx' })
  await writeFile(paths.token, randomBytes(32).toString('base64url') + '\n', { mode: 0o600, flag: 'wx' })
  await writeFile(paths.config, JSON.stringify(config, null, 2) + '\n', { mode: 0o600, flag: 'wx' })
  return { paths, config, peerId: peerIdFromPrivateKey(privateKey).toString() }
}

/** Open an existing repo; the errors say which file is wrong and how to fix it. */
export async function openRepo (root: string): Promise<Repo> {
  const paths = repoPaths(root)
  const configText = await readRepoFile(paths, paths.config)
  let config: Config
  try {
    config = parseConfig(configText)
  } catch (err) {
    throw new ConfigError(`${paths.config}: ${(err as Error).message}`, { cause: err })
  }
  return { paths, config, privateKey: await loadPrivateKey(paths), token: await readToken(paths) }
}

export async function loadPrivateKey (paths: Pick<RepoPaths, 'key'>): Promise<PrivateKey> {
  await checkPrivate(paths.key)
  const bytes = await readFile(paths.key)
  try {
    return privateKeyFromProtobuf(bytes)
  } catch (err) {
    throw new RepoError(`${paths.key} is not a valid private key: ${(err as Error).message}`, { cause: err })
  }
}

export async function readToken (paths: Pick<RepoPaths, 'root' | 'token'>): Promise<string> {
  await checkPrivate(paths.token)
  const token = (await readRepoFile(paths, paths.token)).trim()
  if (token.length < 16) {
    throw new RepoError(`${paths.token} does not hold a valid API token`)
  }
  return token
}

/** Like ssh with its keys: a secret readable by others is refused, not silently used. */
async function checkPrivate (file: string): Promise<void> {
  let mode: number
  try {
    mode = (await stat(file)).mode
  } catch (err) {
    throw missingRepo(file, err)
  }
  if ((mode & 0o077) !== 0) {
    throw new RepoError(`${file} is readable by other users (mode ${(mode & 0o777).toString(8)}): run chmod 600 ${file}`)
  }
}

async function readRepoFile (paths: Pick<RepoPaths, 'root'>, file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new RepoError(`no repo at ${paths.root}: create it with \`homecloud init\``, { cause: err })
    }
    throw new RepoError(`cannot read ${file}: ${(err as Error).message}`, { cause: err })
  }
}

function missingRepo (file: string, err: unknown): RepoError {
  if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
    return new RepoError(`${file} is missing: is this a repo? (create one with \`homecloud init\`)`, { cause: err })
  }
  return new RepoError(`cannot read ${file}: ${(err as Error).message}`, { cause: err })
}
