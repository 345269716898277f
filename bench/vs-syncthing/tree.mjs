// Trees compared by content: path → sha256 of every file, and the exact moment a
// receiver's tree first held exactly the expected bytes.
//
// How "B is byte-identical" is timed without the hashing itself inflating the time:
// a poll of B every POLL_MS (cheap: see treePoller) records, per file, the poll at which
// its current (inode, size, mtime, ctime) was first seen; a hash worker hashes each new
// version whose size is the expected one (temp files, wrong sizes and unexpected paths are
// never read). Both systems replace files by rename (new inode) and any in-place write
// moves ctime, so a file whose stat key did not change since poll P held the same bytes
// at P. The tree is identical once every expected file's current version hashes to the
// expected digest and the set of paths equals the expected set; the time reported is the
// end of the first poll that saw that final state (resolution: one poll, ~0.1 s).
import { createHash } from 'node:crypto'
import { createReadStream, lstatSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'

const POLL_MS = 100
/** Names that belong to one system's bookkeeping, not to the user's tree. */
const PRIVATE_NAME = /^(\.stfolder|\.stversions|\.stignore|\.syncthing\..*\.tmp|~syncthing~.*\.tmp|\.homecloud.*)$/

export function isPrivateName (name) {
  return PRIVATE_NAME.test(name)
}

/** Every file under `root` (relative paths, '/'-separated) with its stat key and size. */
export function walk (root) {
  const files = new Map()
  const dirs = ['']
  while (dirs.length > 0) {
    const rel = dirs.pop()
    let entries
    try {
      entries = readdirSync(join(root, rel), { withFileTypes: true })
    } catch (err) {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') continue // renamed or removed under us
      throw err
    }
    for (const entry of entries) {
      if (isPrivateName(entry.name)) continue
      const path = rel === '' ? entry.name : `${rel}/${entry.name}`
      if (entry.isDirectory()) {
        dirs.push(path)
        continue
      }
      try {
        const st = lstatSync(join(root, path), { bigint: true })
        files.set(path, { key: `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`, size: Number(st.size) })
      } catch (err) {
        if (err.code !== 'ENOENT') throw err
      }
    }
  }
  return files
}

/** sha256 of a file, hex. */
export async function hashFile (path, { edit } = {}) {
  const hash = createHash('sha256')
  let pos = 0
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) {
    if (edit != null && edit.at >= pos && edit.at < pos + chunk.length) {
      chunk[edit.at - pos] ^= edit.xor
    }
    hash.update(chunk)
    pos += chunk.length
  }
  return hash.digest('hex')
}

/**
 * A tree's digests, re-hashing only files whose stat key changed since the last call
 * (for the master copy that every scenario updates).
 */
export function treeHasher (root) {
  const cache = new Map()
  return async function hashTree () {
    const out = new Map()
    for (const [path, { key, size }] of walk(root)) {
      let hit = cache.get(path)
      if (hit?.key !== key) {
        hit = { key, size, hash: await hashFile(join(root, path)) }
        cache.set(path, hit)
      }
      out.set(path, { size, hash: hit.hash })
    }
    for (const path of cache.keys()) if (!out.has(path)) cache.delete(path)
    return out
  }
}

/**
 * Polls a tree cheaply: a folder whose (inode, mtime, ctime) did not change since the last
 * poll keeps its cached listing (creating, renaming or deleting an entry changes the
 * folder; both systems write files as a temp file renamed into place), so a poll costs one
 * lstat per folder instead of one per file (a full walk of 22,000 files takes ~0.1 s of CPU,
 * which would compete with the systems under test on a 2-core machine). A folder changed in
 * the last RECENT_MS is read again (timestamps are coarse: a second change in the same
 * tick would not move them), and `full` re-reads everything (a safety net for in-place
 * writes). Returns the files set or changed ([path, { key, size }]) and removed since the
 * last poll.
 */
