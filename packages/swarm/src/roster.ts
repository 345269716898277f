/**
 * The roster of one private swarm: a DAG of signed entries and the rule that turns any set of
 * entries into the same list of members on every device.
 *
 * ## The rule
 * 1. **Admission** (checked when an entry arrives, depends only on the entry and its ancestors,
 *    which its hash links fix): the body is well formed and signed (see `decodeEntry`), names
 *    this swarm, all parents are present, and its signer is the creator or the device of an
 *    `add` entry among its ancestors. Anything else is rejected, counted and not stored.
 * 2. **Order**: entries are sorted topologically (parents first); among entries whose parents
 *    are all placed, the smallest CID (bytes) goes first. Every device holding the same set
 *    gets the same order.
 * 3. **Validity**, walking that order. An entry by signer S counts only if
 *    (a) S was a member in the entry's causal past (the counted entries among its ancestors,
 *        by rule 4), and
 *    (b) no counted `remove` of S placed earlier is concurrent with it (neither ancestor nor
 *        descendant): once removed, a device's actions made without knowledge of the removal do
 *        not count, and of two devices removing each other concurrently the one placed first wins.
 *    An `add` spending an invite also needs the `invite` entry among its ancestors and a use left
 *    (uses are spent in order; a surplus concurrent add does not count).
 * 4. **Membership** over a set of counted entries: device D is a member if some counted `add` of
 *    D (the genesis counts as the add of its signer) has every counted `remove` of D in that set
 *    among its ancestors. So a remove concurrent with an add of the same device wins, and an add
 *    made after seeing a remove re-admits the device.
 * 5. **Secret**: the commitment of the last counted `rotate` in the order (else the genesis')
 *    names the current swarm secret. A counted `remove` not among the ancestors of that entry
 *    leaves `needsRotation` set, so a remaining member rotates the secret.
 *
 * Entries admitted by rule 1 but not counted by rule 3 stay stored (later entries link them) and
 * are reported in `ignored`.
 */
import { CID } from 'multiformats/cid'
import { MAX_ROSTER_ENTRIES } from './constants.js'
import { compareBytes, devicePeerId, equalBytes } from './entry.js'
import { ForgedEntryError } from './errors.js'
import type { AddBody, GenesisBody, RosterEntry } from './entry.js'
import type { PeerId } from '@libp2p/interface'

/** A device on the roster. */
export interface Member {
  peerId: PeerId
  /** Human name given when it was added. */
  name: string
  addedBy: PeerId
  /** Milliseconds since the epoch of the entry that added it (as its signer claimed). */
  addedAt: number
}

/** An invite as recorded in the roster. */
export interface RecordedInvite {
  /** Hex of the invite's public key. */
  id: string
  key: Uint8Array
  expires: number
  uses: number
  used: number
  createdBy: PeerId
}

/** The roster computed from a set of entries. */
export interface RosterState {
  /** Members by PeerId string. */
  members: Map<string, Member>
  /** Invites by id (hex public key). */
  invites: Map<string, RecordedInvite>
  /** Commitment to the current swarm secret. */
  secretCommit: Uint8Array
  /** Number of counted rotations. */
  epoch: number
  /** A counted removal happened after the last rotation. */
  needsRotation: boolean
  /** Entries stored but not counted by the rule. */
  ignored: number
}

export interface AddResult {
  /** Entries newly stored, parents before children. */
  added: RosterEntry[]
  /** Entries refused (rule 1), each with its reason. */
  rejected: ForgedEntryError[]
}

export class RosterLog {
  readonly swarmId: CID
  readonly genesis: RosterEntry & { body: GenesisBody }
  private readonly list: RosterEntry[] = []
  private readonly index = new Map<string, number>()
  /** `ancestors[i]` is a bitset over insertion indexes `< i`. */
  private readonly ancestors: Uint32Array[] = []
  private readonly headSet = new Set<number>()
  private readonly maxEntries: number
  private cached?: RosterState

  constructor (genesis: RosterEntry, options: { maxEntries?: number } = {}) {
    if (genesis.body.type !== 'genesis') {
      throw new ForgedEntryError('the first roster entry must be the genesis', 'malformed')
    }
    this.genesis = genesis as RosterEntry & { body: GenesisBody }
    this.swarmId = genesis.cid
    this.maxEntries = options.maxEntries ?? MAX_ROSTER_ENTRIES
    this.insert(genesis)
  }

  get size (): number {
    return this.list.length
  }

  has (key: string): boolean {
    return this.index.has(key)
  }

  get (key: string): RosterEntry | undefined {
    const i = this.index.get(key)
    return i === undefined ? undefined : this.list[i]
  }

