#!/usr/bin/env -S node --max-semi-space-size=2 --expose-gc
// The V8 flags keep the daemon's garbage collection cheap and its memory flat under bulk
// transfers, and let it trim its memory when idle (see DAEMON_NODE_FLAGS in src/child.ts).
// Committed launcher, so npm can link `homecloud` into node_modules/.bin at install time,
// before `tsc -b` has produced dist/. libp2p 3 needs Node >= 22: say so instead of crashing.
const major = Number(process.versions.node.split('.')[0])
if (major < 22) {
  process.stderr.write(`homecloud needs Node.js 22 or newer (this is ${process.version}); run it through npm (npx homecloud) to use the project's Node 24\n`)
  process.exit(1)
}
await import('../dist/src/bin.js')
