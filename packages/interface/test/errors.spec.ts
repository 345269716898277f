import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { HomecloudError, IntegrityError, NotFoundError, isHomecloudError } from '../src/index.js'

describe('errors', () => {
  it('carry a stable code and their own name', () => {
    const err = new NotFoundError('no block x')
    assert.equal(err.code, 'ERR_NOT_FOUND')
    assert.equal(err.name, 'NotFoundError')
    assert.ok(err instanceof HomecloudError)
    assert.ok(isHomecloudError(err))
  })

  it('keep the cause', () => {
    const cause = new Error('hash mismatch')
    const err = new IntegrityError('bad block', { cause })
    assert.equal(err.cause, cause)
    assert.equal(isHomecloudError(new Error('plain')), false)
  })
})
