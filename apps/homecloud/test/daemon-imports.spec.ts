import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { describe, it } from 'node:test'
import { promisify } from 'node:util'

/** Does a fresh process that runs `imports` (ES module source) load Node's internal undici? */
async function loadsUndici (imports: string): Promise<boolean> {
  const script = `${imports}\nprocess.stdout.write(JSON.stringify(process.moduleLoadList.some(m => m.includes('internal/deps/undici'))))`
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { timeout: 60_000 })
  return JSON.parse(stdout) as boolean
}

describe('what the daemon\'s modules load', () => {
  // Node's internal undici (fetch, WebSocket) is ~2.3 MiB of V8 heap that no daemon uses (issue 5 f)
  it('not Node\'s internal undici, which any ES import of node:http loads', { timeout: 60_000 }, async () => {
    assert.equal(await loadsUndici("process.getBuiltinModule('node:http').createServer()"), false, 'node:http itself does not')
    assert.equal(await loadsUndici("import 'node:http'"), true, 'any ES import of node:http does (the trap this test guards)')
    const modules = ['../src/daemon.js', '../src/api-client.js', '../src/index.js'].map(path => new URL(path, import.meta.url).href)
    assert.equal(await loadsUndici(modules.map(url => `await import(${JSON.stringify(url)})`).join('\n')), false)
  })
})
