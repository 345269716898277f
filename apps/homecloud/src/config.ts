/**
 * `config.json` of a repo: its shape, defaults, validation and migrations.
 * Syncthing's model: the file carries a `version`; one migration function per
 * version step brings an old file up to date; a file from a newer Home Cloud is
 * refused rather than guessed at.
 */
import { ConfigError } from './errors.js'

export const CONFIG_VERSION = 1

/** What a device keeps between starts; command-line flags of `start` override it. */
export interface Config {
  version: number
  /** Device name shown to other devices. */
  name: string
  /** libp2p listen multiaddrs. */
  listen: string[]
  /** Control API `HOST:PORT`. */
  api: string
  /** Peers dialled at start (none by default: no public bootstrap list, D3). */
  bootstrap: string[]
  services: {
    mdns: boolean
    upnp: boolean
    /** Serve circuit relay reservations: `auto` (only while publicly reachable), `true` (always) or `false` (never). */
    relayServer: boolean | 'auto'
    /** Upgrade relayed member connections to direct WebRTC ones (default on). */
    webrtc?: boolean
    /** Run a STUN server for the members (a public device; default off). */
    stunServer?: boolean
  }
  /** STUN servers for WebRTC (`HOST:PORT`); by default those of members that run one. */
  stunServers?: string[]
  /** IP ranges (CIDR) counted as public although libp2p calls them private: a company LAN, a NAT lab. Optional; none by default. */
  publicAddressRanges?: string[]
}

export const DEFAULT_LISTEN = ['/ip4/0.0.0.0/tcp/4001']
export const DEFAULT_API = '127.0.0.1:5780'
export const MAX_NAME_LENGTH = 64
// eslint-disable-next-line no-control-regex
export const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/

export function defaultConfig (name: string): Config {
  return {
    version: CONFIG_VERSION,
    name,
    listen: [...DEFAULT_LISTEN],
    api: DEFAULT_API,
    bootstrap: [],
    services: { mdns: true, upnp: true, relayServer: 'auto' }
  }
}

/** A raw config object as read from disk, before validation. */
export type RawConfig = Record<string, unknown> & { version: number }

/**
 * `migrations[n]` turns a version `n` config into version `n + 1`. Version 1 is
 * the first released format, so the table is empty; a format change adds one
 * entry here, bumps CONFIG_VERSION and adds a test with a file of the old shape.
 */
export type ConfigMigration = (config: RawConfig) => RawConfig
export const CONFIG_MIGRATIONS: Readonly<Record<number, ConfigMigration>> = Object.freeze({})

/** Bring a parsed config file up to `target`, one step at a time. */
export function migrateConfig (raw: unknown, migrations: Readonly<Record<number, ConfigMigration>> = CONFIG_MIGRATIONS, target = CONFIG_VERSION): RawConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError('config is not a JSON object')
  }
  let config = raw as RawConfig
  if (!Number.isInteger(config.version) || config.version < 1) {
    throw new ConfigError(`config has no valid "version" (found ${JSON.stringify(config.version)})`)
  }
  if (config.version > target) {
    throw new ConfigError(`config version ${config.version} is newer than this Home Cloud understands (${target}): upgrade homecloud`)
  }
  while (config.version < target) {
    const step = migrations[config.version]
    if (step === undefined) {
      throw new ConfigError(`no migration from config version ${config.version}`)
    }
    const next = step(structuredClone(config))
    if (next.version !== config.version + 1) {
      throw new ConfigError(`migration from config version ${config.version} produced version ${next.version}`)
    }
    config = next
  }
  return config
}

/** Check every field of a current-version config; the message names the field. */
export function validateConfig (raw: RawConfig): Config {
  const fail = (field: string, want: string): never => {
    throw new ConfigError(`config field "${field}" must be ${want}`)
  }
  const isStringArray = (value: unknown): value is string[] =>
    Array.isArray(value) && value.every((item) => typeof item === 'string' && item.length > 0)
  const { name, listen, api, bootstrap, services } = raw
  // control characters would reach other devices' terminals
  if (typeof name !== 'string' || name.trim() === '' || name.length > MAX_NAME_LENGTH || CONTROL_CHARACTERS.test(name)) {
    fail('name', `a non-empty string of at most ${MAX_NAME_LENGTH} characters, without control characters`)
  }
  if (!isStringArray(listen)) {
    fail('listen', 'a list of multiaddr strings')
  }
  if (typeof api !== 'string') {
    fail('api', 'a "HOST:PORT" string')
  }
  parseHostPort(api as string, 'config field "api"')
  if (!isStringArray(bootstrap)) {
    fail('bootstrap', 'a list of multiaddr strings')
  }
  if (typeof services !== 'object' || services === null) {
    fail('services', 'an object')
  }
  const s = services as Record<string, unknown>
  for (const key of ['mdns', 'upnp'] as const) {
    if (typeof s[key] !== 'boolean') {
      fail(`services.${key}`, 'true or false')
    }
  }
  if (typeof s.relayServer !== 'boolean' && s.relayServer !== 'auto') {
    fail('services.relayServer', 'true, false or "auto"')
  }
  // optional, so version 1 files without them stay valid
  for (const key of ['webrtc', 'stunServer'] as const) {
    if (s[key] !== undefined && typeof s[key] !== 'boolean') {
      fail(`services.${key}`, 'true or false')
    }
  }
  const { publicAddressRanges, stunServers } = raw
  if (stunServers !== undefined && !isStringArray(stunServers)) {
    fail('stunServers', 'a list of "HOST:PORT" strings')
  }
  // optional, so version 1 files without it stay valid; the device checks the CIDR syntax
  if (publicAddressRanges !== undefined && !isStringArray(publicAddressRanges)) {
    fail('publicAddressRanges', 'a list of CIDR ranges such as "10.77.0.0/24"')
  }
  return {
    version: raw.version,
    ...(publicAddressRanges === undefined ? {} : { publicAddressRanges: publicAddressRanges as string[] }),
    ...(stunServers === undefined ? {} : { stunServers: stunServers as string[] }),
    name: name as string,
    listen: listen as string[],
    api: api as string,
    bootstrap: bootstrap as string[],
    services: {
      mdns: s.mdns as boolean,
      upnp: s.upnp as boolean,
      relayServer: s.relayServer as boolean | 'auto',
      ...(s.webrtc === undefined ? {} : { webrtc: s.webrtc as boolean }),
      ...(s.stunServer === undefined ? {} : { stunServer: s.stunServer as boolean })
    }
  }
}

/** Parse, migrate and validate the text of a config file. */
export function parseConfig (text: string): Config {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    throw new ConfigError(`config is not valid JSON: ${(err as Error).message}`, { cause: err })
  }
  return validateConfig(migrateConfig(raw))
}

/** `HOST:PORT` (`[::1]:5780` for IPv6) → its parts; port 0 means "pick a free port". */
export function parseHostPort (value: string, what = 'address'): { host: string, port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(value)
  const port = Number(match?.[3])
  if (match === null || port > 65535) {
    throw new ConfigError(`${what} must be HOST:PORT (e.g. 127.0.0.1:5780), got ${JSON.stringify(value)}`)
  }
  return { host: match[1] ?? match[2], port }
}
