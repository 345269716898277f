import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it, before } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createEntry, decodeEntry, ForgedEntryError, RosterLog, secretCommit } from '../src/index.js'
import type { EntryDraft, RosterEntry } from '../src/index.js'
import type { PrivateKey } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

let A: PrivateKey, B: PrivateKey, C: PrivateKey, D: PrivateKey
const id = (k: PrivateKey): string => peerIdFromPrivateKey(k).toString()
const mh = (k: PrivateKey): Uint8Array => peerIdFromPrivateKey(k).toMultihash().bytes
let clock = 1_700_000_000_000

async function genesis (key: PrivateKey, name = 'family'): Promise<RosterEntry> {
  return createEntry({
    type: 'genesis', swarm: new Uint8Array(0), parents: [], name, device: 'creator',
    nonce: new Uint8Array(randomBytes(16)), commit: secretCommit(new Uint8Array(32))
  }, key, clock++)
}

type Draft = EntryDraft extends infer T ? T extends unknown ? Omit<T, 'swarm' | 'parents'> : never : never

/** Sign an entry of `log`'s swarm on top of `parents` (default: the log's heads). */
async function make (log: RosterLog, key: PrivateKey, draft: Draft, parents?: CID[]): Promise<RosterEntry> {
  return createEntry({ ...draft, swarm: log.swarmId.bytes, parents: parents ?? log.heads() } as EntryDraft, key, clock++)
}

function add (log: RosterLog, ...entries: RosterEntry[]): void {
  const result = log.add(entries)
  assert.deepEqual(result.rejected, [], 'no entry should be rejected')
}

const members = (log: RosterLog): string[] => [...log.state().members.keys()].sort()

/** Two replicas of a log with the same entries so far. */
function fork (log: RosterLog): RosterLog {
  const copy = new RosterLog(log.genesis)
  add(copy, ...log.entries())
  return copy
}

