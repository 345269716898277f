import { createCipheriv, createDecipheriv, createSecretKey } from 'node:crypto'
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto'
import { Uint8ArrayList } from 'uint8arraylist'
import type { ICryptoInterface } from '@chainsafe/libp2p-noise'
import type { KeyObject } from 'node:crypto'

const CHACHA_POLY1305 = 'chacha20-poly1305'
const TAG_LENGTH = 16
/** Below this noise's own choice (WebAssembly) is faster than a node:crypto cipher; it is also its threshold. */
const SMALL_MESSAGE = 1200

/**
 * The `KeyObject` of each session key. node:crypto turns a raw key into a KeyObject on every
 * `createCipheriv`, and its check whether the key already is one throws and catches a TypeError
 * (a stack trace each time): ~12 µs of a 64 KiB message's ~45 µs, on every message of a bulk
 * transfer, both sides (perf, bench/transport.mjs). Keyed by the key's array, with its bytes
 * kept to compare: a caller that reuses an array for another key gets a new KeyObject.
 */
const keys = new WeakMap<Uint8Array, { bytes: Buffer, key: KeyObject }>()

function keyObjectOf (k: Uint8Array): KeyObject {
  const held = keys.get(k)
  if (held?.bytes.equals(k) === true) return held.key
  const entry = { bytes: Buffer.from(k), key: createSecretKey(k) }
  keys.set(k, entry)
  return entry.key
}

/**
 * Noise's ChaChaPoly over node:crypto, as `@chainsafe/libp2p-noise`'s default does for big
 * messages, with two costs of its bulk path removed: the session key is a cached KeyObject,
 * and the ciphertext and its tag go out as a list instead of being copied into one buffer.
 * The bytes on the wire are the same (the noise spec's cipher); small messages and the
 * handshake's other primitives stay noise's own.
 */
export const noiseCrypto: ICryptoInterface = {
  ...defaultCrypto,
  chaCha20Poly1305Encrypt (plaintext, nonce, ad, k) {
    if (plaintext.byteLength < SMALL_MESSAGE) return defaultCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k)
    const cipher = createCipheriv(CHACHA_POLY1305, keyObjectOf(k), nonce, { authTagLength: TAG_LENGTH })
    cipher.setAAD(ad, { plaintextLength: plaintext.byteLength })
    const output = new Uint8ArrayList()
    for (const part of plaintext instanceof Uint8Array ? [plaintext] : plaintext) output.append(cipher.update(part))
    const final = cipher.final()
    if (final.byteLength > 0) output.append(final)
    output.append(cipher.getAuthTag())
    return output
  },
  chaCha20Poly1305Decrypt (ciphertext, nonce, ad, k, dst) {
    if (ciphertext.byteLength < SMALL_MESSAGE) return defaultCrypto.chaCha20Poly1305Decrypt(ciphertext, nonce, ad, k, dst)
    const end = ciphertext.byteLength - TAG_LENGTH
    const decipher = createDecipheriv(CHACHA_POLY1305, keyObjectOf(k), nonce, { authTagLength: TAG_LENGTH })
    decipher.setAAD(ad, { plaintextLength: end })
    decipher.setAuthTag(ciphertext.subarray(end))
    if (ciphertext instanceof Uint8Array) {
      const text = decipher.update(ciphertext.subarray(0, end))
      // final() checks the tag: it throws on a forged or damaged message
      const final = decipher.final()
      return final.byteLength === 0 ? text : new Uint8ArrayList(text, final)
    }
    const output = new Uint8ArrayList()
    for (const part of ciphertext.sublist(0, end)) output.append(decipher.update(part))
    const final = decipher.final()
    if (final.byteLength > 0) output.append(final)
    return output
  }
}
