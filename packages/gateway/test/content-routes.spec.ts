import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { CustomProgressEvent, HomecloudError, InvalidParametersError } from '@homecloud/interface'
import type { AddContentResult, ContentOptions, ContentProgress, GetContentOptions, GetContentResult } from '@homecloud/node'
import { createControlApi } from '../src/index.js'
import type { ControlApi, ContentRoutesNode } from '../src/index.js'
import { TOKEN, auth, request, stubNode } from './helpers.js'

const ADDED: AddContentResult = { cid: 'bafyroot', files: 2, bytes: 10, provided: false }

function progress (bytes: number): CustomProgressEvent<ContentProgress, 'content:progress'> {
  return new CustomProgressEvent('content:progress', { phase: 'data', bytes, bytesTotal: 100, chunks: bytes, chunksTotal: 100 })
}

/** The content part of a device as a stub: each call records its arguments and answers what the test sets. */
function stubContent (): Required<ContentRoutesNode> & { calls: unknown[], getImpl: (options: GetContentOptions) => Promise<GetContentResult> } {
  const stub = {
    calls: [] as unknown[],
    getImpl: async (_options: GetContentOptions): Promise<GetContentResult> => { throw new Error('unset') },
    add: async (path: string, options: ContentOptions = {}) => {
      stub.calls.push(['add', path])
      // more events than lines: the route sends at most one every 100 ms
      for (let i = 1; i <= 50; i++) options.onProgress?.(progress(i))
      await new Promise(resolve => setTimeout(resolve, 250))
      options.onProgress?.(progress(100))
      await new Promise(resolve => setTimeout(resolve, 150))
      return ADDED
    },
    get: async (cid: string, output: string, options: GetContentOptions = {}) => {
      stub.calls.push(['get', cid, output, options.from])
      return stub.getImpl(options)
    },
    blocks: {
      stat: async () => ({ blocks: 1, blockBytes: 2, files: 3, fileChunks: 4, fileBytes: 5, pins: 6 }),
      gc: async () => ({ removedBlocks: 7, removedBytes: 8 }),
      verify: async () => ({ checked: 9, bad: [] })
    }
  }
  return stub
}

/** The NDJSON lines of a reply (the helper already parsed a one-line body as JSON). */
function lines (text: unknown): Array<Record<string, unknown>> {
  if (typeof text === 'object' && text !== null) return [text as Record<string, unknown>]
  return String(text).trim().split('\n').map(line => JSON.parse(line) as Record<string, unknown>)
}

describe('control API: content routes', () => {
  const content = stubContent()
  let api: ControlApi
  let bare: ControlApi

  const post = async (server: ControlApi, route: string, body: unknown, ndjson = false): ReturnType<typeof request> => request(server.url, `/api/v1/${route}`, {
    method: 'POST',
    headers: { ...auth(server.url), 'content-type': 'application/json', ...(ndjson ? { accept: 'application/x-ndjson' } : {}) },
    body: JSON.stringify(body)
  })

  before(async () => {
    // a tight operation timeout: long routes must not be cut by it
    api = createControlApi({ node: { ...stubNode(), ...content }, token: TOKEN, limits: { operationTimeoutMs: 200 } })
    bare = createControlApi({ node: stubNode(), token: TOKEN })
    await api.start()
    await bare.start()
  })

  after(async () => {
    await api.stop()
    await bare.stop()
  })

  it('add answers plain JSON, outliving the operation timeout', async () => {
    const reply = await post(api, 'add', { path: '/data/photos' })
    assert.equal(reply.status, 200)
    assert.deepEqual(reply.json, ADDED)
    assert.deepEqual(content.calls.at(-1), ['add', '/data/photos'])
  })

  it('add streams throttled NDJSON progress, then the result', async () => {
    const reply = await post(api, 'add', { path: '/data/photos' }, true)
    assert.equal(reply.status, 200)
    assert.match(String(reply.headers['content-type']), /^application\/x-ndjson/)
    const got = lines(reply.json)
    const progressLines = got.filter(line => line.type === 'progress')
    assert.ok(progressLines.length >= 2 && progressLines.length <= 6, `${progressLines.length} progress lines for 51 events`)
    assert.equal(progressLines.at(-1)?.bytes, 100, 'the latest progress wins')
    assert.equal(progressLines[0].phase, 'data')
    assert.deepEqual(got.at(-1), { type: 'result', result: ADDED })
  })

  it('get: an error before any progress keeps its HTTP status; after progress it is the last line', async () => {
    content.getImpl = async () => { throw new HomecloudError('exists', 'ERR_OUTPUT_EXISTS') }
    const early = await post(api, 'get', { cid: 'bafyroot', output: '/tmp/out', from: ['/ip4/127.0.0.1/tcp/1/p2p/x'] }, true)
    assert.equal(early.status, 409)
    assert.deepEqual(early.json, { error: { code: 'ERR_OUTPUT_EXISTS', message: 'exists' } })
    assert.deepEqual(content.calls.at(-1), ['get', 'bafyroot', '/tmp/out', ['/ip4/127.0.0.1/tcp/1/p2p/x']])

    content.getImpl = async (options) => {
      options.onProgress?.(progress(5))
      throw new HomecloudError('block x was not found', 'ERR_NOT_FOUND')
    }
    const late = await post(api, 'get', { cid: 'bafyroot', output: '/tmp/out' }, true)
    assert.equal(late.status, 200)
    const got = lines(late.json)
    assert.equal(got[0].type, 'progress')
    assert.deepEqual(got.at(-1), { type: 'error', error: { code: 'ERR_NOT_FOUND', status: 404, message: 'block x was not found' } })
  })

  it('refuses relative paths, bad CIDs and bad from lists with 400 before calling the device', async () => {
    const before = content.calls.length
    for (const body of [
      { path: 'relative/dir' },
      { path: '' }
    ]) {
      assert.equal((await post(api, 'add', body)).status, 400, JSON.stringify(body))
    }
    for (const body of [
      { cid: 'bafyroot', output: 'out' },
      { cid: '', output: '/tmp/out' },
      { cid: 'x'.repeat(300), output: '/tmp/out' },
      { cid: 'bafyroot', output: '/tmp/out', from: '/ip4/127.0.0.1/tcp/1' },
      { cid: 'bafyroot', output: '/tmp/out', from: [1] }
    ]) {
      const reply = await post(api, 'get', body)
      assert.equal(reply.status, 400, JSON.stringify(body))
      assert.equal((reply.json as { error: { code: string } }).error.code, InvalidParametersError.code)
    }
    assert.equal(content.calls.length, before)
  })

  it('blocks stat, gc and verify', async () => {
    const stat = await request(api.url, '/api/v1/blocks/stat', { headers: auth(api.url) })
    assert.deepEqual(stat.json, { blocks: 1, blockBytes: 2, files: 3, fileChunks: 4, fileBytes: 5, pins: 6 })
    assert.deepEqual((await post(api, 'blocks/gc', {})).json, { removedBlocks: 7, removedBytes: 8 })
    assert.deepEqual(lines((await post(api, 'blocks/verify', {}, true)).json), [{ type: 'result', result: { checked: 9, bad: [] } }])
    assert.equal((await request(api.url, '/api/v1/blocks/gc', { headers: auth(api.url) })).status, 405)
  })

  it('a device without content answers 501', async () => {
    const reply = await post(bare, 'add', { path: '/data' })
    assert.equal(reply.status, 501)
  })
})
