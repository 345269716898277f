import assert from 'node:assert/strict'
import { access } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import {
  createHomecloudNode, DEFAULT_LIMITS, DEFAULT_SERVICES, DEFAULT_TCP_LISTEN, DEFAULT_WS_LISTEN,
  InvalidParametersError, resolveConfig, type HomecloudNodeConfig
} from '../src/index.js'
import { tempDir } from './helpers.js'
import type { PrivateKey } from '@libp2p/interface'

const PEER = '12D3KooWNhrPzaRWLZkgRrrFE5t7VfJpDpBzgeNrGwYqciQGLsKu'

describe('config', () => {
  let privateKey: PrivateKey

  before(async () => {
    privateKey = await generateKeyPair('Ed25519')
  })

  function invalid (patch: Record<string, unknown>, message: RegExp): void {
    assert.throws(() => resolveConfig({ privateKey, name: 'pi', ...patch } as HomecloudNodeConfig), (err: Error & { code?: string }) => {
      assert.equal(err.code, InvalidParametersError.code)
      assert.match(err.message, message)
      return true
    })
  }

  it('applies the defaults: TCP 4001 + WebSockets, every service (the relay server in auto), no bootstrap', () => {
    const config = resolveConfig({ privateKey, name: 'pi' })
    assert.deepEqual(config.listen, [DEFAULT_TCP_LISTEN, DEFAULT_WS_LISTEN])
    assert.equal(DEFAULT_TCP_LISTEN, '/ip4/0.0.0.0/tcp/4001')
    assert.deepEqual(config.services, { ...DEFAULT_SERVICES })
    assert.equal(config.services.relayServer, 'auto')
    assert.equal(config.services.dht, 'auto')
    assert.deepEqual(config.bootstrap, [], 'no public bootstrap list, ever (D3)')
    assert.deepEqual(config.announce, [])
    assert.deepEqual(config.limits, { ...DEFAULT_LIMITS })
    assert.equal(config.start, true)
    assert.equal(config.datastorePath, undefined)
  })

  it('listens on TCP only when WebSockets are off', () => {
    assert.deepEqual(resolveConfig({ privateKey, name: 'pi', services: { websockets: false } }).listen, [DEFAULT_TCP_LISTEN])
  })

  it('keeps explicit values', () => {
    const config = resolveConfig({
      privateKey,
      name: 'pi',
      listen: ['/ip4/127.0.0.1/tcp/0'],
      announce: ['/dns4/home.example/tcp/4001'],
      bootstrap: [`/ip4/127.0.0.1/tcp/4001/p2p/${PEER}`],
      services: { dht: 'server', mdns: false },
      limits: { maxConnections: 40 },
      start: false
    })
    assert.deepEqual(config.listen, ['/ip4/127.0.0.1/tcp/0'])
    assert.deepEqual(config.announce, ['/dns4/home.example/tcp/4001'])
    assert.equal(config.bootstrap[0].toString(), `/ip4/127.0.0.1/tcp/4001/p2p/${PEER}`)
    assert.equal(config.services.dht, 'server')
    assert.equal(config.services.mdns, false)
    assert.equal(config.services.upnp, true)
    assert.equal(config.limits.maxConnections, 40)
    for (const relayServer of [true, false, 'auto'] as const) {
      assert.equal(resolveConfig({ privateKey, name: 'pi', services: { relayServer } }).services.relayServer, relayServer)
    }
    assert.equal(config.start, false)
  })

  it('rejects a missing or non-Ed25519 key', async () => {
    invalid({ privateKey: undefined }, /Ed25519/)
    invalid({ privateKey: await generateKeyPair('secp256k1') }, /Ed25519/)
  })

  it('rejects a bad name', () => {
    invalid({ name: '' }, /name/)
    invalid({ name: '   ' }, /name/)
    invalid({ name: 'x'.repeat(65) }, /name/)
    invalid({ name: 'bad\nname' }, /name/)
    invalid({ name: 42 }, /name/)
  })

  it('rejects bad addresses, naming the field and the value', () => {
    invalid({ listen: ['not a multiaddr'] }, /config\.listen: "not a multiaddr" is not a valid multiaddr/)
    invalid({ listen: [''] }, /config\.listen/)
    invalid({ listen: '/ip4/127.0.0.1/tcp/0' }, /config\.listen must be an array/)
    invalid({ announce: ['/ip4/999.1.1.1/tcp/1'] }, /config\.announce/)
    invalid({ bootstrap: ['/ip4/127.0.0.1/tcp/4001'] }, /must end with \/p2p\/<peer id>/)
    invalid({ listen: Array.from({ length: 65 }, () => '/ip4/127.0.0.1/tcp/0') }, /at most 64/)
  })

  it('rejects bad services', () => {
    invalid({ services: { dht: 'sometimes' } }, /services\.dht must be one of auto, server, client, off/)
    invalid({ services: { mdns: 'yes' } }, /services\.mdns must be a boolean/)
    invalid({ services: { relayServer: 'sometimes' as never } }, /services\.relayServer must be true, false or 'auto', got sometimes/)
    invalid({ services: { bitswap: true } }, /unknown service "bitswap"/)
  })

  it('rejects bad limits, a bad datastore path and a bad start flag', () => {
    invalid({ limits: { maxConnections: 0 } }, /maxConnections/)
    invalid({ datastorePath: '' }, /datastorePath/)
    invalid({ start: 'yes' }, /start/)
  })

  describe('createHomecloudNode with a bad config', () => {
    let dir: Awaited<ReturnType<typeof tempDir>>

    before(async () => { dir = await tempDir() })
    after(async () => { await dir.remove() })

    it('throws InvalidParametersError and creates nothing', async () => {
      const datastorePath = join(dir.path, 'datastore')
      await assert.rejects(createHomecloudNode({ privateKey, name: 'pi', datastorePath, listen: ['nope'] }), { code: InvalidParametersError.code })
      await assert.rejects(access(datastorePath), { code: 'ENOENT' })
    })
  })
})
