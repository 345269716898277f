/**
 * `node rogue-member.js INVITE VICTIM_PEER_ID TARGET_MULTIADDR`: a third device that joins a
 * private swarm with a real invite, then tries to move another member (the victim) by passing
 * on a peer record naming the victim but signed with its own key (D2, RELIABILITY "forged or
 * replayed address record").
 *
 * It is a real Home Cloud device (in memory); the only thing it does wrong is to plant the
 * forged envelope in its own peer store, from where roster sync passes members' records on.
 * It then dials TARGET (a member): the connection starts a roster sync that carries the forged
 * record. Prints `{ "peerId": …, "sent": true }` once the sync ran; the target must refuse and
 * count the record (`swarm/stats` rejectedPeerRecords `wrong-signer`).
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { PeerRecord, RecordEnvelope } from '@libp2p/peer-record'
import { multiaddr } from '@multiformats/multiaddr'
import { createHomecloudNode } from '@homecloud/node'

/** Where the forged record says the victim is: an address nobody listens on. */
export const FORGED_ADDRESS = '/ip4/10.77.0.66/tcp/4001'

async function main ([code, victim, target]: string[]): Promise<number> {
  if (code === undefined || victim === undefined || target === undefined) {
    process.stderr.write('usage: rogue-member.js INVITE VICTIM_PEER_ID TARGET_MULTIADDR\n')
    return 2
  }
  const privateKey = await generateKeyPair('Ed25519')
  const device = await createHomecloudNode({
    privateKey,
    name: 'rogue',
    listen: ['/ip4/0.0.0.0/tcp/0'],
    services: { mdns: false, upnp: false, dht: 'client', autonat: false, dcutr: false, websockets: false }
  })
  try {
    await device.swarms.join(code, { signal: AbortSignal.timeout(30_000) })
    const victimId = peerIdFromString(victim)
    // far above any real sequence number, so only the signature check can stop it
    const record = new PeerRecord({ peerId: victimId, multiaddrs: [multiaddr(FORGED_ADDRESS)], seqNumber: BigInt(Date.now()) * 1000n })
    const forged = await RecordEnvelope.seal(record, privateKey)
    await device.libp2p.peerStore.patch(victimId, { peerRecordEnvelope: forged.marshal() })
    const targetId = peerIdFromString(multiaddr(target).getComponents().findLast(c => c.name === 'p2p')?.value ?? '')
    // an outbound connection to a member starts a roster sync, which passes on members' records
    await device.libp2p.hangUp(targetId).catch(() => {})
    await device.connect(target, { signal: AbortSignal.timeout(20_000) })
    await device.swarms.sync(device.swarms.list()[0].id, { signal: AbortSignal.timeout(20_000) })
    process.stdout.write(JSON.stringify({ peerId: device.peerId.toString(), sent: true }) + '\n')
    return 0
  } finally {
    await device.stop()
  }
}

main(process.argv.slice(2)).then(code => { process.exitCode = code }, (err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`)
  process.exitCode = 1
})