describe('roster', () => {
  before(async () => {
    [A, B, C, D] = await Promise.all([1, 2, 3, 4].map(async () => generateKeyPair('Ed25519')))
  })

  it('starts with the creator; the swarm id is the genesis CID; members can add members', async () => {
    const g = await genesis(A)
    const log = new RosterLog(g)
    assert.equal(log.swarmId.toString(), g.key)
    assert.deepEqual(members(log), [id(A)])
    add(log, await make(log, A, { type: 'add', device: mh(B), name: 'b' }))
    add(log, await make(log, B, { type: 'add', device: mh(C), name: 'c' }))
    assert.deepEqual(members(log), [id(A), id(B), id(C)].sort())
    assert.equal(log.state().members.get(id(C))?.addedBy.toString(), id(B))
    assert.equal(log.state().members.get(id(C))?.name, 'c')
  })

  it('round-trips an entry through bytes and verifies it', async () => {
    const log = new RosterLog(await genesis(A))
    const e = await make(log, A, { type: 'add', device: mh(B), name: 'b' })
    const decoded = await decodeEntry(e.bytes)
    assert.equal(decoded.key, e.key)
    assert.equal(decoded.signer.toString(), id(A))
  })

  describe('forged entries are rejected with a reason and change nothing', () => {
    it('bad signature (tampered body or signature)', async () => {
      const log = new RosterLog(await genesis(A))
      const e = await make(log, A, { type: 'add', device: mh(B), name: 'b' })
      const block = dagCbor.decode<{ body: Record<string, unknown>, sig: Uint8Array }>(e.bytes)
      const tamperedBody = dagCbor.encode({ ...block, body: { ...block.body, name: 'mallory' } })
      const sig = block.sig.slice()
      sig[0] ^= 1
      const tamperedSig = dagCbor.encode({ ...block, sig })
      for (const bytes of [tamperedBody, tamperedSig]) {
        await assert.rejects(decodeEntry(bytes), (err: ForgedEntryError) => err.code === 'ERR_FORGED_ENTRY' && err.reason === 'bad-signature')
      }
    })

    it('malformed: not cbor, unknown fields, unknown type, genesis with parents', async () => {
      const log = new RosterLog(await genesis(A))
      const e = await make(log, A, { type: 'add', device: mh(B), name: 'b' })
      const block = dagCbor.decode<{ body: Record<string, unknown>, sig: Uint8Array }>(e.bytes)
      const cases = [
        new Uint8Array(randomBytes(40)),
        dagCbor.encode({ ...block, body: { ...block.body, extra: 1 } }),
        dagCbor.encode({ ...block, body: { ...block.body, type: 'promote' } }),
        dagCbor.encode({ ...block, body: { ...block.body, parents: [] } }),
        dagCbor.encode({ body: block.body, sig: block.sig, more: 1 }),
        new Uint8Array(4096)
      ]
      for (const bytes of cases) {
        await assert.rejects(decodeEntry(bytes), (err: ForgedEntryError) => err.reason === 'malformed')
      }
    })

    it('signer not a member, wrong swarm, missing parents, second genesis', async () => {
      const log = new RosterLog(await genesis(A))
      const other = new RosterLog(await genesis(B, 'other'))
      const before = log.heads().map(String)
      const byOutsider = await make(log, D, { type: 'add', device: mh(D), name: 'd' })
      const otherSwarm = await make(other, B, { type: 'add', device: mh(C), name: 'c' })
      const orphanParent = await make(log, A, { type: 'add', device: mh(B), name: 'b' })
      const orphan = await make(log, A, { type: 'add', device: mh(C), name: 'c' }, [orphanParent.cid])
      const result = log.add([byOutsider, otherSwarm, orphan, other.genesis])
      assert.deepEqual(result.added, [])
      assert.deepEqual(result.rejected.map(e => e.reason).sort(), ['duplicate-genesis', 'missing-parents', 'not-a-member', 'wrong-swarm'])
      assert.equal(log.size, 1)
      assert.deepEqual(log.heads().map(String), before)
      assert.deepEqual(members(log), [id(A)])
    })

    it('a removed device cannot sign its way back: its later entries are refused at admission or not counted', async () => {
      const log = new RosterLog(await genesis(A))
      add(log, await make(log, A, { type: 'add', device: mh(B), name: 'b' }))
      add(log, await make(log, A, { type: 'remove', device: mh(B) }))
      // B builds on the current heads (it knows it was removed) and tries to add D
      add(log, await make(log, B, { type: 'add', device: mh(D), name: 'd' }))
      assert.deepEqual(members(log), [id(A)])
      assert.equal(log.state().ignored, 1)
    })
  })

  it('remove wins over a concurrent add of the same device, in either order of arrival', async () => {
    const base = new RosterLog(await genesis(A))
    add(base, await make(base, A, { type: 'add', device: mh(B), name: 'b' }))
    add(base, await make(base, A, { type: 'add', device: mh(C), name: 'c' }))
    const heads = base.heads()
    const remove = await make(base, A, { type: 'remove', device: mh(C) }, heads)
    const readd = await make(base, B, { type: 'add', device: mh(C), name: 'c again' }, heads)
    const one = fork(base)
    const two = fork(base)
    add(one, remove); add(one, readd)
    add(two, readd); add(two, remove)
    assert.deepEqual(members(one), [id(A), id(B)].sort())
    assert.deepEqual(members(two), members(one))
    // an add made after seeing the removal re-admits the device
    add(one, await make(one, B, { type: 'add', device: mh(C), name: 'c back' }))
    assert.ok(one.state().members.has(id(C)))
    assert.equal(one.state().members.get(id(C))?.name, 'c back')
  })

  it('concurrent adds and removes on two devices converge to the same roster', async () => {
    const base = new RosterLog(await genesis(A))
    add(base, await make(base, A, { type: 'add', device: mh(B), name: 'b' }))
    add(base, await make(base, A, { type: 'add', device: mh(C), name: 'c' }))
    const onA = fork(base)
    const onB = fork(base)
    // A removes C and adds D; meanwhile B removes A and adds D under another name
    add(onA, await make(onA, A, { type: 'remove', device: mh(C) }))
    add(onA, await make(onA, A, { type: 'add', device: mh(D), name: 'd-by-a' }))
    add(onB, await make(onB, B, { type: 'remove', device: mh(A) }))
    add(onB, await make(onB, B, { type: 'add', device: mh(D), name: 'd-by-b' }))
    const aEntries = onA.entries().slice(base.size)
    const bEntries = onB.entries().slice(base.size)
    add(onA, ...bEntries)
    add(onB, ...aEntries)
    assert.deepEqual(members(onA), members(onB))
    assert.deepEqual([...onA.state().members.values()].map(m => m.name).sort(), [...onB.state().members.values()].map(m => m.name).sort())
    assert.deepEqual(onA.state().secretCommit, onB.state().secretCommit)
    // A and B removed each other's side concurrently: exactly one of them survives
    const survivors = [id(A), id(B)].filter(p => onA.state().members.has(p))
    assert.equal(survivors.length, 1)
    // and both converge again after each adds a merge entry on top
    const merge = await make(onA, onA.state().members.has(id(A)) ? A : B, { type: 'rotate', commit: secretCommit(new Uint8Array(32).fill(7)) })
    add(onA, merge)
    add(onB, merge)
    assert.deepEqual(onA.state(), onB.state())
  })

  it('random concurrent histories converge regardless of delivery order', async () => {
    const keys = [A, B, C]
    const base = new RosterLog(await genesis(A))
    add(base, await make(base, A, { type: 'add', device: mh(B), name: 'b' }))
    add(base, await make(base, A, { type: 'add', device: mh(C), name: 'c' }))
    const replicas = keys.map(() => fork(base))
    let seed = 42
    const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n }
    for (let step = 0; step < 30; step++) {
      const r = rnd(3)
      const log = replicas[r]
      const key = keys[r]
      if (!log.state().members.has(id(key))) continue
      const target = keys[rnd(3)]
      const draft: Draft = rnd(2) === 0 ? { type: 'add', device: mh(target), name: `n${step}` } : { type: 'remove', device: mh(target) }
      add(log, await make(log, key, draft))
      if (rnd(4) === 0) { // occasional partial sync between two replicas
        const other = replicas[rnd(3)]
        add(other, ...log.missingFor(other.heads()))
      }
    }
    const all = replicas.flatMap(r => [...r.entries()])
    const forward = new RosterLog(base.genesis)
    const backward = new RosterLog(base.genesis)
    add(forward, ...all)
    add(backward, ...[...all].reverse())
    assert.deepEqual(forward.state(), backward.state())
    for (const replica of replicas) {
      add(replica, ...all)
      assert.deepEqual(replica.state(), forward.state())
    }
  })

  it('counts invite uses; a surplus concurrent use does not count', async () => {
    const log = new RosterLog(await genesis(A))
    add(log, await make(log, A, { type: 'add', device: mh(B), name: 'b' }))
    const key = new Uint8Array(randomBytes(32))
    add(log, await make(log, A, { type: 'invite', key, expires: clock + 1000, uses: 1 }))
    const heads = log.heads()
    const viaA = await make(log, A, { type: 'add', device: mh(C), name: 'c', invite: key }, heads)
    const viaB = await make(log, B, { type: 'add', device: mh(D), name: 'd', invite: key }, heads)
    add(log, viaA, viaB)
    const invite = [...log.state().invites.values()][0]
    assert.equal(invite.used, 1)
    assert.equal([id(C), id(D)].filter(p => log.state().members.has(p)).length, 1)
  })

  it('asks for a rotation after a removal until a rotate follows it', async () => {
    const log = new RosterLog(await genesis(A))
    add(log, await make(log, A, { type: 'add', device: mh(B), name: 'b' }))
    assert.equal(log.state().needsRotation, false)
    add(log, await make(log, A, { type: 'remove', device: mh(B) }))
    assert.equal(log.state().needsRotation, true)
    const commit = secretCommit(new Uint8Array(32).fill(1))
    add(log, await make(log, A, { type: 'rotate', commit }))
    assert.equal(log.state().needsRotation, false)
    assert.deepEqual(log.state().secretCommit, commit)
    assert.equal(log.state().epoch, 1)
  })

  it('missingFor returns exactly what a replica with those heads lacks, parents first', async () => {
    const log = new RosterLog(await genesis(A))
    add(log, await make(log, A, { type: 'add', device: mh(B), name: 'b' }))
    const copy = fork(log)
    const e1 = await make(log, A, { type: 'add', device: mh(C), name: 'c' })
    add(log, e1)
    const e2 = await make(log, A, { type: 'remove', device: mh(C) })
    add(log, e2)
    assert.deepEqual(log.missingFor(copy.heads()).map(e => e.key), [e1.key, e2.key])
    assert.deepEqual(copy.missingFor(copy.heads()), [])
    // heads it does not know are not subtracted: a duplicate costs bytes, never correctness
    assert.equal(copy.missingFor(log.heads()).length, copy.size)
    assert.equal(log.missingFor([]).length, log.size)
  })

  it('refuses entries beyond the size cap', async () => {
    const log = new RosterLog(await genesis(A), { maxEntries: 2 })
    add(log, await make(log, A, { type: 'add', device: mh(B), name: 'b' }))
    const result = log.add([await make(log, A, { type: 'add', device: mh(C), name: 'c' })])
    assert.equal(result.rejected[0]?.reason, 'too-many-entries')
    assert.equal(log.size, 2)
  })
})
