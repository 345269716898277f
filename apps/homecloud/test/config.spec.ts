import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { CONFIG_MIGRATIONS, CONFIG_VERSION, defaultConfig, migrateConfig, parseConfig, parseHostPort, validateConfig } from '../src/config.js'
import type { ConfigMigration, RawConfig } from '../src/config.js'

describe('config', () => {
  it('round-trips the default config', () => {
    const config = defaultConfig('box')
    assert.equal(config.version, CONFIG_VERSION)
    assert.deepEqual(parseConfig(JSON.stringify(config)), config)
    assert.deepEqual(config.listen, ['/ip4/0.0.0.0/tcp/4001'])
    assert.equal(config.api, '127.0.0.1:5780')
    assert.deepEqual(config.bootstrap, [])
  })

  it('has a migration for every version below the current one', () => {
    for (let version = 1; version < CONFIG_VERSION; version++) {
      assert.equal(typeof CONFIG_MIGRATIONS[version], 'function', `migration from ${version}`)
    }
  })

  it('runs each migration step once, in order', () => {
    const calls: number[] = []
    const migrations: Record<number, ConfigMigration> = {
      1: (c) => { calls.push(1); return { ...c, version: 2, listen: [c.listen as string] } },
      2: (c) => { calls.push(2); const { relay, ...rest } = c; return { ...rest, version: 3, services: { relayServer: relay } } }
    }
    const v1 = { version: 1, listen: '/ip4/0.0.0.0/tcp/4001', relay: true }
    const migrated = migrateConfig(v1, migrations, 3)
    assert.deepEqual(calls, [1, 2])
    assert.deepEqual(migrated, { version: 3, listen: ['/ip4/0.0.0.0/tcp/4001'], services: { relayServer: true } })
    // the input object is not modified
    assert.deepEqual(v1, { version: 1, listen: '/ip4/0.0.0.0/tcp/4001', relay: true })
    // a config already at version 2 runs only the last step
    calls.length = 0
    migrateConfig({ version: 2, listen: [], relay: false }, migrations, 3)
    assert.deepEqual(calls, [2])
  })

  it('refuses a config from a newer Home Cloud', () => {
    assert.throws(() => migrateConfig({ version: CONFIG_VERSION + 1 }), (err: Error & { code?: string }) =>
      err.code === 'ERR_CONFIG' && /newer than this Home Cloud understands/.test(err.message))
  })

  it('refuses a missing or invalid version, a gap in the migrations and a wrong step', () => {
    for (const raw of [{}, { version: 0 }, { version: '1' }, { version: 1.5 }, [], null, 'x']) {
      assert.throws(() => migrateConfig(raw), { code: 'ERR_CONFIG' }, JSON.stringify(raw))
    }
    assert.throws(() => migrateConfig({ version: 1 }, {}, 2), /no migration from config version 1/)
    const wrong: ConfigMigration = (c: RawConfig) => ({ ...c, version: 5 })
    assert.throws(() => migrateConfig({ version: 1 }, { 1: wrong }, 2), /produced version 5/)
  })

  it('names the bad field', () => {
    const good = defaultConfig('box') as unknown as RawConfig
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ name: '' }, /"name"/],
      [{ name: 'x'.repeat(65) }, /"name"/],
      [{ name: 'box\u001b[31m' }, /"name"/],
      [{ listen: '/ip4/0.0.0.0/tcp/4001' }, /"listen"/],
      [{ listen: [1] }, /"listen"/],
      [{ api: 5780 }, /"api"/],
      [{ api: 'localhost' }, /HOST:PORT/],
      [{ bootstrap: null }, /"bootstrap"/],
      [{ services: { mdns: 'yes', upnp: true, relayServer: false } }, /services\.mdns/],
      [{ services: { mdns: true, upnp: true, relayServer: 'sometimes' } }, /services\.relayServer/],
      [{ publicAddressRanges: '10.77.0.0/24' }, /"publicAddressRanges"/],
      [{ services: { mdns: true, upnp: true, relayServer: false, webrtc: 'on' } }, /services\.webrtc/],
      [{ services: { mdns: true, upnp: true, relayServer: false, stunServer: 1 } }, /services\.stunServer/],
      [{ stunServers: '10.77.0.1:3478' }, /"stunServers"/]
    ]
    for (const [change, message] of cases) {
      assert.throws(() => validateConfig({ ...good, ...change }), message, JSON.stringify(change))
    }
  })

  it("defaults the relay server to 'auto', and files with true or false stay valid", () => {
    const good = defaultConfig('box') as unknown as RawConfig
    assert.equal(validateConfig(good).services.relayServer, 'auto')
    for (const relayServer of [true, false]) {
      assert.equal(validateConfig({ ...good, services: { mdns: true, upnp: true, relayServer } }).services.relayServer, relayServer)
    }
  })

  it('keeps the optional publicAddressRanges, and files without it stay valid', () => {
    const good = defaultConfig('box') as unknown as RawConfig
    assert.equal(validateConfig(good).publicAddressRanges, undefined)
    assert.deepEqual(validateConfig({ ...good, publicAddressRanges: ['10.77.0.0/24'] }).publicAddressRanges, ['10.77.0.0/24'])
  })

  it('keeps the optional WebRTC settings, and files without them stay valid', () => {
    const good = defaultConfig('box') as unknown as RawConfig
    const plain = validateConfig(good)
    assert.equal(plain.services.webrtc, undefined)
    assert.equal(plain.stunServers, undefined)
    const set = validateConfig({ ...good, services: { mdns: true, upnp: true, relayServer: 'auto', webrtc: false, stunServer: true }, stunServers: ['10.77.0.1:3478'] })
    assert.equal(set.services.webrtc, false)
    assert.equal(set.services.stunServer, true)
    assert.deepEqual(set.stunServers, ['10.77.0.1:3478'])
  })

  it('refuses text that is not JSON', () => {
    assert.throws(() => parseConfig('{ version: 1'), { code: 'ERR_CONFIG' })
  })

  it('parses HOST:PORT', () => {
    assert.deepEqual(parseHostPort('127.0.0.1:5780'), { host: '127.0.0.1', port: 5780 })
    assert.deepEqual(parseHostPort('localhost:0'), { host: 'localhost', port: 0 })
    assert.deepEqual(parseHostPort('[::1]:8080'), { host: '::1', port: 8080 })
    for (const bad of ['127.0.0.1', '127.0.0.1:', ':5780', '127.0.0.1:65536', '::1:80', '1.2.3.4:80x', 'a b:1']) {
      assert.throws(() => parseHostPort(bad), { code: 'ERR_CONFIG' }, bad)
    }
  })
})
