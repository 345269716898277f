import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { AbortError, HomecloudError, InvalidParametersError, LimitExceededError, NotFoundError, PermissionDeniedError } from '@homecloud/interface'
import { HTTP_STATUS_BY_CODE, MethodNotAllowedError, RequestTooLargeError, UnauthenticatedError, httpStatusFor } from '../src/index.js'

describe('HTTP status table', () => {
  it('maps every known error class to its status', () => {
    const cases: Array<[unknown, number]> = [
      [new InvalidParametersError('x'), 400],
      [new UnauthenticatedError(), 401],
      [new PermissionDeniedError('x'), 403],
      [new NotFoundError('x'), 404],
      [new MethodNotAllowedError('PUT', 'GET'), 405],
      [new RequestTooLargeError(1), 413],
      [new LimitExceededError('x'), 429],
      [new AbortError(), 503]
    ]
    for (const [err, status] of cases) {
      assert.equal(httpStatusFor(err).status, status, (err as Error).name)
    }
  })

  it('maps unknown codes, plain errors and non-errors to 500', () => {
    assert.deepEqual(httpStatusFor(new HomecloudError('x', 'ERR_SOMETHING_NEW')), { status: 500, code: 'ERR_SOMETHING_NEW' })
    assert.deepEqual(httpStatusFor(new Error('x')), { status: 500, code: 'ERR_INTERNAL' })
    assert.deepEqual(httpStatusFor('a string'), { status: 500, code: 'ERR_INTERNAL' })
    assert.deepEqual(httpStatusFor(Object.assign(new Error('x'), { name: 'toString' })), { status: 500, code: 'ERR_INTERNAL' })
  })

  it('maps libp2p errors by name and platform timeouts', () => {
    assert.deepEqual(httpStatusFor(Object.assign(new Error('x'), { name: 'InvalidMultiaddrError' })), { status: 400, code: 'InvalidMultiaddrError' })
    assert.equal(httpStatusFor(new DOMException('t', 'TimeoutError')).status, 504)
  })

  it('is frozen', () => {
    assert.ok(Object.isFrozen(HTTP_STATUS_BY_CODE))
  })
})
