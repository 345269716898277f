import type { ExchangeStats } from './types.js'

/** The event counts of an exchange; sessions and served streams add to them. */
export type Counters = Omit<ExchangeStats, 'openSessions' | 'servedStreams'>

export function newCounters (): Counters {
  return {
    blocksServed: 0,
    bytesServed: 0,
    missingServed: 0,
    denied: 0,
    blocksReceived: 0,
    bytesReceived: 0,
    wrongBlocks: 0,
    unrequestedBlocks: 0,
    lateBlocks: 0,
    badMessages: 0
  }
}