function treePoller (root) {
  const RECENT_MS = 100
  const dirs = new Map() // rel → { stamp, recent, files: Map<name, { key, size }>, subdirs: Set<name> }
  const join2 = (rel, name) => rel === '' ? name : `${rel}/${name}`

  function drop (rel, removed) {
    const d = dirs.get(rel)
    if (d == null) return
    dirs.delete(rel)
    for (const name of d.files.keys()) removed.push(join2(rel, name))
    for (const sub of d.subdirs) drop(join2(rel, sub), removed)
  }

  function visit (rel, full, out) {
    let st
    try {
      st = lstatSync(join(root, rel), { bigint: true })
    } catch (err) {
      if (err.code !== 'ENOENT' && err.code !== 'ENOTDIR') throw err
      drop(rel, out.removed)
      return
    }
    const stamp = `${st.ino}:${st.mtimeNs}:${st.ctimeNs}`
    let d = dirs.get(rel)
    if (d == null || full || d.recent || d.stamp !== stamp) {
      let entries
      try {
        entries = readdirSync(join(root, rel), { withFileTypes: true })
      } catch (err) {
        if (err.code !== 'ENOENT' && err.code !== 'ENOTDIR') throw err
        drop(rel, out.removed)
        return
      }
      const files = new Map()
      const subdirs = new Set()
      for (const entry of entries) {
        if (isPrivateName(entry.name)) continue
        if (entry.isDirectory()) {
          subdirs.add(entry.name)
          continue
        }
        try {
          const fst = lstatSync(join(root, rel, entry.name), { bigint: true })
          const info = { key: `${fst.ino}:${fst.size}:${fst.mtimeNs}:${fst.ctimeNs}`, size: Number(fst.size) }
          files.set(entry.name, info)
          if (d?.files.get(entry.name)?.key !== info.key) out.set.push([join2(rel, entry.name), info])
        } catch (err) {
          if (err.code !== 'ENOENT') throw err
        }
      }
      if (d != null) {
        for (const name of d.files.keys()) if (!files.has(name)) out.removed.push(join2(rel, name))
        for (const name of d.subdirs) if (!subdirs.has(name)) drop(join2(rel, name), out.removed)
      }
      d = { stamp, recent: Date.now() - Number(st.mtimeNs / 1_000_000n) < RECENT_MS || Date.now() - Number(st.ctimeNs / 1_000_000n) < RECENT_MS, files, subdirs }
      dirs.set(rel, d)
    }
    for (const sub of d.subdirs) visit(join2(rel, sub), full, out)
  }

  return function poll (full = false) {
    const out = { set: [], removed: [] }
    visit('', full, out)
    return out
  }
}

const FULL_POLL_MS = 2000
const SMALL_FILE = 4 * 1024 * 1024

function statKey (path) {
  try {
    const st = lstatSync(path, { bigint: true })
    return `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`
  } catch {
    return null
  }
}

async function hashAny (path, size) {
  return size <= SMALL_FILE ? createHash('sha256').update(readFileSync(path)).digest('hex') : await hashFile(path)
}

/**
 * Watches a receiver's tree across changes. `refresh()` (before a change, outside the
 * timed window) polls everything and hashes what changed, so a timed wait only reads the
 * files the change touched; `wait(expected, { t0, timeoutMs })` resolves with { ms } (from
 * `t0` to the first poll that saw exactly `expected`) or { timedOut: true, missing, extra }.
 */
