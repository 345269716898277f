// Bytes on the wire per system, from nftables counters on loopback.
//
// Why this method: both systems' instances share 127.0.0.1, so per-interface counters
// (/proc/net/dev) mix them, and each system's own byte counters (Syncthing's REST totals,
// a daemon's stats) count different layers (before/after TLS, Noise, yamux framing).
// An nftables rule in the OUTPUT hook sees every packet a local process sends exactly
// once (loopback packets then come back through INPUT, which we do not count), so a
// counter matching "TCP source or destination port is one of this system's two listen
// ports" counts both directions of every connection between the pair, and nothing else:
// GUI/REST/control-API ports are different ports. Bytes are IP packet lengths as the
// kernel hands them to lo: TLS/Noise, framing, TCP/IP headers and ACKs included (lo uses
// 64 KiB GSO packets, so a bulk stream carries one header per ~64 KiB, as with TSO on a NIC).
import { execFileSync } from 'node:child_process'

function nft (...args) {
  return execFileSync('nft', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

/** A table of our own (named after our pid) with one counter per system. */
export function createWireCounters () {
  const table = `hcbench_vs_st_${process.pid}`
  nft('add', 'table', 'inet', table)
  nft('add', 'chain', 'inet', table, 'out', '{ type filter hook output priority 0 ; policy accept ; }')
  let removed = false
  return {
    /** Counts TCP packets from or to any of `ports` under `name`. */
    add (name, ports) {
      const set = `{ ${ports.join(', ')} }`
      nft('add', 'counter', 'inet', table, name)
      // `accept` ends this chain only (other tables still see the packet): a packet between
      // two listen ports would otherwise be counted twice
      nft('add', 'rule', 'inet', table, 'out', 'tcp', 'sport', set, 'counter', 'name', name, 'accept')
      nft('add', 'rule', 'inet', table, 'out', 'tcp', 'dport', set, 'counter', 'name', name, 'accept')
    },
    /** Bytes counted so far under `name`. */
    bytes (name) {
      const answer = JSON.parse(nft('-j', 'list', 'counter', 'inet', table, name))
      const counter = answer.nftables.find(item => item.counter != null)?.counter
      if (counter == null) throw new Error(`no nft counter ${name}`)
      return counter.bytes
    },
    /** Synchronous, so it can run from an exit handler. */
    remove () {
      if (removed) return
      removed = true
      try { nft('delete', 'table', 'inet', table) } catch {}
    }
  }
}
