import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_KEY, killAll, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { runCli, startCli, type CliProcess } from '../helpers/cli.js';
import { until, withDeadline } from '../helpers/poll.js';

/**
 * The `mirrorstream` client commands as a shell runs them: the built CLI in child processes
 * against a gateway process, stdin and stdout as pipes.
 */
let gateway: GatewayProcess;
let env: Record<string, string>;

beforeAll(async () => {
  gateway = await startGateway(0);
  env = { MIRRORSTREAM_URL: gateway.url, MIRRORSTREAM_API_KEY: API_KEY };
});
afterAll(killAll);

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

describe('mirrorstream client commands: answers and exit codes', () => {
  it('streams create / get / list, token: the gateway JSON on stdout, exit 0; the token alone for $(...)', async () => {
    const created = await runCli(['streams', 'create', 'cmds', 'a', 'b', '--spec', '{"failback":{"enabled":false}}'], { env });
    expect(created.code, created.stderr).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ stream_id: 'cmds', endpoint_list: [{ endpoint_id: 'a' }, { endpoint_id: 'b' }] });
    const listed = await runCli(['streams', 'list'], { env });
    expect((JSON.parse(listed.stdout) as { stream_id: string }[]).map((s) => s.stream_id)).toContain('cmds');
    const token = await runCli(['token', 'a'], { env });
    expect(token.code).toBe(0);
    expect(token.stdout.trim()).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    // a listening endpoint goes in --spec's endpoint_list (the arguments or the spec: not both)
    const listening = { endpoint_id: 'lis', url: 'http://127.0.0.1:9/', token: 'listener-token-0123456789' };
    const withListener = await runCli(['streams', 'create', 'cmds-l', '--spec', JSON.stringify({ endpoint_list: ['a', listening] })], { env });
    expect(withListener.code, withListener.stderr).toBe(0);
    expect((JSON.parse(withListener.stdout) as { endpoint_list: { endpoint_id: string; kind: string }[] }).endpoint_list.map((e) => `${e.endpoint_id}:${e.kind}`)).toEqual(['a:dial-in', 'lis:listening']);
    const both = await runCli(['streams', 'create', 'cmds-2', 'a', '--spec', JSON.stringify({ endpoint_list: ['b'] })], { env });
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('not both');
    const reordered = await runCli(['endpoints', 'reorder', 'cmds', 'b', 'a'], { env });
    expect((JSON.parse(reordered.stdout) as { endpoint_list: { endpoint_id: string }[] }).endpoint_list.map((e) => e.endpoint_id)).toEqual(['b', 'a']);
  });

  it('a refusal prints the gateway code on stderr and exits 1; a usage error exits 2; no gateway reachable exits 3', async () => {
    const missing = await runCli(['streams', 'get', 'nope'], { env });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('MS_STREAM_NOT_FOUND');
    const noKey = await runCli(['streams', 'list'], { env: { MIRRORSTREAM_URL: gateway.url, MIRRORSTREAM_API_KEY: '' } });
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toContain('--api-key');
    const badFlag = await runCli(['publish', 'cmds', '--no-such-flag'], { env });
    expect(badFlag.code).toBe(2);
    const badKey = await runCli(['streams', 'list', '--api-key', 'wrong-key-0123456789'], { env });
    expect(badKey.code).toBe(1);
    expect(badKey.stderr).toContain('MS_UNAUTHORIZED');
    const down = await runCli(['streams', 'list', '--gateway', `http://127.0.0.1:${await closedPort()}`], { env });
    expect(down.code).toBe(3);
    expect(down.stderr).toContain('MS_TRANSPORT_CLOSED');
  });

  it('publish --key-field: NDJSON lines stored in order with their key; receive prints them as NDJSON with the key, --count ends it with 0', async () => {
    expect((await runCli(['streams', 'create', 'nd', 'nd-rx'], { env })).code).toBe(0);
    const lines = Array.from({ length: 50 }, (_, i) => JSON.stringify({ sym: i % 2 ? 'AAPL' : 'MSFT', px: 100 + i }));
    const pub = await runCli(['publish', 'nd', '--key-field', 'sym', '--verbose'], { env, input: `${lines.join('\n')}\n` });
    expect(pub.code, pub.stderr).toBe(0);
    expect(pub.stdout.trim().split('\n').map((l) => JSON.parse(l) as { line: number; seq: number })).toEqual(lines.map((_, i) => ({ line: i + 1, seq: i + 1 })));
    const rx = await runCli(['receive', 'nd-rx', '--count', '50', '--bind-address', '127.0.0.1'], { env, ms: 30_000 });
    expect(rx.code, rx.stderr).toBe(0);
    const got = rx.stdout.trim().split('\n').map((l) => JSON.parse(l) as { stream: string; seq: number; key: string; payload: string });
    expect(got.map((c) => c.payload)).toEqual(lines);
    expect(got.map((c) => c.key)).toEqual(lines.map((l) => (JSON.parse(l) as { sym: string }).sym));
    expect(got.every((c, i) => c.stream === 'nd' && c.seq === i + 1)).toBe(true);
  });

  it('a line that is not JSON stops publish with exit 1 naming the line; the lines before it are stored; a missing stream exits 1', async () => {
    expect((await runCli(['streams', 'create', 'bad', 'x'], { env })).code).toBe(0);
    const pub = await runCli(['publish', 'bad', '--ndjson', '--verbose'], { env, input: '{"a":1}\n{"a":2}\nnot json\n{"a":4}\n' });
    expect(pub.code).toBe(1);
    expect(pub.stderr).toContain('line 3');
    expect(pub.stdout.trim().split('\n')).toHaveLength(2);
    const info = await runCli(['streams', 'get', 'bad'], { env });
    expect((JSON.parse(info.stdout) as { last_seq: number }).last_seq).toBe(2);
    const missing = await runCli(['publish', 'no-such-stream'], { env, input: 'x\n' });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('MS_STREAM_NOT_FOUND');
  });
});

