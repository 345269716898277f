/**
 * Files renamed into place by a pull that stopped before the index recorded
 * them (kill -9, power loss): apply keeps a record of each rename until the
 * index has it. On start, a file still under its name with the inode it was
 * renamed with is that version, not a local edit (which would conflict with
 * its sender).
 */
import { withLocal } from './apply-disk.js'
import { decodeEntry, decodeRecord, shareKeys, type ShareRecords } from './share-state.js'
import type { LocalEntry } from './entry.js'
import type { ShareFs } from './fs.js'
import type { LocalIndex } from './local-index.js'
import type { KvOperation } from './share-kv.js'

export interface PendingRenamesInit {
  share: string
  /** Absolute path of the share folder. */
  root: string
  records: ShareRecords
  index: LocalIndex
  fs: Pick<ShareFs, 'lstat'>
}

/** Records the renames that made it to disk and forgets every record; returns the entries recorded. */
export async function recoverPendingRenames (init: PendingRenamesInit, signal: AbortSignal): Promise<LocalEntry[]> {
  const recovered: LocalEntry[] = []
  const done: KvOperation[] = []
  for await (const [key, value] of init.records.kv.entries(shareKeys.pendings(init.share))) {
    signal.throwIfAborted()
    done.push({ type: 'del', key })
    const { ino, entries } = decodeRecord<{ ino: number, entries: Uint8Array[] }>(value)
    const [entry, ...moved] = entries.map(decodeEntry)
    const stat = await init.fs.lstat(`${init.root}/${entry.path}`).catch(() => undefined)
    if (stat?.ino !== ino || stat.type !== entry.type || stat.size !== entry.size) continue
    // a move's source tombstone comes with it: the rename took the file away from there
    recovered.push(withLocal(entry, stat), ...moved)
  }
  if (done.length > 0) await init.index.set(recovered, done)
  return recovered
}
