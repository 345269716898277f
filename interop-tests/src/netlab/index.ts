/**
 * The NAT lab: homes behind nftables routers, a public internet and real `homecloud` daemons,
 * in network namespaces (root only; `labSkipReason()` says why it cannot run).
 *
 * @example
 *
 * ```ts
 * const lab = createLab()
 * try {
 *   const relay = new LabDevice(lab, lab.addPublicHost('relay'), { relayServer: true, dht: 'server' })
 *   const home = lab.addHome('a', { nat: 'typical', uplink: { rate: '8mbit' } })
 *   const box = new LabDevice(lab, home.addDevice('a1'), { relayClient: true, bootstrap: [...] })
 *   await relay.start(); await box.start()
 *   console.log(await box.json(['peers']))
 * } finally {
 *   lab.cleanup()
 * }
 * ```
 */
export { createLab, labSkipReason, sweepStaleLabs, Lab, Home, INTERNET_RANGE, TBF_DEFAULTS, CUT_TABLE, type Host, type HomeInit, type Uplink, type ExecResult, type CreateLabOptions } from './lab.js'
export { natRuleset, NAT_PRESETS, type NatPreset, type PortForward } from './nat.js'
export { LabDevice, HOMECLOUD_BIN, DEVICE_PORT, type DeviceOptions } from './device.js'
export { formatReport, type ReportRow } from './report.js'
export { startMiniupnpd, upnpSkipReason, Miniupnpd, MINIUPNPD, UPNP_TABLE, type StunEndpoint } from './upnp.js'
export { LabUnavailableError, LabCommandError, LabConfigError } from './errors.js'
