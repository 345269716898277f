import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { describe, it } from 'node:test'
import { promisify } from 'node:util'

/**
 * Every module a fresh process loads when it imports `entry`, in order (a resolve hook
 * records each one: ES modules and CommonJS alike).
 */
async function modulesLoadedBy (entry: URL): Promise<string[]> {
  const script = `
    import { registerHooks } from 'node:module'
    const seen = []
    registerHooks({ resolve (specifier, context, next) { const r = next(specifier, context); seen.push(r.url); return r } })
    await import(${JSON.stringify(entry.href)})
    process.stdout.write(JSON.stringify(seen))
  `
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { timeout: 60_000, maxBuffer: 16 << 20 })
  return JSON.parse(stdout) as string[]
}

describe('what importing the package loads', () => {
  // every daemon imports the package: modules for features that are off or CLI-only cost it memory (issue 5 f)
  it('loads neither the UPnP client (nat-port-mapper, xml2js) nor the QR code renderer (qrcode, pngjs)', { timeout: 60_000 }, async () => {
    const loaded = await modulesLoadedBy(new URL('../src/index.js', import.meta.url))
    assert.ok(loaded.some(url => url.includes('/node_modules/libp2p/')), `the hook saw libp2p load (${loaded.length} modules)`)
    const unwanted = loaded.filter(url => /\/node_modules\/(@achingbrain\/nat-port-mapper|xml2js|qrcode|pngjs)\//.test(url))
    assert.deepEqual(unwanted, [])
  })
})