describe('a shell pipeline: lines on stdin → publish → gateway → receive → stdout', () => {
  it('3 000 lines at 1 000/s into a failover stream of two CLI receivers; the active one is SIGKILLed once 1 000 are stored: what went into the dead path before the gateway noticed comes out of the other, every line once', async () => {
    expect((await runCli(['streams', 'create', 'pipe', 'primary', 'backup'], { env })).code).toBe(0);
    const rx: Record<string, CliProcess> = {};
    for (const id of ['primary', 'backup']) rx[id] = startCli(['receive', id, '--output', 'raw', '--bind-address', '127.0.0.1'], env);
    const activeNow = async (): Promise<string | undefined> => {
      const info = await runCli(['streams', 'get', 'pipe'], { env });
      const s = JSON.parse(info.stdout) as { active: string[]; endpoint_list: { endpoint_id: string; state: string }[] };
      return s.endpoint_list.every((e) => e.state === 'alive') && s.active.length === 1 ? s.active[0] : undefined;
    };
    let active: string | undefined;
    await until(async () => (active = await activeNow()) !== undefined, 20_000, 'both receivers connected, one active');
    const victim = rx[active!]!;
    const survivor = rx[active === 'primary' ? 'backup' : 'primary']!;

    const sent = Array.from({ length: 3_000 }, (_, i) => `tick-${i + 1}`);
    const pub = startCli(['publish', 'pipe', '--verbose'], env);
    let killedAt: number | undefined;
    for (let i = 0; i < sent.length; i += 100) {
      pub.proc.stdin!.write(`${sent.slice(i, i + 100).join('\n')}\n`);
      // killed right after a write: the lines just written are on their way to it
      if (killedAt === undefined && pub.stdout.length >= 1_000) {
        killedAt = pub.stdout.length;
        victim.proc.kill('SIGKILL');
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    pub.proc.stdin!.end();
    expect(await withDeadline(pub.exited, 30_000, 'publish exits'), pub.stderr.join('\n')).toBe(0);
    expect(killedAt, 'the active receiver was killed mid-stream').toBeDefined();
    expect(pub.stdout).toHaveLength(sent.length);

    const union = (): Set<string> => new Set([...victim.stdout, ...survivor.stdout]);
    await until(() => union().size >= sent.length, 20_000, 'every line out of a receiver').catch(() => undefined);
    const missing = sent.filter((l) => !union().has(l));
    const n = (l: string): number => Number(l.slice('tick-'.length));
    console.log(`killed the active receiver after ${killedAt} acked lines; it printed ${victim.stdout.length} lines, the other ${survivor.stdout.length} (from line ${survivor.stdout[0] ?? '-'}); missing ${missing.length}; printed by both ${victim.stdout.filter((l) => survivor.stdout.includes(l)).length}`);
    expect(missing).toEqual([]);
    expect([...union()].every((l) => sent.includes(l)), 'nothing printed that was not published').toBe(true);
    expect(survivor.stdout.every((l, i) => i === 0 || n(l) > n(survivor.stdout[i - 1]!)), 'the survivor prints in order, each line once').toBe(true);
    expect(victim.stdout.every((l, i) => i === 0 || n(l) > n(victim.stdout[i - 1]!))).toBe(true);

    survivor.proc.kill('SIGTERM');
    expect(await withDeadline(survivor.exited, 10_000, 'receive exits on SIGTERM')).toBe(0);
  }, 120_000);
});