  /** Entries in insertion order (parents before children). */
  entries (): readonly RosterEntry[] {
    return this.list
  }

  /** Entries nothing links to yet: the parents of the next local entry. */
  heads (): CID[] {
    return [...this.headSet].sort((a, b) => a - b).map(i => this.list[i].cid)
  }

  /**
   * Admit verified entries (rule 1). The batch may come in any order; entries whose parents are
   * neither stored nor in the batch are rejected as `missing-parents`.
   */
  add (entries: Iterable<RosterEntry>): AddResult {
    const result: AddResult = { added: [], rejected: [] }
    let pending = [...entries].filter(e => !this.index.has(e.key))
    let progress = true
    while (pending.length > 0 && progress) {
      progress = false
      const waiting: RosterEntry[] = []
      for (const entry of pending) {
        if (this.index.has(entry.key)) continue // duplicate within the batch
        const foreign = this.foreign(entry)
        if (foreign !== undefined) {
          result.rejected.push(foreign)
          continue
        }
        if (!entry.body.parents.every(p => this.index.has(p.toString()))) {
          waiting.push(entry)
          continue
        }
        progress = true
        try {
          this.admit(entry)
          this.insert(entry)
          result.added.push(entry)
        } catch (err) {
          if (!(err instanceof ForgedEntryError)) throw err
          result.rejected.push(err)
        }
      }
      pending = waiting
    }
    for (const entry of pending) {
      result.rejected.push(new ForgedEntryError(`roster entry ${entry.key} links entries this device does not have`, 'missing-parents'))
    }
    return result
  }

  /** Entries that can never belong to this log, whatever else arrives. */
  private foreign (entry: RosterEntry): ForgedEntryError | undefined {
    if (entry.body.type === 'genesis') {
      return new ForgedEntryError('a second genesis entry for this swarm', 'duplicate-genesis')
    }
    if (!equalBytes(entry.body.swarm, this.swarmId.bytes)) {
      return new ForgedEntryError('roster entry of another swarm', 'wrong-swarm')
    }
    return undefined
  }

  private admit (entry: RosterEntry): void {
    if (this.list.length >= this.maxEntries) {
      throw new ForgedEntryError(`roster is full (${this.maxEntries} entries)`, 'too-many-entries')
    }
    const signer = entry.signer.toString()
    if (signer === this.genesis.signer.toString()) return
    const bits = this.unionOf(entry.body.parents.map(p => this.index.get(p.toString()) ?? -1))
    for (let i = 0; i < this.list.length; i++) {
      const body = this.list[i].body
      if (hasBit(bits, i) && body.type === 'add' && devicePeerId(body.device).toString() === signer) return
    }
    throw new ForgedEntryError(`roster entry signed by ${signer}, which was never added to the swarm`, 'not-a-member')
  }

  private insert (entry: RosterEntry): void {
    const i = this.list.length
    const parents = entry.body.parents.map(p => this.index.get(p.toString()) ?? -1)
    this.list.push(entry)
    this.index.set(entry.key, i)
    this.ancestors.push(this.unionOf(parents, (i >> 5) + 1))
    for (const p of parents) this.headSet.delete(p)
    this.headSet.add(i)
    this.cached = undefined
  }

  /** The bitset of `indexes` and all their ancestors. */
  private unionOf (indexes: number[], words = (this.list.length >> 5) + 1): Uint32Array {
    const bits = new Uint32Array(words)
    for (const p of indexes) {
      if (p < 0) continue
      const a = this.ancestors[p]
      for (let w = 0; w < a.length; w++) bits[w] |= a[w]
      bits[p >> 5] |= 1 << (p & 31)
    }
    return bits
  }

  private isAncestor (a: number, b: number): boolean {
    return a < b && hasBit(this.ancestors[b], a)
  }

  /** Entries this device holds that are not `theirHeads` or their ancestors: what a peer with those heads lacks. */
  missingFor (theirHeads: CID[]): RosterEntry[] {
    const known = theirHeads.map(h => this.index.get(h.toString())).filter((i): i is number => i !== undefined)
    const covered = this.unionOf(known)
    return this.list.filter((_, i) => !hasBit(covered, i))
  }

  /** The roster by the rule above; cached until the next `add`. */
  state (): RosterState {
    this.cached ??= this.compute()
    return this.cached
  }

