/**
 * A map key for a CID or a digest: its bytes as a flat one-byte string. Not `cid.toString()`:
 * multiformats builds that base32 string by concatenation and caches it per CID object in a
 * map of its own (~1.7 KB each), and a CID decoded from a message is a new object every time.
 */
export function bytesKey (bytes: Uint8Array): string {
  return String.fromCharCode(...bytes)
}
