/**
 * The wire format of `/homecloud/chunks/1.0.0`, checked by hand so every limit
 * is enforced before anything is allocated.
 *
 * A message is `uvarint(length) body`; the body is a list of entries, each a
 * one-byte tag and its fields:
 *
 * | tag | entry   | fields                                   | sent by |
 * |-----|---------|------------------------------------------|---------|
 * | 1   | want    | uvarint(cidLen) cid                       | fetcher |
 * | 2   | cancel  | uvarint(cidLen) cid                       | fetcher |
 * | 3   | block   | uvarint(cidLen) cid uvarint(len) bytes    | server  |
 * | 4   | missing | uvarint(cidLen) cid                       | server  |
 *
 * A `missing` answer is also what a peer gets for a CID the serving policy
 * denies, so it cannot tell "not here" from "not for you".
 */
import { LimitExceededError } from '@homecloud/interface'
import { CID } from 'multiformats/cid'
import { Uint8ArrayList } from 'uint8arraylist'
import { MAX_BLOCK_BYTES, MAX_CID_BYTES, MAX_ENTRIES_PER_MESSAGE, MAX_MESSAGE_BYTES } from './constants.js'
import { MessageDecodeError } from './errors.js'

export type Entry =
  | { type: 'want', cid: CID }
  | { type: 'cancel', cid: CID }
  | { type: 'block', cid: CID, bytes: Block }
  | { type: 'missing', cid: CID }

/**
 * A block's bytes: one array, or the pieces it arrived in (a big message is
 * not joined into one buffer: the consumers hash and write pieces as they are).
 */
export type Block = Uint8Array | Uint8ArrayList

export interface WireLimits {
  /** Largest message body. */
  maxMessageBytes: number
  /** Largest block in a `block` entry. */
  maxBlockBytes: number
  /** Most entries in one message. */
  maxEntries: number
}

export const WIRE_LIMITS: Readonly<WireLimits> = Object.freeze({
  maxMessageBytes: MAX_MESSAGE_BYTES,
  maxBlockBytes: MAX_BLOCK_BYTES,
  maxEntries: MAX_ENTRIES_PER_MESSAGE
})

const TAG_WANT = 1
const TAG_CANCEL = 2
const TAG_BLOCK = 3
const TAG_MISSING = 4
const TAGS: Record<Entry['type'], number> = { want: TAG_WANT, cancel: TAG_CANCEL, block: TAG_BLOCK, missing: TAG_MISSING }

/** Lengths on the wire never exceed 2^28 (4 bytes of varint); longer varints are malformed. */
const MAX_VARINT_BYTES = 4

function varintLength (value: number): number {
  let n = 1
  while (value >= 0x80) {
    value = Math.floor(value / 128)
    n++
  }
  return n
}

function writeVarint (value: number, target: Uint8Array, offset: number): number {
  while (value >= 0x80) {
    target[offset++] = (value & 0x7f) | 0x80
    value = Math.floor(value / 128)
  }
  target[offset++] = value
  return offset
}

/**
 * Reads a uvarint of at most 4 bytes at `offset`. Returns undefined when the
 * bytes end first, so a framer can wait for more.
 */
function readVarint (get: (i: number) => number, length: number, offset: number): { value: number, size: number } | undefined {
  let value = 0
  for (let i = 0; i < MAX_VARINT_BYTES; i++) {
    if (offset + i >= length) {
      return undefined
    }
    const byte = get(offset + i)
    value += (byte & 0x7f) * 2 ** (7 * i)
    if ((byte & 0x80) === 0) {
      if (byte === 0 && i > 0) {
        throw new MessageDecodeError('varint is not minimally encoded')
      }
      return { value, size: i + 1 }
    }
  }
  throw new MessageDecodeError(`varint longer than ${MAX_VARINT_BYTES} bytes`)
}

/**
 * Encodes entries as one length-prefixed message. Block bytes are not copied:
 * the result is a list of the header pieces and the blocks themselves.
 */
export function encodeMessage (entries: readonly Entry[], limits: Readonly<WireLimits> = WIRE_LIMITS): Uint8ArrayList {
  if (entries.length > limits.maxEntries) {
    throw new LimitExceededError(`a message holds at most ${limits.maxEntries} entries, got ${entries.length}`)
  }
  const parts: Block[] = []
  let header = new Uint8Array(256)
  let used = 0
  let bodyLength = 0
  const flushHeader = (): void => {
    if (used > 0) {
      parts.push(header.subarray(0, used))
      bodyLength += used
      header = new Uint8Array(256)
      used = 0
    }
  }
  for (const entry of entries) {
    const cid = entry.cid.bytes
    if (cid.byteLength > MAX_CID_BYTES) {
      throw new LimitExceededError(`a CID on the wire has at most ${MAX_CID_BYTES} bytes`)
    }
    if (header.byteLength - used < cid.byteLength + 16) {
      flushHeader()
    }
    header[used++] = TAGS[entry.type]
    used = writeVarint(cid.byteLength, header, used)
    header.set(cid, used)
    used += cid.byteLength
    if (entry.type === 'block') {
      if (entry.bytes.byteLength > limits.maxBlockBytes) {
        throw new LimitExceededError(`a block has at most ${limits.maxBlockBytes} bytes, got ${entry.bytes.byteLength}`)
      }
      used = writeVarint(entry.bytes.byteLength, header, used)
      flushHeader()
      parts.push(entry.bytes)
      bodyLength += entry.bytes.byteLength
    }
  }
  flushHeader()
  if (bodyLength > limits.maxMessageBytes) {
    throw new LimitExceededError(`a message has at most ${limits.maxMessageBytes} bytes, got ${bodyLength}`)
  }
  const prefix = new Uint8Array(varintLength(bodyLength))
  writeVarint(bodyLength, prefix, 0)
  return new Uint8ArrayList(prefix, ...parts)
}

