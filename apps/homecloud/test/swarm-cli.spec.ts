import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { removeDir, tempDir } from '@homecloud/test-support'
import { runCli } from '../src/child.js'
import { formatMembers, parseExpiry, parseUses, swarm } from '../src/commands/swarm.js'

/** `homecloud swarm` without a daemon: help, usage errors, parsing and output. */
describe('homecloud swarm: command line', async () => {
  const base = await tempDir('homecloud-swarm-cli-')
  after(async () => { await removeDir(base) })

  it('has --help for the group and every subcommand, and `help swarm SUB`', async () => {
    const group = await runCli(['swarm', '--help'])
    assert.equal(group.code, 0)
    for (const sub of swarm.subcommands ?? []) {
      assert.match(group.stdout, new RegExp(`^  ${sub.name} `, 'm'))
      const { code, stdout } = await runCli(['swarm', sub.name, '--help'])
      assert.equal(code, 0, sub.name)
      assert.ok(stdout.startsWith(`usage: homecloud swarm ${sub.name}`), stdout)
    }
    const { code, stdout } = await runCli(['help', 'swarm', 'invite'])
    assert.equal(code, 0)
    assert.match(stdout, /--expires DURATION/)
  })

  it('exits 2 with one line and a hint on usage errors, before looking for a daemon', async () => {
    const repo = join(base, 'no-repo')
    const cases: Array<[string[], string]> = [
      [['swarm'], 'missing subcommand: one of create, invite, join, list, members, remove, leave'],
      [['swarm', 'frob'], 'unknown subcommand "frob" of swarm: one of create, invite, join, list, members, remove, leave'],
      [['swarm', 'create'], 'missing NAME'],
      [['swarm', 'remove', 'family'], 'missing DEVICE'],
      [['swarm', 'list', 'extra'], 'unexpected argument "extra"'],
      [['swarm', 'invite', 'family', '--expires', 'soon'], '--expires "soon" is not a duration like 30m, 24h or 7d'],
      [['swarm', 'invite', 'family', '--uses', '0'], '--uses "0" is not a positive whole number']
    ]
    for (const [args, message] of cases) {
      const { code, stdout, stderr } = await runCli(['--repo', repo, ...args])
      assert.equal(code, 2, args.join(' '))
      assert.equal(stdout, '')
      const [first, hint] = stderr.split('\n')
      assert.equal(first, `homecloud: ${message}`)
      assert.match(hint, /^run `homecloud swarm( \w+)? --help` for usage$/)
    }
  })

  it('exits 1 with one line when no daemon runs', async () => {
    const { code, stderr } = await runCli(['--repo', join(base, 'none'), 'swarm', 'list'])
    assert.equal(code, 1)
    assert.match(stderr, /^homecloud: no daemon is running for repo .*\n$/)
  })

  it('parses durations and uses', () => {
    assert.equal(parseExpiry('90s'), 90_000)
    assert.equal(parseExpiry('15m'), 900_000)
    assert.equal(parseExpiry('24h'), 86_400_000)
    assert.equal(parseExpiry('7d'), 604_800_000)
    for (const bad of ['', '0h', '24', 'h', '1.5h', '-1h', '24 hours', '1w']) {
      assert.throws(() => parseExpiry(bad), { code: 'ERR_USAGE' }, bad)
    }
    assert.equal(parseUses('3'), 3)
    for (const bad of ['0', '-1', '1.5', 'x', '']) assert.throws(() => parseUses(bad), { code: 'ERR_USAGE' }, bad)
  })

  it('prints members as a table: name, peer id, online, path, last seen', () => {
    const text = formatMembers([
      { peerId: '12D3KooWA', name: 'box-a', addedBy: '12D3KooWA', self: true, online: true },
      { peerId: '12D3KooWB', name: 'pi\u001b[31m', addedBy: '12D3KooWA', self: false, online: true, path: 'relayed', lastSeen: 1000 },
      { peerId: '12D3KooWC', name: 'laptop', addedBy: '12D3KooWA', self: false, online: false, lastSeen: 1000 },
      { peerId: '12D3KooWD', name: 'new', addedBy: '12D3KooWA', self: false, online: false }
    ], 1000 + 3_720_000)
    assert.deepEqual(text.split('\n'), [
      'NAME                 PEER ID    ONLINE  PATH     LAST SEEN',
      'box-a (this device)  12D3KooWA  yes     -        now',
      'pi?[31m              12D3KooWB  yes     relayed  now',
      'laptop               12D3KooWC  no      -        1h 2m ago',
      'new                  12D3KooWD  no      -        never'
    ])
  })
})
