import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { after, describe, it } from 'node:test'
import { noise } from '@chainsafe/libp2p-noise'
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto'
import { yamux } from '@chainsafe/libp2p-yamux'
import { loopbackNode } from '@homecloud/test-support'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { Uint8ArrayList } from 'uint8arraylist'
import { noiseCrypto } from '../src/noise-crypto.js'
import type { Libp2p, Stream } from '@libp2p/interface'

const NO_AD = new Uint8Array(0)

function nonce (n: number): Uint8Array {
  const bytes = new Uint8Array(12)
  new DataView(bytes.buffer).setUint32(4, n, true)
  return bytes
}

const flat = (data: Uint8Array | Uint8ArrayList): Uint8Array => data instanceof Uint8Array ? data : data.subarray()

describe('noise crypto (node:crypto ChaChaPoly with cached session keys)', () => {
  it('seals the same bytes as noise\'s own crypto, and opens what noise\'s own crypto sealed, for every size and shape', () => {
    const k = randomBytes(32)
    const ad = randomBytes(32)
    for (const size of [0, 1, 1199, 1200, 1201, 4096, 65519]) {
      const plaintext = randomBytes(size)
      const n = nonce(size)
      const ours = flat(noiseCrypto.chaCha20Poly1305Encrypt(plaintext, n, ad, k))
      const theirs = flat(defaultCrypto.chaCha20Poly1305Encrypt(plaintext, n, ad, k))
      assert.deepEqual(Buffer.from(ours), Buffer.from(theirs), `ciphertext of ${size} bytes`)
      // a message split across reads arrives as a list: the same bytes either way
      const split = new Uint8ArrayList(plaintext.subarray(0, size >> 1), plaintext.subarray(size >> 1))
      assert.deepEqual(Buffer.from(flat(noiseCrypto.chaCha20Poly1305Encrypt(split, n, ad, k))), Buffer.from(theirs), `ciphertext of ${size} bytes from a list`)
      for (const sealed of [theirs, new Uint8ArrayList(theirs.subarray(0, 7), theirs.subarray(7))]) {
        const opened = noiseCrypto.chaCha20Poly1305Decrypt(sealed, n, ad, k, new Uint8Array(Math.max(0, size)))
        assert.deepEqual(Buffer.from(flat(opened)), plaintext, `plaintext of ${size} bytes`)
      }
    }
  })

  it('refuses a damaged message, a wrong nonce, wrong associated data and a wrong key', () => {
    const k = randomBytes(32)
    const plaintext = randomBytes(8000)
    const sealed = Buffer.from(flat(noiseCrypto.chaCha20Poly1305Encrypt(plaintext, nonce(1), NO_AD, k)))
    const damaged = Buffer.from(sealed)
    damaged[4000] ^= 1
    const tag = Buffer.from(sealed)
    tag[tag.length - 1] ^= 0x80
    const cases: Array<[string, () => unknown]> = [
      ['a flipped byte', () => noiseCrypto.chaCha20Poly1305Decrypt(damaged, nonce(1), NO_AD, k)],
      ['a flipped tag bit', () => noiseCrypto.chaCha20Poly1305Decrypt(tag, nonce(1), NO_AD, k)],
      ['the next nonce', () => noiseCrypto.chaCha20Poly1305Decrypt(sealed, nonce(2), NO_AD, k)],
      ['other associated data', () => noiseCrypto.chaCha20Poly1305Decrypt(sealed, nonce(1), new Uint8Array(1), k)],
      ['another key', () => noiseCrypto.chaCha20Poly1305Decrypt(sealed, nonce(1), NO_AD, randomBytes(32))]
    ]
    for (const [what, open] of cases) assert.throws(open, /authenticate/, what)
    assert.deepEqual(Buffer.from(flat(noiseCrypto.chaCha20Poly1305Decrypt(sealed, nonce(1), NO_AD, k))), plaintext)
  })

  it('uses the key\'s current bytes when a caller reuses its array for another key', () => {
    const k = randomBytes(32)
    const plaintext = randomBytes(5000)
    const first = Buffer.from(flat(noiseCrypto.chaCha20Poly1305Encrypt(plaintext, nonce(0), NO_AD, k)))
    randomBytes(32).copy(k)
    const second = Buffer.from(flat(noiseCrypto.chaCha20Poly1305Encrypt(plaintext, nonce(0), NO_AD, k)))
    assert.notDeepEqual(second, first)
    assert.deepEqual(second, Buffer.from(flat(defaultCrypto.chaCha20Poly1305Encrypt(plaintext, nonce(0), NO_AD, k))))
  })

  describe('on the wire, against a node on noise\'s own crypto', () => {
    const nodes: Libp2p[] = []
    after(async () => { await Promise.all(nodes.map(async node => node.stop())) })

    async function sha256Of (stream: Stream): Promise<{ digest: string, bytes: number }> {
      const hash = createHash('sha256')
      let bytes = 0
      for await (const chunk of stream) {
        for (const part of chunk instanceof Uint8Array ? [chunk] : chunk) hash.update(part)
        bytes += chunk.byteLength
      }
      return { digest: hash.digest('hex'), bytes }
    }

    it('moves 8 MiB each way intact, in messages big and small', async () => {
      const ours = await createLibp2p({
        privateKey: await generateKeyPair('Ed25519'),
        addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
        transports: [tcp()],
        connectionEncrypters: [noise({ crypto: noiseCrypto })],
        streamMuxers: [yamux()],
        connectionMonitor: { enabled: false }
      })
      nodes.push(ours)
      const theirs = await loopbackNode()
      nodes.push(theirs)
      const data = randomBytes(8 * 1024 * 1024)
      const expected = createHash('sha256').update(data).digest('hex')
      // sizes cross noise's 64 KiB message limit and its 1,200-byte small-message threshold
      const sizes = [100, 1199, 1200, 65519, 65520, 300_000, 7]
      async function send (stream: Stream): Promise<void> {
        for (let at = 0, i = 0; at < data.length; i++) {
          const end = Math.min(data.length, at + sizes[i % sizes.length])
          if (!stream.send(data.subarray(at, end))) await stream.onDrain()
          at = end
        }
        await stream.close()
      }
      const received: Array<Promise<{ digest: string, bytes: number }>> = []
      for (const node of [ours, theirs]) {
        await node.handle('/noise-crypto-test/1.0.0', (stream) => {
          received.push(sha256Of(stream))
          void send(stream).catch(err => { stream.abort(err) })
        })
      }
      for (const [from, to] of [[ours, theirs], [theirs, ours]]) {
        const stream = await from.dialProtocol(to.getMultiaddrs(), '/noise-crypto-test/1.0.0')
        const [back] = await Promise.all([sha256Of(stream), send(stream)])
        assert.equal(back.bytes, data.length)
        assert.equal(back.digest, expected)
      }
      for (const sent of await Promise.all(received)) assert.deepEqual(sent, { digest: expected, bytes: data.length })
      const connection = ours.getConnections()[0]
      assert.equal(connection?.encryption, '/noise')
    })
  })
})