/**
 * Reads byte `i` of a list in pieces. Header bytes are read front to back, so
 * the piece of the last read is where the search starts: linear in the body,
 * not in bytes × pieces.
 */
function byteReader (body: Uint8ArrayList): (i: number) => number {
  const pieces = [...body]
  let index = 0
  let start = 0
  return (i) => {
    if (i < start) {
      index = 0
      start = 0
    }
    while (i >= start + pieces[index].byteLength) {
      start += pieces[index].byteLength
      index++
    }
    return pieces[index][i - start]
  }
}

/** Decodes one message body (without its length prefix). Throws only `MessageDecodeError`. */
export function decodeMessage (body: Uint8Array | Uint8ArrayList, limits: Readonly<WireLimits> = WIRE_LIMITS): Entry[] {
  if (body.byteLength > limits.maxMessageBytes) {
    throw new MessageDecodeError(`message of ${body.byteLength} bytes is over the ${limits.maxMessageBytes}-byte limit`)
  }
  const get = body instanceof Uint8Array ? (i: number): number => body[i] : byteReader(body)
  const entries: Entry[] = []
  let offset = 0
  const need = (n: number, what: string): void => {
    if (offset + n > body.byteLength) {
      throw new MessageDecodeError(`message ends inside ${what}`)
    }
  }
  const length = (what: string): number => {
    const v = readVarint(get, body.byteLength, offset)
    if (v === undefined) {
      throw new MessageDecodeError(`message ends inside the length of ${what}`)
    }
    offset += v.size
    return v.value
  }
  while (offset < body.byteLength) {
    if (entries.length === limits.maxEntries) {
      throw new MessageDecodeError(`message has more than ${limits.maxEntries} entries`)
    }
    const tag = get(offset++)
    if (tag < TAG_WANT || tag > TAG_MISSING) {
      throw new MessageDecodeError(`unknown entry tag ${tag}`)
    }
    const cidLength = length('a CID')
    if (cidLength === 0 || cidLength > MAX_CID_BYTES) {
      throw new MessageDecodeError(`CID length ${cidLength} is outside 1..${MAX_CID_BYTES}`)
    }
    need(cidLength, 'a CID')
    const cid = parseCid(body.subarray(offset, offset + cidLength))
    offset += cidLength
    if (tag === TAG_BLOCK) {
      const blockLength = length('a block')
      if (blockLength > limits.maxBlockBytes) {
        throw new MessageDecodeError(`block of ${blockLength} bytes is over the ${limits.maxBlockBytes}-byte limit`)
      }
      need(blockLength, 'a block')
      entries.push({ type: 'block', cid, bytes: body instanceof Uint8Array ? body.subarray(offset, offset + blockLength) : body.sublist(offset, offset + blockLength) })
      offset += blockLength
    } else {
      entries.push({ type: tag === TAG_WANT ? 'want' : tag === TAG_CANCEL ? 'cancel' : 'missing', cid })
    }
  }
  return entries
}

function parseCid (bytes: Uint8Array): CID {
  try {
    // copied (a Buffer's slice() would not copy) so a CID does not pin the message buffer
    return CID.decode(new Uint8Array(bytes))
  } catch (err) {
    throw new MessageDecodeError('malformed CID', { cause: err })
  }
}

/**
 * Message bodies at least this big (blocks) are kept in the pieces they
 * arrived in rather than joined: no copy of every block. The pieces are the
 * connection's decrypted frames (each its own buffer of at most 64 KiB), so a
 * kept block pins at most a frame's worth of bytes beyond its own at each end.
 */
export const OWNED_BODY_BYTES = 64 * 1024

/**
 * A big body in more pieces than this (a peer sending tiny frames) is joined
 * after all, so decoding stays linear in its size.
 */
export const MAX_BODY_PIECES = 256

/**
 * Splits a byte stream into message bodies. Buffers at most one message (the
 * declared length is checked against the limit before anything is kept).
 */
export class FrameReader {
  private readonly buffer = new Uint8ArrayList()
  private readonly maxMessageBytes: number

  constructor (maxMessageBytes: number = MAX_MESSAGE_BYTES) {
    this.maxMessageBytes = maxMessageBytes
  }

  /** Bytes held for an incomplete message. */
  get bufferedBytes (): number {
    return this.buffer.byteLength
  }

  /** Appends received bytes and returns every message body now complete. Throws only `MessageDecodeError`. */
  push (data: Uint8Array | Uint8ArrayList): Array<Uint8Array | Uint8ArrayList> {
    this.buffer.append(data)
    const bodies: Array<Uint8Array | Uint8ArrayList> = []
    const get = (i: number): number => this.buffer.get(i)
    while (this.buffer.byteLength > 0) {
      const prefix = readVarint(get, this.buffer.byteLength, 0)
      if (prefix === undefined) {
        break
      }
      if (prefix.value > this.maxMessageBytes) {
        throw new MessageDecodeError(`message of ${prefix.value} bytes is over the ${this.maxMessageBytes}-byte limit`)
      }
      const end = prefix.size + prefix.value
      if (this.buffer.byteLength < end) {
        break
      }
      bodies.push(prefix.value >= OWNED_BODY_BYTES ? this.bigBody(prefix.size, end) : this.buffer.subarray(prefix.size, end))
      this.buffer.consume(end)
    }
    return bodies
  }

  private bigBody (start: number, end: number): Uint8Array | Uint8ArrayList {
    const list = this.buffer.sublist(start, end)
    let pieces = 0
    for (const _ of list) {
      if (++pieces > MAX_BODY_PIECES) {
        return list.subarray()
      }
    }
    return list
  }
}
