import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { identify, type Identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import type { Libp2p, PrivateKey, Stream } from '@libp2p/interface'

export type LoopbackNode = Libp2p<{ identify: Identify }>

/**
 * A real, started libp2p node on 127.0.0.1 (tcp + noise + yamux + identify, nothing else; no
 * connection monitor pings): the bare peer under a package's services in its tests.
 */
export async function loopbackNode (privateKey?: PrivateKey): Promise<LoopbackNode> {
  return createLibp2p({
    privateKey: privateKey ?? await generateKeyPair('Ed25519'),
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() },
    connectionMonitor: { enabled: false }
  })
}

/** Reads a stream to its end: how many bytes came, and whether it ended in a reset (or abort). */
export async function drain (stream: Stream): Promise<{ bytes: number, reset: boolean }> {
  let bytes = 0
  try {
    for await (const chunk of stream) bytes += chunk.byteLength
  } catch {
    return { bytes, reset: true }
  }
  return { bytes, reset: stream.status === 'reset' || stream.status === 'aborted' }
}
