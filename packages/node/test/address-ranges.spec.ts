import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { multiaddr } from '@multiformats/multiaddr'
import { MAX_PUBLIC_ADDRESS_RANGES, parsePublicAddressRanges, publicAddressRule, reachabilityOf, resolveConfig } from '../src/index.js'
import { startDevice, testConfig, useDevices, waitFor } from './helpers.js'

const now = Date.now()
const verified = (ma: string): { multiaddr: ReturnType<typeof multiaddr>, verified: boolean, expires: number, lastVerified: number } =>
  ({ multiaddr: multiaddr(ma), verified: true, expires: now + 60_000, lastVerified: now })

describe('public address ranges', () => {
  it('parses CIDR ranges and normalises them', () => {
    assert.deepEqual(parsePublicAddressRanges(['10.77.0.0/24', 'FD00:77::/64', '0.0.0.0/0']), ['10.77.0.0/24', 'fd00:77::/64', '0.0.0.0/0'])
    assert.deepEqual(parsePublicAddressRanges([]), [])
  })

  it('refuses bad input with a clear error naming the entry', () => {
    const cases: Array<[unknown, RegExp]> = [
      ['10.77.0.0/24', /must be an array/],
      [['10.77.0.0'], /"10\.77\.0\.0" is not a CIDR range/],
      [['10.77.0.0/33'], /is not a CIDR range/],
      [['fd00::/129'], /is not a CIDR range/],
      [['example.com/24'], /is not a CIDR range/],
      [[42], /42 is not a CIDR range/],
      [['10.77.0.1/24'], /host bits set; did you mean "10\.77\.0\.0\/24"/],
      [Array.from({ length: MAX_PUBLIC_ADDRESS_RANGES + 1 }, () => '10.0.0.0/8'), /at most 32/]
    ]
    for (const [value, message] of cases) {
      assert.throws(() => parsePublicAddressRanges(value), { name: 'InvalidParametersError', code: 'ERR_INVALID_PARAMETERS', message }, String(value))
    }
  })

  it('is checked by resolveConfig, and defaults to none', async () => {
    const config = await testConfig('ranges')
    assert.deepEqual(resolveConfig(config).publicAddressRanges, [])
    assert.deepEqual(resolveConfig({ ...config, publicAddressRanges: ['10.77.0.0/24'] }).publicAddressRanges, ['10.77.0.0/24'])
    assert.throws(() => resolveConfig({ ...config, publicAddressRanges: ['10.77.0.0/99'] }), { code: 'ERR_INVALID_PARAMETERS', message: /config\.publicAddressRanges/ })
  })

  it('counts addresses in the ranges as public, on top of libp2p\'s rule', () => {
    const lab = publicAddressRule(['10.77.0.0/24', 'fd00:77::/64'])
    const plain = publicAddressRule([])
    for (const [ma, inLab, byLibp2p] of [
      ['/ip4/10.77.0.10/tcp/4001', true, false],
      ['/ip4/10.77.1.10/tcp/4001', false, false],
      ['/ip4/127.0.0.1/tcp/4001', false, false],
      ['/ip4/81.2.69.160/tcp/4001', true, true],
      ['/ip6/fd00:77::5/tcp/4001', true, false],
      ['/ip6/fd00:78::5/tcp/4001', false, false],
      ['/dns4/example.com/tcp/4001', true, true]
    ] as const) {
      assert.equal(lab(multiaddr(ma)), inLab, `${ma} with the lab ranges`)
      assert.equal(plain(multiaddr(ma)), byLibp2p, `${ma} by libp2p's rule`)
    }
  })

  it('makes a device with a verified address in the ranges public', () => {
    const addresses = [verified('/ip4/10.77.0.10/tcp/4001'), verified('/ip4/127.0.0.1/tcp/4001')]
    assert.equal(reachabilityOf(addresses), 'private')
    assert.equal(reachabilityOf(addresses, publicAddressRule(['10.77.0.0/24'])), 'public')
    // a relay address in the range is still the relay's reachability, not the device's
    const relayed = [verified('/ip4/10.77.0.10/tcp/4001/p2p/12D3KooWNhrPzaRWLZkgRrrFE5t7VfJpDpBzgeNrGwYqciQGLsKu/p2p-circuit')]
    assert.equal(reachabilityOf(relayed, publicAddressRule(['10.77.0.0/24'])), 'private')
  })

  describe('on a running device (loopback)', () => {
    const { devices } = useDevices()

    it('a DHT in auto mode serves once a listening address is in the ranges, and not without them', async () => {
      // loopback stands in for the lab's internet: no traffic leaves 127.0.0.1
      const ranged = await startDevice(devices, 'ranged', { publicAddressRanges: ['127.0.0.0/8'], services: { dht: 'auto' } })
      const plain = await startDevice(devices, 'plain', { services: { dht: 'auto' } })
      await waitFor(() => ranged.status().dhtMode === 'server', { timeout: 10_000, what: 'the ranged device to become a DHT server' })
      assert.equal(ranged.status().reachability, 'public')
      assert.equal(ranged.identity().reachability, 'public')
      assert.equal(plain.status().reachability, 'private')
      assert.equal(plain.status().dhtMode, 'client')
    })
  })
})
