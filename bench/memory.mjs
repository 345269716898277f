// Memory of the fetching daemon (issue 3): `homecloud get` of 4 GiB between two real
// daemons on loopback (bench/get.mjs without its baseline), and the fetching daemon's
// peak RSS (VmHWM from /proc/<pid>/status) against the goal of 250 MiB. Needs about
// 2 × SIZE + 0.5 GiB free under bench/.work (checked first); everything is removed after.
//
// Usage: node bench/memory.mjs [SIZE=4G]
import { RSS_GOAL, runGetBenchmark } from './get.mjs'
import { MiB, parseSize } from './util.mjs'

const result = await runGetBenchmark({ size: parseSize(process.argv[2], 4096 * MiB), rounds: 1, baseline: false, label: 'memory' })
process.exitCode = result.peak <= RSS_GOAL ? 0 : 1
