/**
 * @packageDocumentation
 *
 * Tests that run real `homecloud` daemons. `netlab` builds the NAT lab (network namespaces,
 * nftables routers, capped uplinks) they run in.
 */
export * from './netlab/index.js'
