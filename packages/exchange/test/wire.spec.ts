import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import { LimitExceededError } from '@homecloud/interface'
import { seededRandom } from '@homecloud/test-support'
import { Uint8ArrayList } from 'uint8arraylist'
import { blockMatches, decodeMessage, encodeMessage, FrameReader, MAX_BLOCK_BYTES, MessageDecodeError, WIRE_LIMITS } from '../src/index.js'
import type { Entry, WireLimits } from '../src/index.js'
import { cidOf, makeChunks } from './helpers.js'

function roundTrip (entries: Entry[]): Entry[] {
  const reader = new FrameReader()
  const bodies = reader.push(encodeMessage(entries))
  assert.equal(bodies.length, 1)
  assert.equal(reader.bufferedBytes, 0)
  return decodeMessage(bodies[0])
}

describe('wire format', () => {
  const [a, b] = makeChunks(2, 1000)

  it('round-trips every entry kind', () => {
    const entries: Entry[] = [
      { type: 'want', cid: a.cid },
      { type: 'cancel', cid: b.cid },
      { type: 'block', cid: a.cid, bytes: a.bytes },
      { type: 'missing', cid: b.cid },
      { type: 'block', cid: b.cid, bytes: new Uint8Array(0) }
    ]
    const decoded = roundTrip(entries)
    assert.equal(decoded.length, entries.length)
    decoded.forEach((entry, i) => {
      assert.equal(entry.type, entries[i].type)
      assert.ok(entry.cid.equals(entries[i].cid))
      if (entry.type === 'block') {
        assert.deepEqual(Buffer.from(entry.bytes.subarray()), Buffer.from((entries[i] as { bytes: Uint8Array }).bytes))
      }
    })
  })

  it('reassembles messages split at every byte boundary and several in one chunk', () => {
    const one = encodeMessage([{ type: 'block', cid: a.cid, bytes: a.bytes }]).subarray()
    const two = encodeMessage([{ type: 'want', cid: b.cid }]).subarray()
    const all = Buffer.concat([one, two])
    for (let split = 0; split <= all.length; split++) {
      const reader = new FrameReader()
      const bodies = [...reader.push(all.subarray(0, split)), ...reader.push(all.subarray(split))]
      assert.equal(bodies.length, 2, `split at ${split}`)
      assert.equal(decodeMessage(bodies[1])[0].type, 'want')
    }
  })

  it('keeps a big message in the pieces it arrived in, unless there are too many of them', () => {
    const big = makeChunks(3, 100_000)
    const message = encodeMessage([
      ...big.map(({ cid, bytes }) => ({ type: 'block' as const, cid, bytes })),
      { type: 'missing', cid: a.cid }
    ]).subarray()
    for (const [pieceBytes, joined] of [[10_000, false], [1000, true]] as const) {
      const reader = new FrameReader()
      const bodies: Array<Uint8Array | Uint8ArrayList> = []
      for (let at = 0; at < message.length; at += pieceBytes) {
        // each piece a buffer of its own, as a connection's decrypted frames are
        bodies.push(...reader.push(Uint8Array.from(message.subarray(at, at + pieceBytes))))
      }
      assert.equal(bodies.length, 1)
      assert.equal(bodies[0] instanceof Uint8Array, joined, `${pieceBytes}-byte pieces`)
      const entries = decodeMessage(bodies[0])
      assert.deepEqual(entries.map(e => e.type), ['block', 'block', 'block', 'missing'])
      entries.slice(0, 3).forEach((entry, i) => {
        assert.ok(entry.type === 'block' && entry.cid.equals(big[i].cid))
        assert.equal(entry.bytes instanceof Uint8Array, joined)
        assert.ok(blockMatches(big[i].cid, entry.bytes), 'hashed over its pieces')
        assert.ok(!blockMatches(big[(i + 1) % 3].cid, entry.bytes))
        assert.deepEqual(Buffer.from(entry.bytes.subarray()), Buffer.from(big[i].bytes))
      })
      assert.ok(entries[3].cid.equals(a.cid))
    }
  })

  it('encoder refuses blocks, messages and entry counts over the limits', () => {
    assert.throws(() => encodeMessage([{ type: 'block', cid: a.cid, bytes: new Uint8Array(MAX_BLOCK_BYTES + 1) }]), LimitExceededError)
    const big = new Uint8Array(MAX_BLOCK_BYTES)
    assert.throws(() => encodeMessage([1, 2, 3].map(() => ({ type: 'block', cid: a.cid, bytes: big }))), LimitExceededError)
    assert.throws(() => encodeMessage(Array.from({ length: 1025 }, () => ({ type: 'want', cid: a.cid }))), LimitExceededError)
  })

  it('decoder refuses oversize blocks, oversize messages, unknown tags, bad CIDs, truncation', () => {
    const generous: WireLimits = { maxMessageBytes: 8 * 1024 * 1024, maxBlockBytes: 4 * 1024 * 1024, maxEntries: 2048 }
    const oversizeBlock = encodeMessage([{ type: 'block', cid: a.cid, bytes: new Uint8Array(MAX_BLOCK_BYTES + 1) }], generous)
    const body = oversizeBlock.subarray(4)
    assert.throws(() => decodeMessage(body), /block of 2097153 bytes is over/)

    // a length prefix of 4 MiB + 1 is refused before its body arrives
    const reader = new FrameReader()
    assert.throws(() => reader.push(Uint8Array.from([0x81, 0x80, 0x80, 0x02])), /over the 4194304-byte limit/)

    assert.throws(() => decodeMessage(Uint8Array.from([9, 1, 0])), /unknown entry tag 9/)
    assert.throws(() => decodeMessage(Uint8Array.from([1, 3, 1, 2, 3])), /malformed CID/)
    assert.throws(() => decodeMessage(Uint8Array.from([1, 0])), /CID length 0/)
    const want = encodeMessage([{ type: 'want', cid: a.cid }]).subarray(1)
    assert.throws(() => decodeMessage(want.subarray(0, want.length - 1)), /message ends inside a CID/)
    assert.throws(() => decodeMessage(Uint8Array.from([1, 0x80, 0x80, 0x80, 0x80, 0x01])), /varint longer than 4 bytes/)
    assert.throws(() => decodeMessage(Uint8Array.from([1, 0x80, 0x00])), /not minimally encoded/)
    const tooMany = encodeMessage(Array.from({ length: 1025 }, () => ({ type: 'want' as const, cid: a.cid })), generous)
    assert.throws(() => new FrameReader().push(tooMany).map(body => decodeMessage(body)), /more than 1024 entries/)
  })

  it('fuzz: random, truncated and mutated input only ever throws MessageDecodeError, and stays within the cap', () => {
    const cap = 4096
    const limits: WireLimits = { maxMessageBytes: cap, maxBlockBytes: 2048, maxEntries: 16 }
    const random = seededRandom(42)
    const int = (n: number): number => Math.floor(random() * n)
    const blocks = makeChunks(4, 300)
    const valid = (): Uint8Array => encodeMessage(blocks.slice(0, 1 + int(4)).map(({ cid, bytes }, i) =>
      i % 2 === 0 ? { type: 'block', cid, bytes } : { type: 'want', cid: cidOf(bytes) }), limits).subarray()
    let decodedOk = 0
    let rejected = 0
    for (let round = 0; round < 600; round++) {
      let input: Uint8Array
      const kind = round % 4
      if (kind === 0) {
        input = randomBytes(int(6000))
      } else if (kind === 1) {
        const v = valid()
        input = v.subarray(0, int(v.length + 1))
      } else if (kind === 2) {
        input = valid()
        for (let flips = 1 + int(4); flips > 0; flips--) {
          input[int(input.length)] = int(256)
        }
      } else {
        input = Buffer.concat([valid(), valid(), randomBytes(int(64))])
      }
      const reader = new FrameReader(cap)
      try {
        // delivered in random pieces, as a stream would
        let offset = 0
        while (offset < input.length) {
          const piece = 1 + int(700)
          for (const body of reader.push(new Uint8ArrayList(input.subarray(offset, offset + piece)))) {
            assert.ok(body.byteLength <= cap, 'a message body never exceeds the cap')
            // the same body in pieces (as big bodies are kept) decodes the same, or fails the same
            const flat = body.subarray()
            const pieces = new Uint8ArrayList()
            for (let at = 0, n = 0; at < flat.length; at += n) {
              n = 1 + int(300)
              pieces.append(Uint8Array.from(flat.subarray(at, at + n)))
            }
            const outcome = (b: Uint8Array | Uint8ArrayList): unknown => {
              try {
                return decodeMessage(b, limits).map(e => [e.type, e.cid.toString(), e.type === 'block' ? Buffer.from(e.bytes.subarray()).toString('hex') : ''])
              } catch (err) {
                return err instanceof MessageDecodeError ? err.message : err
              }
            }
            assert.deepEqual(outcome(pieces), outcome(flat))
            decodeMessage(body, limits)
            decodedOk++
          }
          assert.ok(reader.bufferedBytes <= cap + 4, `buffered ${reader.bufferedBytes} bytes`)
          offset += piece
        }
      } catch (err) {
        assert.ok(err instanceof MessageDecodeError, `threw ${String(err)} on round ${round}`)
        assert.equal(err.code, 'ERR_BAD_MESSAGE')
        rejected++
      }
    }
    assert.ok(decodedOk > 50 && rejected > 50, `both paths exercised (${decodedOk} decoded, ${rejected} rejected)`)
  })

  it('uses the protocol limits by default', () => {
    assert.equal(WIRE_LIMITS.maxMessageBytes, 4 * 1024 * 1024)
    assert.equal(WIRE_LIMITS.maxBlockBytes, 2 * 1024 * 1024)
  })
})
