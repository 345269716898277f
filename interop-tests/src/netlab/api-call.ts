/**
 * `node api-call.js REPO METHOD ROUTE [JSON_BODY]`: one request to a daemon's control API
 * (URL in `<repo>/api`, token in `<repo>/token`), run inside the daemon's namespace by
 * `LabDevice.api`. Prints `{ "elapsedMs": …, "answer": … }`; exits 1 with the error on stderr
 * when the daemon answers with an error status.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'

/** A long operation (get of a large file over a capped uplink) still ends within this. */
const TIMEOUT_MS = 10 * 60_000

async function main (argv: string[]): Promise<number> {
  const [repo, method, route, body] = argv
  if (repo === undefined || (method !== 'GET' && method !== 'POST') || route === undefined) {
    process.stderr.write('usage: api-call.js REPO GET|POST ROUTE [JSON_BODY]\n')
    return 2
  }
  const url = (await readFile(join(repo, 'api'), 'utf8')).trim()
  const token = (await readFile(join(repo, 'token'), 'utf8')).trim()
  const started = performance.now()
  const res = await fetch(new URL(`/api/v1/${route}`, url), {
    method,
    headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body,
    signal: AbortSignal.timeout(TIMEOUT_MS)
  })
  const text = await res.text()
  const elapsedMs = Math.round(performance.now() - started)
  if (!res.ok) {
    process.stderr.write(`HTTP ${res.status}: ${text}\n`)
    return 1
  }
  process.stdout.write(JSON.stringify({ elapsedMs, answer: JSON.parse(text) as unknown }) + '\n')
  return 0
}

main(process.argv.slice(2)).then(code => { process.exitCode = code }, (err: unknown) => {
  process.stderr.write(`${(err as Error).message}\n`)
  process.exitCode = 1
})