  private compute (): RosterState {
    const order = this.order()
    const counted = new Uint8Array(this.list.length)
    const adds = new Map<string, number[]>()
    const removes = new Map<string, number[]>()
    const invites = new Map<string, RecordedInvite>()
    const inviteIndex = new Map<string, number>()
    const creator = this.genesis.signer.toString()
    adds.set(creator, [0])
    counted[0] = 1
    let commitAt = 0
    let secretCommit = this.genesis.body.commit
    let epoch = 0
    let ignored = 0

    // rule 4 over the counted entries among the ancestors of `at`
    const memberBefore = (device: string, at: number): boolean => {
      const rs = (removes.get(device) ?? []).filter(r => this.isAncestor(r, at))
      return (adds.get(device) ?? []).some(a => this.isAncestor(a, at) && rs.every(r => this.isAncestor(r, a)))
    }

    for (const i of order) {
      if (i === 0) continue
      const entry = this.list[i]
      const signer = entry.signer.toString()
      const body = entry.body
      let ok = memberBefore(signer, i) && // rule 3a
        (removes.get(signer) ?? []).every(r => this.isAncestor(r, i)) // rule 3b
      if (ok && body.type === 'add' && body.invite !== undefined) {
        const id = toHex(body.invite)
        const invite = invites.get(id)
        const at = inviteIndex.get(id)
        ok = invite !== undefined && at !== undefined && this.isAncestor(at, i) && invite.used < invite.uses
        if (ok && invite !== undefined) invite.used++
      }
      if (!ok) {
        ignored++
        continue
      }
      counted[i] = 1
      switch (body.type) {
        case 'add': push(adds, devicePeerId(body.device).toString(), i); break
        case 'remove': push(removes, devicePeerId(body.device).toString(), i); break
        case 'rotate': secretCommit = body.commit; commitAt = i; epoch++; break
        case 'invite': {
          const id = toHex(body.key)
          if (!invites.has(id)) {
            invites.set(id, { id, key: body.key, expires: body.expires, uses: body.uses, used: 0, createdBy: entry.signer })
            inviteIndex.set(id, i)
          }
          break
        }
      }
    }

    const members = new Map<string, Member>()
    for (const [device, addIndexes] of adds) {
      const rs = removes.get(device) ?? []
      const standing = addIndexes.filter(a => rs.every(r => this.isAncestor(r, a)))
      if (standing.length === 0) continue
      const last = this.list[standing[standing.length - 1]]
      const body = last.body as AddBody | GenesisBody
      members.set(device, {
        peerId: body.type === 'genesis' ? last.signer : devicePeerId(body.device),
        name: body.type === 'genesis' ? body.device : body.name,
        addedBy: last.signer,
        addedAt: last.body.ts
      })
    }
    const needsRotation = [...removes.values()].flat().some(r => r !== commitAt && !this.isAncestor(r, commitAt))
    return { members, invites, secretCommit, epoch, needsRotation, ignored }
  }

  /** Rule 2: topological order, smallest CID first among ready entries. */
  private order (): number[] {
    const n = this.list.length
    const missing = new Int32Array(n)
    const children: number[][] = Array.from({ length: n }, () => [])
    for (let i = 0; i < n; i++) {
      for (const p of this.list[i].body.parents) {
        const pi = this.index.get(p.toString()) as number
        children[pi].push(i)
        missing[i]++
      }
    }
    const heap = new MinHeap((a, b) => compareBytes(this.list[a].cid.bytes, this.list[b].cid.bytes))
    heap.push(0)
    const out: number[] = []
    while (heap.size > 0) {
      const i = heap.pop()
      out.push(i)
      for (const c of children[i]) {
        if (--missing[c] === 0) heap.push(c)
      }
    }
    return out
  }
}

function hasBit (bits: Uint32Array, i: number): boolean {
  const w = i >> 5
  return w < bits.length && ((bits[w] >>> (i & 31)) & 1) === 1
}

function push (map: Map<string, number[]>, key: string, value: number): void {
  const list = map.get(key)
  if (list === undefined) map.set(key, [value])
  else list.push(value)
}

export function toHex (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
}

class MinHeap {
  private readonly items: number[] = []
  constructor (private readonly less: (a: number, b: number) => number) {}

  get size (): number {
    return this.items.length
  }

  push (value: number): void {
    const items = this.items
    items.push(value)
    let i = items.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (this.less(items[i], items[parent]) >= 0) break
      ;[items[i], items[parent]] = [items[parent], items[i]]
      i = parent
    }
  }

  pop (): number {
    const items = this.items
    const top = items[0]
    const last = items.pop() as number
    if (items.length > 0) {
      items[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < items.length && this.less(items[l], items[m]) < 0) m = l
        if (r < items.length && this.less(items[r], items[m]) < 0) m = r
        if (m === i) break
        ;[items[i], items[m]] = [items[m], items[i]]
        i = m
      }
    }
    return top
  }
}
