import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { DEFAULT_LIMITS, InvalidParametersError, resolveLimits, type DeviceLimits } from '../src/index.js'

function assertInvalid (fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (err: Error & { code?: string }) => {
    assert.equal(err.name, 'InvalidParametersError')
    assert.equal(err.code, InvalidParametersError.code)
    assert.match(err.message, message)
    return true
  })
}

describe('limits', () => {
  it('defaults fit a 1 GiB box and are frozen', () => {
    assert.ok(Object.isFrozen(DEFAULT_LIMITS))
    assert.deepEqual(resolveLimits(), { ...DEFAULT_LIMITS })
    assert.deepEqual(resolveLimits({}), { ...DEFAULT_LIMITS })
    // the bounds RELIABILITY.md promises
    assert.equal(DEFAULT_LIMITS.maxBlockBytes, 2 * 1024 * 1024)
    assert.equal(DEFAULT_LIMITS.maxMessageBytes, 4 * 1024 * 1024)
    assert.ok(DEFAULT_LIMITS.maxConnections <= 300)
  })

  it('merges overrides over the defaults without touching them', () => {
    const limits = resolveLimits({ maxConnections: 50, maxPendingConnections: 8 })
    assert.equal(limits.maxConnections, 50)
    assert.equal(limits.maxPendingConnections, 8)
    assert.equal(limits.maxStreamsPerProtocol, DEFAULT_LIMITS.maxStreamsPerProtocol)
    assert.equal(DEFAULT_LIMITS.maxConnections, 300)
  })

  it('treats an undefined override as absent', () => {
    assert.equal(resolveLimits({ maxConnections: undefined }).maxConnections, DEFAULT_LIMITS.maxConnections)
  })

  for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 60]) {
    it(`rejects ${bad} as a limit`, () => {
      assertInvalid(() => resolveLimits({ maxStreamsPerProtocol: bad }), /maxStreamsPerProtocol.*positive integer/)
    })
  }

  it('rejects a limit of the wrong type', () => {
    assertInvalid(() => resolveLimits({ maxConnections: '10' as unknown as number }), /maxConnections/)
  })

  it('rejects an unknown limit name (a typo must not fall back to a default)', () => {
    assertInvalid(() => resolveLimits({ maxConection: 10 } as unknown as Partial<DeviceLimits>), /unknown limit "maxConection"/)
  })

  it('rejects limits that are not an object', () => {
    assertInvalid(() => resolveLimits([] as unknown as Partial<DeviceLimits>), /must be an object/)
  })

  it('rejects inconsistent pairs', () => {
    assertInvalid(() => resolveLimits({ maxConnections: 10, maxPendingConnections: 11 }), /maxPendingConnections/)
    assertInvalid(() => resolveLimits({ maxBlockBytes: DEFAULT_LIMITS.maxMessageBytes + 1 }), /maxBlockBytes/)
    assertInvalid(() => resolveLimits({ maxStreamsPerProtocol: DEFAULT_LIMITS.maxStreamsPerConnection + 1 }), /maxStreamsPerProtocol/)
  })
})
