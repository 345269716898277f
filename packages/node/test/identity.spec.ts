import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createHomecloudNode, ListenError } from '../src/index.js'
import { addressOf, startDevice, testConfig, useDevices, waitFor } from './helpers.js'

describe('identity and persistence', () => {
  const { devices, tempPath } = useDevices()

  it('is unknown and address-less until started, and keeps its PeerId across stop/start', async () => {
    const config = await testConfig('pi', { start: false, datastorePath: tempPath('restart') })
    const device = await createHomecloudNode(config)
    devices.push(device)

    assert.equal(device.peerId.toString(), config.privateKey.publicKey.toString())
    assert.deepEqual(device.identity().addresses, [])
    assert.equal(device.identity().reachability, 'unknown')
    assert.equal(device.status().uptimeMs, 0)

    await device.start()
    const first = device.identity()
    assert.equal(first.peerId, config.privateKey.publicKey.toString())
    assert.equal(first.name, 'pi')
    assert.equal(first.addresses.length, 1)
    assert.match(first.addresses[0], new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/\\d+/p2p/${first.peerId}$`))
    assert.equal(first.reachability, 'private', 'loopback only: nobody outside can dial it')

    await device.stop()
    assert.deepEqual(device.identity().addresses, [])
    await device.start() // reopens the LevelDB datastore it closed
    assert.equal(device.identity().peerId, first.peerId)
    assert.equal(device.identity().addresses.length, 1)
    await device.stop()

    // a new device from the same key and repo is the same device
    const again = await createHomecloudNode({ ...config, start: true })
    devices.push(again)
    assert.equal(again.peerId.toString(), first.peerId)
  })

  it('keeps a learned peer, its protocols and its signed record in LevelDB across restarts', async () => {
    const datastorePath = tempPath('peers')
    const config = await testConfig('pi', { datastorePath })
    const device = await createHomecloudNode(config)
    devices.push(device)
    const remote = await startDevice(devices, 'laptop')

    await device.connect(addressOf(remote))
    const learned = await waitFor(async () => {
      const peer = await device.libp2p.peerStore.get(remote.peerId)
      const all = remote.libp2p.getProtocols().every(p => peer.protocols.includes(p))
      return peer.peerRecordEnvelope != null && all ? peer : undefined
    }, { what: 'identify to store the remote' })

    await device.stop()

    const reopened = await createHomecloudNode({ ...config, start: false })
    devices.push(reopened)
    const peer = await reopened.libp2p.peerStore.get(remote.peerId)
    assert.deepEqual(peer.protocols, learned.protocols)
    assert.deepEqual(peer.peerRecordEnvelope, learned.peerRecordEnvelope)
    assert.deepEqual(peer.addresses.map(a => [a.multiaddr.toString(), a.isCertified]), learned.addresses.map(a => [a.multiaddr.toString(), a.isCertified]))
    assert.ok(peer.addresses.length > 0 && peer.addresses.every(a => a.isCertified))
  })

  it('fails to start on a port in use and releases its repo', async () => {
    const holder = await startDevice(devices, 'holder')
    const busy = addressOf(holder).replace(/\/p2p\/.*$/, '')
    const datastorePath = tempPath('busy')

    await assert.rejects(createHomecloudNode(await testConfig('pi', { listen: [busy], datastorePath })), (err: Error & { code?: string }) => {
      assert.equal(err.code, ListenError.code)
      assert.equal(err.message, `could not listen on ${busy}: ${busy}: listen EADDRINUSE: address already in use ${busy.split('/')[2]}:${busy.split('/')[4]}`)
      return true
    })
    // the LevelDB lock was released: the same repo opens again
    const retry = await createHomecloudNode(await testConfig('pi', { datastorePath }))
    devices.push(retry)
    assert.equal(retry.identity().addresses.length, 1)
  })
})
