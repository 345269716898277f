/**
 * Length-prefixed dag-cbor messages over a libp2p message stream, with a size cap on every
 * message, backpressure on writes and an AbortSignal on every wait. Used by join, roster sync
 * and (through `newError`, so its failures carry its own error code) the share protocol.
 */
import * as dagCbor from '@ipld/dag-cbor'
import * as lp from 'it-length-prefixed'
import { AbortError, ProtocolError } from './errors.js'
import type { AbortOptions, Stream } from '@libp2p/interface'

export class FramedStream {
  private readonly reader: AsyncIterator<{ subarray(): Uint8Array }>

  constructor (
    readonly stream: Stream,
    private readonly maxMessageBytes: number,
    private readonly newError: (message: string, options?: ErrorOptions) => Error = (message, options) => new ProtocolError(message, options)
  ) {
    this.reader = lp.decode(stream, { maxDataLength: maxMessageBytes })[Symbol.asyncIterator]()
  }

  /** Read one message and decode it; `newError` (ProtocolError) on end of stream, a bad frame or bad CBOR. */
  async read (options: AbortOptions = {}): Promise<Record<string, unknown>> {
    return await this.readOrEnd(options) ?? this.fail('the stream ended before the expected message')
  }

  /** Like `read`, but the end of the stream is `undefined`, not an error. */
  async readOrEnd (options: AbortOptions = {}): Promise<Record<string, unknown> | undefined> {
    let next
    try {
      next = await this.whileNotAborted(async () => this.reader.next(), options)
    } catch (err) {
      options.signal?.throwIfAborted()
      throw this.newError(`bad frame: ${(err as Error).message}`, { cause: err })
    }
    if (next.done === true) return undefined
    let value: unknown
    try {
      value = dagCbor.decode(next.value.subarray())
    } catch (err) {
      throw this.newError('message is not dag-cbor', { cause: err })
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) {
      throw this.newError('message is not a map')
    }
    return value as Record<string, unknown>
  }

  /** Encode and send one message, waiting for the stream to drain when its buffer is full. */
  async write (message: object, options: AbortOptions = {}): Promise<void> {
    const bytes = dagCbor.encode(message)
    if (bytes.byteLength > this.maxMessageBytes) {
      throw this.newError(`message of ${bytes.byteLength} bytes exceeds ${this.maxMessageBytes}`)
    }
    if (!this.stream.send(lp.encode.single(bytes))) {
      await this.stream.onDrain(options)
    }
  }

  /** Half-close our side; `close()` can reject with a non-Error, which is not worth throwing. */
  async close (options: AbortOptions = {}): Promise<void> {
    try {
      await this.stream.close(options)
    } catch (err) {
      this.stream.abort(err instanceof Error ? err : this.newError('stream close failed'))
    }
  }

  private fail (message: string): never {
    throw this.newError(message)
  }

  abort (err: Error): void {
    this.stream.abort(err)
  }

  /** Reset the stream if the signal fires while `fn` waits, so the wait ends. */
  private async whileNotAborted<T> (fn: () => Promise<T>, options: AbortOptions): Promise<T> {
    const signal = options.signal
    if (signal == null) return fn()
    signal.throwIfAborted()
    const onAbort = (): void => { this.stream.abort(new AbortError('aborted (timeout or shutdown) while waiting for a message')) }
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      return await fn()
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
  }
}

/** Split a list into message-sized batches (at least one, possibly empty). */
export function chunk<T> (list: readonly T[], size: number): T[][] {
  const out: T[][] = []
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size))
  return out.length === 0 ? [[]] : out
}
