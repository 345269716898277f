import ignore from 'ignore'
import { IGNORE_FILE, MAX_IGNORE_FILE_BYTES } from './constants.js'
import { LimitExceededError } from './errors.js'
import { fsErrorCode, type ShareFs } from './fs.js'

/** Decides which share paths are not synced. */
export interface IgnoreMatcher {
  /** Is this share-relative path ignored? `isDir` makes patterns with a trailing `/` apply. */
  ignores(path: string, isDir: boolean): boolean
}

/** Matches nothing. */
export const IGNORE_NOTHING: IgnoreMatcher = { ignores: () => false }

/**
 * A matcher for `.homecloudignore` text in gitignore syntax: comments,
 * negation `!`, `*`, `**`, trailing `/` for directories, a leading `/` to
 * anchor at the share root, `\` escapes. Case-sensitive, as git on Linux.
 */
export function parseIgnore (text: string): IgnoreMatcher {
  const ig = ignore({ ignorecase: false }).add(text)
  return {
    ignores: (path, isDir) => {
      try {
        return ig.ignores(isDir ? `${path}/` : path)
      } catch {
        // the library throws on names like `...` or `../x`: path policy decides about those
        return false
      }
    }
  }
}

/**
 * Reads `<root>/.homecloudignore` (at most 256 KiB; a bigger file is an
 * error rather than half the patterns). No file: nothing is ignored.
 */
export async function loadIgnoreFile (fs: ShareFs, root: string): Promise<IgnoreMatcher> {
  const path = `${root}/${IGNORE_FILE}`
  let handle
  try {
    const stat = await fs.lstat(path)
    if (stat.type !== 'file') return IGNORE_NOTHING
    if (stat.size > MAX_IGNORE_FILE_BYTES) throw new LimitExceededError(`${IGNORE_FILE} is larger than ${MAX_IGNORE_FILE_BYTES} bytes`)
    handle = await fs.openRead(path)
  } catch (err) {
    if (fsErrorCode(err) === 'ENOENT') return IGNORE_NOTHING
    throw err
  }
  try {
    const buf = new Uint8Array(MAX_IGNORE_FILE_BYTES + 1)
    let length = 0
    for (let n = -1; n !== 0 && length < buf.byteLength;) {
      n = await handle.read(buf.subarray(length), length)
      length += n
    }
    if (length > MAX_IGNORE_FILE_BYTES) throw new LimitExceededError(`${IGNORE_FILE} is larger than ${MAX_IGNORE_FILE_BYTES} bytes`)
    return parseIgnore(new TextDecoder().decode(buf.subarray(0, length)))
  } finally {
    await handle.close()
  }
}
