/**
 * Runs `fn` over `items` with at most `limit` calls in flight. Every call
 * settles before it returns: the first error is thrown then, so nothing a
 * failed run started is still working on the disk after it (store and sync
 * both use this one).
 */
export async function eachLimit<T> (items: Iterable<T>, limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const it = items[Symbol.iterator]()
  let failure: { err: unknown } | undefined
  const worker = async (): Promise<void> => {
    for (let next = it.next(); next.done !== true; next = it.next()) {
      try {
        await fn(next.value)
      } catch (err) {
        failure ??= { err }
      }
    }
  }
  await Promise.all(Array.from({ length: limit }, worker))
  if (failure != null) throw failure.err
}
