export interface WaitForOptions {
  /** Fail after this many ms (default 5 000). */
  timeout?: number
  /** Poll every this many ms (default 20). */
  interval?: number
  /** What is awaited, for the timeout's message. */
  what?: string
}

/**
 * Polls `fn` until it returns a truthy value and returns that value, or fails after `timeout`
 * ms: tests wait on a condition with a bound, never on a sleep. A throw of `fn` counts as "not
 * yet" (a peer store lookup fails until identify ran); the last one is the timeout's cause.
 */
export async function waitFor<T> (fn: () => T | Promise<T>, { timeout = 5_000, interval = 20, what = 'condition' }: WaitForOptions = {}): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeout
  let lastError: unknown

  while (Date.now() < deadline) {
    try {
      const value = await fn()

      if (value) {
        return value as NonNullable<T>
      }
    } catch (err) {
      lastError = err
    }

    await new Promise(resolve => setTimeout(resolve, interval))
  }

  throw new Error(`timed out after ${timeout} ms waiting for ${what}`, { cause: lastError })
}
