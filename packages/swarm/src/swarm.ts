/**
 * One private swarm as this device holds it: the roster log, the known secrets, the name, and
 * their persistence. Every change goes through `exclusive` so entries are appended, stored and
 * acted on one at a time.
 */
import { createHash, randomBytes } from 'node:crypto'
import { MAX_ENTRY_PARENTS, SECRET_BYTES, SECRET_COMMIT_DOMAIN } from './constants.js'
import { createEntry, decodeEntries, equalBytes } from './entry.js'
import { ForgedEntryError, JoinFailedError } from './errors.js'
import { RosterLog, toHex } from './roster.js'
import type { EntryDraft, RosterEntry } from './entry.js'
import type { SwarmRecords, StoredSwarm } from './datastore.js'
import type { AddResult, RosterState } from './roster.js'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

/** The public commitment to a secret that roster entries carry. */
export function secretCommit (secret: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(SECRET_COMMIT_DOMAIN).update(secret).digest())
}

export function newSecret (): Uint8Array {
  return new Uint8Array(randomBytes(SECRET_BYTES))
}

export class PrivateSwarm {
  readonly id: string
  readonly cid: CID
  readonly name: string
  readonly log: RosterLog
  private readonly secrets = new Map<string, Uint8Array>()
  private tail: Promise<unknown> = Promise.resolve()

  constructor (log: RosterLog, private readonly records: SwarmRecords, secrets: Iterable<Uint8Array> = []) {
    this.log = log
    this.cid = log.swarmId
    this.id = log.swarmId.toString()
    this.name = log.genesis.body.name
    for (const s of secrets) this.secrets.set(toHex(secretCommit(s)), s)
  }

  /** A new swarm with this device as its only member. */
  static async create (name: string, deviceName: string, privateKey: PrivateKey, now: number, records: SwarmRecords): Promise<PrivateSwarm> {
    const secret = newSecret()
    const genesis = await createEntry({
      type: 'genesis', swarm: new Uint8Array(0), parents: [], name, device: deviceName, nonce: new Uint8Array(randomBytes(16)), commit: secretCommit(secret)
    }, privateKey, now)
    const swarm = new PrivateSwarm(new RosterLog(genesis), records, [secret])
    await records.saveEntry(swarm.id, genesis.key, genesis.bytes)
    await swarm.saveMeta()
    return swarm
  }

  /** Load a stored swarm, verifying every entry again. */
  static async load (meta: StoredSwarm, entryBytes: Uint8Array[], records: SwarmRecords): Promise<{ swarm: PrivateSwarm, rejected: ForgedEntryError[] }> {
    const { entries, rejected } = await decodeEntries(entryBytes)
    const genesis = entries.find(e => e.key === meta.id)
    if (genesis === undefined) throw new ForgedEntryError(`stored swarm ${meta.id} has no genesis entry`, 'missing-parents')
    const log = new RosterLog(genesis)
    rejected.push(...log.add(entries).rejected)
    return { swarm: new PrivateSwarm(log, records, Object.values(meta.secrets)), rejected }
  }

  /**
   * The swarm a member granted this device (`self`) at join: every entry verified, this device
   * on the roster, the secret the one the roster commits to; then stored.
   */
  static async fromGrant (id: CID, secret: Uint8Array, entryBytes: Uint8Array[], self: PeerId, records: SwarmRecords): Promise<{ swarm: PrivateSwarm, rejected: ForgedEntryError[] }> {
    const { entries, rejected } = await decodeEntries(entryBytes)
    const genesis = entries.find(e => e.key === id.toString())
    if (genesis === undefined) throw new JoinFailedError('the member sent no genesis entry for the swarm')
    const log = new RosterLog(genesis)
    rejected.push(...log.add(entries).rejected)
    if (!log.state().members.has(self.toString())) throw new JoinFailedError('the member did not add this device to the roster')
    if (!equalBytes(secretCommit(secret), log.state().secretCommit)) throw new JoinFailedError('the secret does not match the roster')
    const swarm = new PrivateSwarm(log, records, [secret])
    // entries before meta: a swarm without meta is an interrupted join (datastore.ts)
    for (const entry of log.entries()) await records.saveEntry(swarm.id, entry.key, entry.bytes)
    await swarm.saveMeta()
    return { swarm, rejected }
  }

  get state (): RosterState {
    return this.log.state()
  }

  /** The current secret, when this device holds it. */
  get secret (): Uint8Array | undefined {
    return this.secrets.get(toHex(this.state.secretCommit))
  }

  isMember (peer: PeerId): boolean {
    return this.state.members.has(peer.toString())
  }

  /** Run `fn` after every earlier change of this swarm has finished. */
  async exclusive<T> (fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn)
    this.tail = run.catch(() => {})
    return run
  }

  /** Sign an entry on top of the current heads, store it and return it. Call inside `exclusive`. */
  async append (draft: DistributiveOmitParents, privateKey: PrivateKey, now: number): Promise<RosterEntry> {
    const entry = await createEntry({ ...draft, swarm: this.cid.bytes, parents: this.log.heads().slice(0, MAX_ENTRY_PARENTS) } as EntryDraft, privateKey, now)
    const result = this.log.add([entry])
    if (result.rejected.length > 0) throw result.rejected[0]
    await this.records.saveEntry(this.id, entry.key, entry.bytes)
    return entry
  }

  /** Replace the secret: a new one, committed to by a signed `rotate` entry. Call inside `exclusive`. */
  async rotate (privateKey: PrivateKey, now: number): Promise<RosterEntry> {
    const secret = newSecret()
    const entry = await this.append({ type: 'rotate', commit: secretCommit(secret) }, privateKey, now)
    this.secrets.set(toHex(secretCommit(secret)), secret)
    await this.pruneSecrets()
    return entry
  }

  /** Admit entries received from a member and store the new ones. Call inside `exclusive`. */
  async ingest (entries: RosterEntry[]): Promise<AddResult> {
    const result = this.log.add(entries)
    for (const entry of result.added) await this.records.saveEntry(this.id, entry.key, entry.bytes)
    if (result.added.length > 0) await this.pruneSecrets()
    return result
  }

  /** Keep `secret` if it is the one the roster currently commits to; true if it was new. */
  async acceptSecret (secret: Uint8Array): Promise<boolean> {
    const commit = secretCommit(secret)
    if (!equalBytes(commit, this.state.secretCommit) || this.secrets.has(toHex(commit))) return false
    this.secrets.set(toHex(commit), secret)
    await this.pruneSecrets()
    return true
  }

  /** Once the current secret is known, older ones are dropped: nothing needs them. */
  private async pruneSecrets (): Promise<void> {
    const current = toHex(this.state.secretCommit)
    if (this.secrets.has(current)) {
      for (const key of [...this.secrets.keys()]) if (key !== current) this.secrets.delete(key)
    }
    await this.saveMeta()
  }

  async saveMeta (): Promise<void> {
    await this.records.saveMeta({ id: this.id, name: this.name, secrets: Object.fromEntries(this.secrets) })
  }
}

/** An entry draft without `swarm` and `parents`, which `append` fills in. */
export type DistributiveOmitParents = EntryDraft extends infer T ? T extends unknown ? Omit<T, 'swarm' | 'parents'> : never : never
