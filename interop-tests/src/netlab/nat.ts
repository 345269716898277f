/**
 * Home router presets as nftables rulesets (family `inet`, which miniupnpd also needs).
 *
 * Every preset is a stateful firewall that DROPS unsolicited packets from the WAN, to the
 * router and through it: a router that answers them (RST, ICMP) breaks port preservation
 * (FACTS.md). Only what the LAN started (conntrack established/related) comes back in.
 * - `typical`: port-preserving masquerade (Linux keeps the source port when it is free),
 *   the usual home router;
 * - `symmetric`: `masquerade random,fully-random`, a new random port for every flow
 *   (carrier-grade or strict routers);
 * - `forward`: `typical` plus static port forwards (`Home.forwardPort`);
 * - `upnp`: `typical` that also forwards what the router's own DNAT rules send to the LAN: the
 *   mappings miniupnpd adds in its own table (`startMiniupnpd` in upnp.ts).
 */
export type NatPreset = 'typical' | 'symmetric' | 'forward' | 'upnp'

export const NAT_PRESETS: readonly NatPreset[] = ['typical', 'symmetric', 'forward', 'upnp']

/** Interface names inside a router namespace. */
export const WAN_IF = 'wan0'
export const LAN_IF = 'lan0'
/** Router-side names of the LAN ports (`d0`, `d1`, …) enslaved to the LAN bridge. */
export const LAN_PORT_PREFIX = 'd'

/** Name of the lab's nftables table in each router. */
export const NAT_TABLE = 'hclab'

export interface PortForward {
  protocol: 'tcp' | 'udp'
  port: number
  /** LAN address of the device the port goes to. */
  to: string
}

/** The whole ruleset of a router (loaded with `nft -f -`, replacing the lab table). */
export function natRuleset (preset: NatPreset, forwards: readonly PortForward[] = []): string {
  const masquerade = preset === 'symmetric' ? 'masquerade random,fully-random' : 'masquerade'
  const dnat = forwards.map(f => `    iifname "${WAN_IF}" ${f.protocol} dport ${f.port} dnat ip to ${f.to}:${f.port}`)
  const accept = forwards.map(f => `    iifname "${WAN_IF}" oifname "${LAN_IF}" ip daddr ${f.to} ${f.protocol} dport ${f.port} ct status dnat accept`)

  return [
    `table inet ${NAT_TABLE} {`,
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    ...dnat,
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    oifname "${WAN_IF}" ${masquerade}`,
    '  }',
    '  chain input {',
    '    type filter hook input priority filter; policy drop;',
    '    ct state established,related accept',
    '    iifname "lo" accept',
    `    iifname "${LAN_IF}" accept`,
    '  }',
    '  chain forward {',
    '    type filter hook forward priority filter; policy drop;',
    '    ct state established,related accept',
    `    iifname "${LAN_IF}" oifname "${WAN_IF}" accept`,
    ...accept,
    ...(preset === 'upnp' ? [`    iifname "${WAN_IF}" oifname "${LAN_IF}" ct status dnat accept`] : []),
    '  }',
    '}',
    ''
  ].join('\n')
}
