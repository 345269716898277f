import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { removeDir, tempDir } from '@homecloud/test-support'
import { runCli } from '../src/child.js'
import { COMMANDS } from '../src/cli.js'

/** The CLI as a real process, for everything that needs no daemon. */
describe('homecloud CLI', async () => {
  const base = await tempDir('homecloud-cli-')
  after(async () => { await removeDir(base) })

  it('lists every command in --help and exits 0', async () => {
    const { code, stdout, stderr } = await runCli(['--help'])
    assert.equal(code, 0)
    assert.equal(stderr, '')
    for (const command of COMMANDS) {
      assert.match(stdout, new RegExp(`^  ${command.name} `, 'm'))
    }
  })

  it('has --help for every command', async () => {
    for (const command of COMMANDS) {
      const { code, stdout } = await runCli([command.name, '--help'])
      assert.equal(code, 0, command.name)
      assert.ok(stdout.startsWith(`usage: homecloud ${command.name}`), stdout)
    }
    const { code, stdout } = await runCli(['help', 'start'])
    assert.equal(code, 0)
    assert.match(stdout, /--relay-server/)
    assert.match(stdout, /--no-relay-server/)
  })

  it('exits 2 with one line and a hint on usage errors', async () => {
    const cases: Array<[string[], RegExp]> = [
      [[], /no command given/],
      [['frobnicate'], /unknown command "frobnicate"/],
      [['id', '--frob'], /Unknown option '--frob'/],
      [['connect'], /missing MULTIADDR/],
      [['connect', 'not-a-multiaddr'], /is not a multiaddr/],
      [['id', 'extra'], /unexpected argument "extra"/],
      [['start', '--api', 'localhost'], /--api must be HOST:PORT/],
      [['start', '--listen', 'tcp/4001'], /--listen "tcp\/4001" is not a multiaddr/],
      [['start', '--public-range', '10.77.0.1/24'], /--public-range: "10\.77\.0\.1\/24" has host bits set/],
      [['start', '--relay-server', '--no-relay-server'], /--relay-server and --no-relay-server cannot be used together/],
      [['init', '--name'], /argument missing/]
    ]
    for (const [args, message] of cases) {
      const { code, stdout, stderr } = await runCli(['--repo', join(base, 'usage'), ...args])
      assert.equal(code, 2, args.join(' '))
      assert.equal(stdout, '')
      const lines = stderr.trimEnd().split('\n')
      assert.equal(lines.length, 2, stderr)
      assert.match(lines[0], /^homecloud: /)
      assert.match(lines[0], message)
      assert.match(lines[1], /--help/)
    }
  })

  it('init creates a repo and refuses to run twice', async () => {
    const repo = join(base, 'box')
    const first = await runCli(['--repo', repo, 'init', '--name', 'box'])
    assert.equal(first.code, 0, first.stderr)
    assert.match(first.stdout, /peer id\s+12D3KooW/)
    const config = JSON.parse(await readFile(join(repo, 'config.json'), 'utf8')) as { name: string }
    assert.equal(config.name, 'box')
    const second = await runCli(['--repo', repo, 'init'])
    assert.equal(second.code, 1)
    assert.match(second.stderr, /refusing to overwrite a repo/)
    assert.equal(second.stderr.trimEnd().split('\n').length, 1)
  })

  it('uses $HOMECLOUD_REPO when there is no --repo', async () => {
    const repo = join(base, 'from-env')
    const { code } = await runCli(['init', '--name', 'env-box'], { env: { HOMECLOUD_REPO: repo } })
    assert.equal(code, 0)
    assert.equal((JSON.parse(await readFile(join(repo, 'config.json'), 'utf8')) as { name: string }).name, 'env-box')
  })

  it('says plainly that no daemon runs, and exits 1', async () => {
    const repo = join(base, 'box')
    for (const args of [['id'], ['status', '--json'], ['peers'], ['connect', '/ip4/127.0.0.1/tcp/4001']]) {
      const { code, stdout, stderr } = await runCli(['--repo', repo, ...args])
      assert.equal(code, 1, args.join(' '))
      assert.equal(stdout, '')
      assert.equal(stderr, `homecloud: no daemon is running for repo ${repo}: start it with \`homecloud start\`\n`)
    }
  })

  it('refuses to start without a repo', async () => {
    const repo = join(base, 'missing')
    const { code, stderr } = await runCli(['--repo', repo, 'start', '--no-mdns', '--no-upnp'])
    assert.equal(code, 1)
    assert.match(stderr, /no repo at .*homecloud init/)
  })

  it('adds the stack with --debug', async () => {
    const { code, stderr } = await runCli(['--repo', join(base, 'box'), 'id', '--debug'])
    assert.equal(code, 1)
    assert.match(stderr, /^homecloud: no daemon is running/)
    assert.match(stderr, /\n\s+at /)
  })
})
