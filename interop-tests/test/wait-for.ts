/** Polls `fn` until it returns a truthy value, or fails after `timeout` ms (errors from `fn` count as "not yet"). */
export async function waitFor<T> (fn: () => T | Promise<T>, { timeout = 5_000, interval = 50, what = 'condition' } = {}): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeout
  let lastError: unknown
  while (Date.now() < deadline) {
    try {
      const value = await fn()
      if (value) return value as NonNullable<T>
    } catch (err) {
      lastError = err
    }
    await new Promise(resolve => setTimeout(resolve, interval))
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${what}`, { cause: lastError })
}