export function watchTree (root) {
  const poll = treePoller(root)
  const state = new Map() // path → { key, size, since, hash, hashedKey, goodSince }

  function ingest ({ set, removed }, t, on) {
    for (const path of removed) {
      if (!state.has(path)) continue
      state.delete(path)
      on?.removed(path)
    }
    for (const [path, { key, size }] of set) {
      const e = state.get(path)
      if (e == null) state.set(path, { key, size, since: t, hash: null, hashedKey: null, goodSince: null })
      else Object.assign(e, { key, size, since: t })
      on?.set(path, e == null)
    }
  }

  async function refresh () {
    ingest(poll(true), performance.now())
    for (const [path, e] of state) {
      if (e.hashedKey === e.key) continue
      const key = e.key
      try {
        e.hash = await hashAny(join(root, path), e.size)
      } catch (err) {
        if (err.code !== 'ENOENT') throw err
        continue
      }
      e.hashedKey = key
    }
  }

  async function wait (expected, { t0, timeoutMs }) {
    const good = new Set() // expected paths whose current version has the expected bytes
    const queue = new Set()
    let present = 0 // expected paths present
    let extra = 0 // other paths present
    for (const [path, e] of state) {
      const want = expected.get(path)
      if (want == null) {
        extra++
        continue
      }
      present++
      if (e.hashedKey !== e.key) {
        queue.add(path)
      } else if (e.hash === want.hash) {
        good.add(path)
        e.goodSince = e.since
      }
      // else: this version was hashed (refresh) and is not the expected one; the poll queues its
      // next version. Hashing it again here read the whole 1 GiB file of b) and c) on the clock,
      // while the sender re-hashed its own copy on the same 2 cores.
    }
    const on = {
      removed (path) {
        good.delete(path)
        queue.delete(path)
        if (expected.has(path)) present--
        else extra--
      },
      set (path, isNew) {
        if (isNew) {
          if (expected.has(path)) present++
          else extra++
        } else {
          good.delete(path)
        }
        if (expected.has(path)) queue.add(path)
      }
    }
    let memberSince = null
    let done = null
    let stopped = false
    let hashing = null
    let failure = null

    const check = () => {
      if (done != null || memberSince == null || good.size !== expected.size) return
      let at = memberSince
      for (const path of expected.keys()) at = Math.max(at, state.get(path).goodSince)
      done = at
    }

    const hashWorker = async () => {
      while (queue.size > 0 && !stopped) {
        const path = queue.values().next().value
        queue.delete(path)
        const e = state.get(path)
        const want = expected.get(path)
        if (e == null || want == null) continue
        const { key, since } = e
        let hash
        if (e.size !== want.size) {
          hash = `size:${e.size}`
        } else {
          const abs = join(root, path)
          try {
            hash = await hashAny(abs, e.size)
          } catch (err) {
            if (err.code === 'ENOENT') continue
            throw err
          }
          // changed while we read it: the next poll queues the new version
          if (statKey(abs) !== key) continue
        }
        const cur = state.get(path)
        if (cur == null || cur.key !== key) continue
        // same bytes as the version before (a metadata-only change): good since then
        const wasGood = cur.hash === want.hash && cur.goodSince != null
        cur.goodSince = hash === want.hash ? (wasGood ? cur.goodSince : since) : null
        cur.hash = hash
        cur.hashedKey = key
        if (hash === want.hash) good.add(path)
        else good.delete(path)
        check()
      }
    }

    const deadline = performance.now() + timeoutMs
    let lastFull = performance.now()
    while (done == null && performance.now() < deadline) {
      const full = performance.now() - lastFull >= FULL_POLL_MS
      if (full) lastFull = performance.now()
      const changes = poll(full)
      ingest(changes, performance.now(), on)
      memberSince = present === expected.size && extra === 0 ? (memberSince ?? performance.now()) : null
      check()
      if (done != null || failure != null) break
      hashing ??= hashWorker().catch(err => { failure = err }).finally(() => { hashing = null })
      // polls go on while a big file is hashed: first-seen times stay one poll accurate
      await new Promise(resolve => setTimeout(resolve, POLL_MS))
    }
    stopped = true
    await hashing
    if (failure != null) throw failure
    if (done != null) return { ms: done - t0 }
    const missing = [...expected.keys()].filter(p => !good.has(p))
    const extras = [...state.keys()].filter(p => !expected.has(p))
    return { timedOut: true, missing: missing.slice(0, 5), missingCount: missing.length, extra: extras.slice(0, 5) }
  }

  return { refresh, wait }
}
