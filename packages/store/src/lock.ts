/**
 * GC against writers: writes (put, pin, addPath) share the lock, GC holds it
 * alone, so GC never sweeps blocks of a DAG still being written. A waiting GC
 * holds back new writers.
 */
export class GcLock {
  #shared = 0
  #exclusive: Promise<void> | undefined
  #drained: Array<() => void> = []

  async shared<T> (fn: () => Promise<T>): Promise<T> {
    while (this.#exclusive != null) await this.#exclusive
    this.#shared++
    try {
      return await fn()
    } finally {
      if (--this.#shared === 0) this.#drained.splice(0).forEach(resolve => { resolve() })
    }
  }

  async exclusive<T> (fn: () => Promise<T>): Promise<T> {
    while (this.#exclusive != null) await this.#exclusive
    const done = Promise.withResolvers<void>()
    this.#exclusive = done.promise
    try {
      while (this.#shared > 0) await new Promise<void>(resolve => { this.#drained.push(resolve) })
      return await fn()
    } finally {
      this.#exclusive = undefined
      done.resolve()
    }
  }
}
