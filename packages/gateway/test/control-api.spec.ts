import assert from 'node:assert/strict'
import { connect as netConnect } from 'node:net'
import type { Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { InvalidParametersError, NotFoundError, PermissionDeniedError } from '@homecloud/interface'
import { waitFor } from '@homecloud/test-support'
import { createControlApi } from '../src/index.js'
import type { ControlApi } from '../src/index.js'
import { TOKEN, auth, identity, peer, request, status, stubNode } from './helpers.js'

describe('control API', () => {
  const node = stubNode()
  let api: ControlApi

  before(async () => {
    api = createControlApi({ node, token: TOKEN, port: 0, limits: { maxBodyBytes: 1024 } })
    await api.start()
  })

  after(async () => {
    await api.stop()
  })

  it('listens on loopback and reports the real port', () => {
    const url = new URL(api.url)
    assert.equal(url.hostname, '127.0.0.1')
    assert.notEqual(Number(url.port), 0)
  })

  it('refuses a request without a token with 401 and a challenge', async () => {
    const reply = await request(api.url, '/api/v1/id', { headers: { host: new URL(api.url).host } })
    assert.equal(reply.status, 401)
    assert.match(String(reply.headers['www-authenticate']), /^Bearer/)
    assert.deepEqual(reply.json, { error: { code: 'ERR_UNAUTHENTICATED', message: 'a valid bearer token is required' } })
  })

  it('refuses a wrong token with 401', async () => {
    for (const token of [TOKEN.slice(0, -1) + 'X', TOKEN + 'X', 'short']) {
      const reply = await request(api.url, '/api/v1/id', { headers: auth(api.url, token) })
      assert.equal(reply.status, 401, token)
    }
    const basic = await request(api.url, '/api/v1/id', { headers: { ...auth(api.url), authorization: `Basic ${TOKEN}` } })
    assert.equal(basic.status, 401)
  })

  it('refuses a foreign Host header with 403, token or not (DNS rebinding)', async () => {
    const port = new URL(api.url).port
    for (const host of ['evil.example', `evil.example:${port}`, '127.0.0.1:1', `127.0.0.2:${port}`]) {
      const reply = await request(api.url, '/api/v1/id', { headers: { ...auth(api.url), host } })
      assert.equal(reply.status, 403, host)
      assert.equal((reply.json as { error: { code: string } }).error.code, 'ERR_PERMISSION_DENIED')
    }
  })

  it('accepts its own loopback names in the Host header', async () => {
    const port = new URL(api.url).port
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`, `[::1]:${port}`]) {
      const reply = await request(api.url, '/api/v1/id', { headers: { ...auth(api.url), host } })
      assert.equal(reply.status, 200, host)
    }
  })

  it('answers id, status and peers with the device data', async () => {
    const id = await request(api.url, '/api/v1/id', { headers: auth(api.url) })
    assert.equal(id.status, 200)
    assert.match(String(id.headers['content-type']), /^application\/json/)
    assert.deepEqual(id.json, identity)
    assert.deepEqual((await request(api.url, '/api/v1/status', { headers: auth(api.url) })).json, status)
    assert.deepEqual((await request(api.url, '/api/v1/peers', { headers: auth(api.url) })).json, { peers: [peer] })
  })

  it('dials the multiaddr posted to connect', async () => {
    const multiaddr = '/ip4/127.0.0.1/tcp/4002/p2p/' + peer.peerId
    const reply = await request(api.url, '/api/v1/connect', {
      method: 'POST',
      headers: { ...auth(api.url), 'content-type': 'application/json' },
      body: JSON.stringify({ multiaddr })
    })
    assert.equal(reply.status, 200)
    assert.deepEqual(reply.json, peer)
    assert.equal(node.dialled.at(-1), multiaddr)
  })

  it('refuses a body over the limit with 413 and does not dial', async () => {
    const before = node.dialled.length
    const reply = await request(api.url, '/api/v1/connect', {
      method: 'POST',
      headers: { ...auth(api.url), 'content-type': 'application/json' },
      body: JSON.stringify({ multiaddr: '/ip4/127.0.0.1/tcp/1', pad: 'x'.repeat(4096) })
    })
    assert.equal(reply.status, 413)
    assert.equal((reply.json as { error: { code: string } }).error.code, 'ERR_REQUEST_TOO_LARGE')
    assert.equal(node.dialled.length, before)
  })

  it('refuses bad JSON, a missing multiaddr and a non-JSON body with 4xx', async () => {
    const post = async (body: string, type = 'application/json'): Promise<number> =>
      (await request(api.url, '/api/v1/connect', { method: 'POST', headers: { ...auth(api.url), 'content-type': type }, body })).status
    const before = node.dialled.length
    assert.equal(await post('{"multiaddr": '), 400)
    assert.equal(await post(''), 400)
    assert.equal(await post('{}'), 400)
    assert.equal(await post('null'), 400)
    assert.equal(await post('{"multiaddr": 42}'), 400)
    assert.equal(await post('multiaddr=/ip4/1.2.3.4', 'application/x-www-form-urlencoded'), 415)
    assert.equal(node.dialled.length, before)
  })

  it('maps the errors the device throws through the status table', async () => {
    const cases: Array<[Error, number, string]> = [
      [new InvalidParametersError('bad multiaddr'), 400, 'ERR_INVALID_PARAMETERS'],
      [new PermissionDeniedError('denied'), 403, 'ERR_PERMISSION_DENIED'],
      [new NotFoundError('no such peer'), 404, 'ERR_NOT_FOUND'],
      [Object.assign(new Error('dial timed out'), { name: 'TimeoutError' }), 504, 'TimeoutError'],
      [new Error('boom'), 500, 'ERR_INTERNAL']
    ]
    try {
      for (const [err, expected, code] of cases) {
        node.connectImpl = async () => { throw err }
        const reply = await request(api.url, '/api/v1/connect', {
          method: 'POST',
          headers: { ...auth(api.url), 'content-type': 'application/json' },
          body: JSON.stringify({ multiaddr: '/ip4/127.0.0.1/tcp/1' })
        })
        assert.equal(reply.status, expected, err.message)
        assert.deepEqual(reply.json, { error: { code, message: err.message } })
      }
    } finally {
      node.connectImpl = async () => peer
    }
  })

  it('answers 404 for unknown routes and 405 for the wrong method', async () => {
    for (const path of ['/', '/api/v1/', '/api/v1/nope', '/api/v2/id', '/api/v1/id/x']) {
      assert.equal((await request(api.url, path, { headers: auth(api.url) })).status, 404, path)
    }
    const reply = await request(api.url, '/api/v1/connect', { headers: auth(api.url) })
    assert.equal(reply.status, 405)
    assert.equal(reply.headers.allow, 'POST')
    assert.equal((await request(api.url, '/api/v1/id', { method: 'POST', headers: auth(api.url), body: '{}' })).status, 405)
  })

  it('refuses an oversize request head with 431', async () => {
    const reply = await request(api.url, '/api/v1/id', { headers: { ...auth(api.url), 'x-pad': 'y'.repeat(20 * 1024) } })
    assert.equal(reply.status, 431)
  })
})

describe('control API lifecycle and bounds', () => {
  it('refuses a short token', () => {
    assert.throws(() => createControlApi({ node: stubNode(), token: 'abc' }), { code: 'ERR_INVALID_PARAMETERS' })
    assert.throws(() => createControlApi({ node: stubNode(), token: TOKEN, port: 70000 }), { code: 'ERR_INVALID_PARAMETERS' })
  })

  it('has no url before start and after stop', async () => {
    const api = createControlApi({ node: stubNode(), token: TOKEN })
    assert.throws(() => api.url, { code: 'ERR_NOT_STARTED' })
    await api.start()
    const url = api.url
    await api.stop()
    assert.throws(() => api.url, { code: 'ERR_NOT_STARTED' })
    await assert.rejects(request(url, '/api/v1/id', { headers: auth(url) }), { code: 'ECONNREFUSED' })
  })

  it('accepts an extra allowed host only when configured', async () => {
    const api = createControlApi({ node: stubNode(), token: TOKEN, allowedHosts: ['homecloud.local'] })
    await api.start()
    try {
      const port = new URL(api.url).port
      const ok = await request(api.url, '/api/v1/id', { headers: { ...auth(api.url), host: `homecloud.local:${port}` } })
      assert.equal(ok.status, 200)
      const other = await request(api.url, '/api/v1/id', { headers: { ...auth(api.url), host: `homecloud.local:${Number(port) + 1}` } })
      assert.equal(other.status, 403)
    } finally {
      await api.stop()
    }
  })

  it('aborts a running device operation on stop', async () => {
    const node = stubNode()
    let aborted = false
    let started = false
    node.peersImpl = async (signal) => new Promise((_resolve, reject) => {
      started = true
      signal?.addEventListener('abort', () => { aborted = true; reject(new Error('aborted')) }, { once: true })
    })
    const api = createControlApi({ node, token: TOKEN })
    await api.start()
    const pending = request(api.url, '/api/v1/peers', { headers: auth(api.url) }).catch((err: unknown) => err)
    await waitFor(() => started)
    await api.stop()
    assert.equal(aborted, true)
    // the client's socket is closed by stop(): no answer, an error
    assert.ok((await pending) instanceof Error)
  })

  it('caps sockets per remote IP', async () => {
    const api = createControlApi({ node: stubNode(), token: TOKEN, limits: { maxSocketsPerIp: 2 } })
    await api.start()
    const { port } = new URL(api.url)
    const open = async (): Promise<Socket> => new Promise((resolve, reject) => {
      const socket = netConnect({ host: '127.0.0.1', port: Number(port) }, () => { resolve(socket) })
      socket.once('error', reject)
    })
    const sockets: Socket[] = []
    try {
      sockets.push(await open(), await open())
      const third = await open()
      sockets.push(third)
      let closed = false
      third.once('close', () => { closed = true })
      third.on('error', () => {})
      await waitFor(() => closed)
      // the two held sockets still work
      const first = sockets[0]
      let answer = ''
      first.on('data', (chunk: Buffer) => { answer += chunk.toString('utf8') })
      first.write(`GET /api/v1/id HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`)
      await waitFor(() => answer.includes('stub-box'))
      assert.match(answer, /^HTTP\/1.1 200/)
    } finally {
      sockets.forEach((socket) => socket.destroy())
      await api.stop()
    }
  })

  it('drops slow and silent clients after the header timeout while others are served (slowloris)', async () => {
    const api = createControlApi({ node: stubNode(), token: TOKEN, limits: { headersTimeoutMs: 300, requestTimeoutMs: 600 } })
    await api.start()
    const { port } = new URL(api.url)
    const clients = [0, 1].map(() => {
      const socket = netConnect({ host: '127.0.0.1', port: Number(port) })
      const state = { socket, closed: false, answer: '' }
      socket.on('data', (chunk: Buffer) => { state.answer += chunk.toString('utf8') })
      socket.once('close', () => { state.closed = true })
      socket.on('error', () => {})
      return state
    })
    try {
      // one sends half a request head and stops; the other never sends a byte
      clients[0].socket.write('GET /api/v1/id HTTP/1.1\r\nHost: 127.0.0.1')
      const reply = await request(api.url, '/api/v1/id', { headers: auth(api.url) })
      assert.equal(reply.status, 200)
      await waitFor(() => clients.every((client) => client.closed), { timeout: 5000 })
      for (const { answer } of clients) {
        assert.ok(answer === '' || answer.startsWith('HTTP/1.1 408'), answer)
      }
    } finally {
      clients.forEach(({ socket }) => socket.destroy())
      await api.stop()
    }
  })
})
