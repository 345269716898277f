/**
 * Progress of long routes as NDJSON (`Accept: application/x-ndjson`): lines
 * `{"type":"progress",...}`, then one `{"type":"result","result":...}` or
 * `{"type":"error","error":{"code","message","status"}}`. Headers go out
 * with the first line, so an error before any progress is an ordinary JSON
 * error with its HTTP status.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { PROGRESS_INTERVAL_MS } from './constants.js'
import { httpStatusFor } from './http-status.js'

export const NDJSON_TYPE = 'application/x-ndjson'

export function wantsNdjson (req: IncomingMessage): boolean {
  return (req.headers.accept ?? '').toLowerCase().includes(NDJSON_TYPE)
}

/**
 * Runs `run`, streaming the progress it reports at most every
 * PROGRESS_INTERVAL_MS (the latest wins; a line is dropped rather than
 * buffered while the client reads slowly), then its result or error.
 */
export async function streamNdjson (
  res: ServerResponse,
  run: (progress: (detail: object) => void) => Promise<unknown>,
  sendError: (res: ServerResponse, err: unknown) => void
): Promise<void> {
  let lastAt = 0
  let pending: object | undefined
  let timer: ReturnType<typeof setTimeout> | undefined
  const line = (value: object): void => {
    if (res.destroyed || res.writableEnded) return
    if (!res.headersSent) {
      res.writeHead(200, {
        'content-type': `${NDJSON_TYPE}; charset=utf-8`,
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff'
      })
    }
    res.write(JSON.stringify(value) + '\n')
  }
  const flush = (): void => {
    timer = undefined
    if (pending === undefined) return
    const detail = pending
    pending = undefined
    lastAt = Date.now()
    if (!res.writableNeedDrain) line({ type: 'progress', ...detail })
  }
  const progress = (detail: object): void => {
    pending = detail
    if (timer !== undefined) return
    const wait = lastAt + PROGRESS_INTERVAL_MS - Date.now()
    if (wait <= 0) {
      flush()
    } else {
      timer = setTimeout(flush, wait)
    }
  }
  try {
    const result = await run(progress)
    clearTimeout(timer)
    line({ type: 'result', result })
  } catch (err) {
    clearTimeout(timer)
    if (!res.headersSent) {
      sendError(res, err)
      return
    }
    const { status, code } = httpStatusFor(err)
    line({ type: 'error', error: { code, status, message: err instanceof Error ? err.message : String(err) } })
  }
  res.end()
}
