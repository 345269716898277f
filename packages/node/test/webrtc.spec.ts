import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { RTCPeerConnection } from 'node-datachannel/polyfill'
import {
  DialFailedError, dialsFirst, IceServers, InvalidParametersError, isRelayed, lazyWebRTC, MAX_STUN_SERVERS, resolveConfig,
  webrtcAddressFor, type HomecloudNode, type StunService, type WebRTCTransportHandle, type WebRTCUpgrade
} from '../src/index.js'
import { answeringUpgrader, type WebRTCModule } from '../src/webrtc.js'
import { addressOf, startDevice, testConfig, useDevices, waitFor } from './helpers.js'
import type { Libp2p, MultiaddrConnection, PeerId, Upgrader } from '@libp2p/interface'

async function peerId (): Promise<PeerId> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
}

describe('WebRTC hole punching', () => {
  describe('addresses and roles', () => {
    it('builds the WebRTC address through the same relay, and only when the relay is named', async () => {
      const [relay, target] = [await peerId(), await peerId()]
      const relayed = multiaddr(`/ip4/10.77.0.10/tcp/4001/p2p/${relay.toString()}/p2p-circuit/p2p/${target.toString()}`)
      assert.equal(webrtcAddressFor({ remoteAddr: relayed, remotePeer: target })?.toString(),
        `/ip4/10.77.0.10/tcp/4001/p2p/${relay.toString()}/p2p-circuit/webrtc/p2p/${target.toString()}`)
      assert.equal(webrtcAddressFor({ remoteAddr: multiaddr(`/ip4/10.77.0.10/tcp/4001/p2p-circuit/p2p/${target.toString()}`), remotePeer: target }), undefined)
      assert.equal(webrtcAddressFor({ remoteAddr: multiaddr('/ip4/10.77.0.10/tcp/4001'), remotePeer: target }), undefined)
    })

    it('counts a WebRTC connection as direct although its address names the relay', async () => {
      const [relay, target] = [await peerId(), await peerId()]
      assert.equal(isRelayed(multiaddr(`/ip4/10.0.0.1/tcp/1/p2p/${relay.toString()}/p2p-circuit/p2p/${target.toString()}`)), true)
      assert.equal(isRelayed(multiaddr(`/ip4/10.0.0.1/tcp/1/p2p/${relay.toString()}/p2p-circuit/webrtc/p2p/${target.toString()}`)), false)
      assert.equal(isRelayed(multiaddr('/ip4/10.0.0.1/tcp/1')), false)
    })

    it('lets exactly one side of a pair dial', async () => {
      const [x, y] = [await peerId(), await peerId()]
      assert.notEqual(dialsFirst(x, y), dialsFirst(y, x))
    })
  })

  describe('ICE servers', () => {
    it('never falls back to public servers: an empty list stays empty', () => {
      const ice = new IceServers([], () => true)
      assert.deepEqual(ice.rtcConfiguration(), { iceServers: [] })
    })

    it('uses learned servers of members only, keeps a bounded number, and puts the configured ones first', async () => {
      const members = new Set<string>()
      const ice = new IceServers(['stun:192.0.2.1:3478'], (peer) => members.has(peer.toString()))
      const peers = await Promise.all(Array.from({ length: 10 }, peerId))
      peers.forEach((p, i) => { ice.learn(p, `stun:10.77.0.${i}:3478`) })
      assert.deepEqual(ice.urls(), ['stun:192.0.2.1:3478'])
      for (const p of peers) members.add(p.toString())
      // 8 kept: the two learned first are forgotten
      assert.deepEqual(ice.urls(), ['stun:192.0.2.1:3478', ...peers.slice(2).map((_, i) => `stun:10.77.0.${i + 2}:3478`)])
    })

    it('refuses bad STUN settings in the config with a stable code', async () => {
      const base = await testConfig('ice')
      for (const bad of [{ stunServers: ['nope:nope'] }, { stunServers: new Array(MAX_STUN_SERVERS + 1).fill('h:1') }, { stunServerPort: 65_536 }, { stunServerPort: 1.5 }]) {
        assert.throws(() => resolveConfig({ ...base, ...bad } as typeof base), (err: Error & { code?: string }) => err instanceof InvalidParametersError && err.code === 'ERR_INVALID_PARAMETERS', JSON.stringify(bad))
      }
      const good = resolveConfig({ ...base, stunServers: ['10.77.0.10'] })
      assert.deepEqual(good.stunServers, ['stun:10.77.0.10:3478'])
      assert.equal(good.services.webrtc, true)
      assert.equal(good.services.stunServer, false)
    })
  })

  describe('where node-datachannel cannot load', () => {
    it('the node starts and runs without WebRTC', async () => {
      let handle: WebRTCTransportHandle | undefined
      const node = await createLibp2p({
        addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
        transports: [tcp(), circuitRelayTransport(), lazyWebRTC({
          ice: new IceServers([], () => true),
          load: async () => { throw new Error('Cannot find module node_datachannel.node') }
        }, (h) => { handle = h })],
        connectionEncrypters: [noise()],
        streamMuxers: [yamux()],
        services: { identify: identify() }
      })
      try {
        assert.equal(node.status, 'started')
        assert.equal(handle?.available, false)
        assert.deepEqual(handle?.dialFilter([multiaddr(`/ip4/127.0.0.1/tcp/1/p2p/${node.peerId.toString()}/p2p-circuit/webrtc/p2p/${node.peerId.toString()}`)]), [])
        assert.ok(node.getMultiaddrs().length > 0)
      } finally {
        await node.stop()
      }
    })
  })

  describe('answering a WebRTC dial', () => {
    // real peer connections (node-datachannel); only the upgrader behind the check is a stub
    type PC = InstanceType<typeof RTCPeerConnection>
    const pcs: PC[] = []
    after(() => { for (const pc of pcs) pc.close() })
    const newPc = (): PC => {
      const pc = new RTCPeerConnection()
      pcs.push(pc)
      return pc
    }
    const maConn = (pc?: PC): MultiaddrConnection => ({ peerConnection: pc, remoteAddr: multiaddr('/webrtc') }) as unknown as MultiaddrConnection
    const counting = (): { upgrader: Upgrader, calls: () => number } => {
      let calls = 0
      return { upgrader: { upgradeInbound: async () => { calls++ } } as unknown as Upgrader, calls: () => calls }
    }
    const isNotConnected = (err: Error & { code?: string }): boolean => err instanceof DialFailedError && err.code === 'ERR_DIAL_FAILED'

    it('refuses a connection whose dialler gave up before ICE connected (it would be a "direct" connection that carries nothing)', async () => {
      const { upgrader, calls } = counting()
      // an answerer that got an offer and answered, and then heard no more: ICE never connects
      const dialler = newPc()
      const init = dialler.createDataChannel('init')
      const answerer = newPc()
      await answerer.setRemoteDescription(await dialler.createOffer())
      await answerer.setLocalDescription(await answerer.createAnswer())
      // closed first: an open channel of a closed peer connection keeps the process alive
      init.close()
      dialler.close()
      const started = performance.now()
      await assert.rejects(answeringUpgrader(upgrader, 300).upgradeInbound(maConn(answerer), { signal: AbortSignal.timeout(10_000) }), isNotConnected)
      assert.ok(performance.now() - started < 5_000)
      // a closed one at once, and an aborted upgrade too
      const closed = newPc()
      closed.close()
      await assert.rejects(answeringUpgrader(upgrader, 60_000).upgradeInbound(maConn(closed), { signal: AbortSignal.timeout(10_000) }), isNotConnected)
      await assert.rejects(answeringUpgrader(upgrader, 60_000).upgradeInbound(maConn(newPc()), { signal: AbortSignal.abort() }), isNotConnected)
      assert.equal(calls(), 0)
    })

    it('upgrades a connected peer connection, and passes other connections through', async () => {
      const { upgrader, calls } = counting()
      const [x, y] = [newPc(), newPc()]
      const trickle = (from: PC, to: PC): void => {
        from.addEventListener('icecandidate', (evt) => {
          const { candidate } = evt as unknown as { candidate: { candidate: string, sdpMid?: string } | null }
          if (candidate !== null && candidate.candidate !== '') void to.addIceCandidate(candidate)
        })
      }
      trickle(x, y)
      trickle(y, x)
      // negotiated: a channel the remote opens may never report closed, keeping the process alive
      x.createDataChannel('init', { negotiated: true, id: 0 })
      const offer = await x.createOffer()
      await x.setLocalDescription(offer)
      await y.setRemoteDescription(offer)
      const answer = await y.createAnswer()
      await y.setLocalDescription(answer)
      await x.setRemoteDescription(answer)
      // not connected yet when the upgrade starts: it waits for ICE rather than refusing
      await answeringUpgrader(upgrader, 10_000).upgradeInbound(maConn(y), { signal: AbortSignal.timeout(10_000) })
      assert.equal(y.connectionState, 'connected')
      await answeringUpgrader(upgrader).upgradeInbound(maConn(), { signal: AbortSignal.timeout(10_000) })
      assert.equal(calls(), 2)
    })
  })

  describe('stopping', () => {
    it('the last WebRTC transport of the process to stop releases node-datachannel, and a restart builds a fresh transport', async () => {
      let cleanups = 0
      // the real transport; only the process-wide cleanup is counted (the spec's other devices still need node-datachannel)
      const load = async (): Promise<WebRTCModule> => ({ webRTC: (await import('@libp2p/webrtc')).webRTC, cleanup: () => { cleanups++ } })
      const handles: WebRTCTransportHandle[] = []
      const start = async (): Promise<Libp2p> => createLibp2p({
        addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
        transports: [tcp(), circuitRelayTransport(), lazyWebRTC({ ice: new IceServers([], () => true), load }, (h) => { handles.push(h) })],
        connectionEncrypters: [noise()],
        streamMuxers: [yamux()],
        services: { identify: identify() }
      })
      const [x, y] = [await start(), await start()]
      try {
        assert.deepEqual(handles.map(h => h.available), [true, true])
        await x.stop()
        assert.equal(handles[0].available, false)
        assert.equal(cleanups, 0, 'released while another device still uses WebRTC')
        await y.stop()
        assert.equal(cleanups, 1)
        await x.start()
        assert.equal(handles[0].available, true)
        await x.stop()
        assert.equal(cleanups, 2)
      } finally {
        await x.stop()
        await y.stop()
      }
    })
  })

  describe('a public member with a STUN server and two devices on loopback', () => {
    const { devices } = useDevices()

    it('members learn its STUN server, and a relayed member connection becomes a direct WebRTC one by itself', { timeout: 60_000 }, async () => {
      const pub = await startDevice(devices, 'pub', { services: { relayServer: true, stunServer: true, webrtc: true }, stunServerPort: 0 })
      const stunPort = (pub.libp2p.services.stun as StunService).server.port
      const bootstrap = [addressOf(pub)]
      const a = await startDevice(devices, 'a', { listen: ['/ip4/127.0.0.1/tcp/0', '/p2p-circuit'], bootstrap })
      const b = await startDevice(devices, 'b', { listen: ['/ip4/127.0.0.1/tcp/0', '/p2p-circuit'], bootstrap })
      await pub.swarms.create('family')
      for (const d of [a, b]) await d.swarms.join((await pub.swarms.invite('family', { expiresInMs: 60_000 })).code)
      const upgradeOf = (d: HomecloudNode): WebRTCUpgrade => d.libp2p.services.webrtcUpgrade as WebRTCUpgrade
      for (const d of [a, b]) {
        await waitFor(() => upgradeOf(d).iceServers().includes(`stun:127.0.0.1:${stunPort}`), { timeout: 10_000, what: `${d.name} to learn the STUN server` })
      }
      const aRelay = await waitFor(() => a.status().relayReservations[0], { timeout: 10_000, what: 'a relay reservation' })
      const relayed = await b.connect(aRelay)
      assert.equal(relayed.path, 'relayed')
      const direct = await waitFor(async () => (await b.peers()).find(p => p.peerId === a.peerId.toString() && p.address.includes('/webrtc/')),
        { timeout: 20_000, what: 'a direct WebRTC connection' })
      assert.equal(direct.path, 'direct')
      // one side dialled, once
      const [dialer] = dialsFirst(a.peerId, b.peerId) ? [a, b] : [b, a]
      assert.equal(upgradeOf(dialer).stats.upgraded, 1)
      // new streams take the direct connection
      const conn = await b.libp2p.dial(a.peerId)
      assert.ok(conn.remoteAddr.toString().includes('/webrtc/'), conn.remoteAddr.toString())
    })
  })
})
