import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CLI_OPTIONS, flagOf } from '../../gateway/src/cli/gateway-options.js';
import { API_KEY, killAll, startGateway } from '../helpers/gateway-process.js';
import { bindUdpRun, closeUdp } from '../helpers/udp-ports.js';
import { until, withDeadline } from '../helpers/poll.js';

const CLI = fileURLToPath(new URL('../../gateway/dist/cli.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'ms-cli-config-'));
afterEach(() => killAll());
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

/** Run the CLI to its exit (it must refuse to start); its exit code and stderr. */
async function refused(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stderr: string }> {
  const proc = spawn(process.execPath, [CLI, '--host', '127.0.0.1', '--port', '0', '--api-key', 'cli-config-api-key-0123', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stderr = '';
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    const code = await withDeadline(new Promise<number | null>((r) => proc.once('exit', (c) => r(c))), 15_000, 'CLI exit');
    return { code, stderr };
  } finally {
    // a CLI that did not refuse would run on: it goes with the test
    if (proc.exitCode === null) proc.kill('SIGKILL');
  }
}

/** The ICE ports the CLI says its WebRTC engine uses (its startup log line). */
function icePorts(output: string[]): string | undefined {
  for (const line of output) {
    try {
      const msg = JSON.parse(line) as { msg?: string; icePorts?: string };
      if (msg.msg === 'WebRTC engine') return msg.icePorts;
    } catch {
      // not a log line
    }
  }
  return undefined;
}

/** `mirrorstream --config file.json`: the same schema as flags and environment; flags > environment > file > defaults. */
describe('CLI --config', () => {
  it('settings come from the file unless the environment or a flag sets them', async () => {
    const { port, sockets } = await bindUdpRun(4);
    await Promise.all(sockets.map((s) => closeUdp(s)));
    const path = file('layers.json', JSON.stringify({ webrtc: { icePort: port, icePortCount: 4 }, limits: { maxSessions: 50 } }));
    // the file alone
    const a = await startGateway(0, ['--config', path]);
    expect(icePorts(a.output)).toBe(`${port}-${port + 3}`);
    await killAll();
    // the environment over the file, and a flag over both (env MIRRORSTREAM_CONFIG names the file)
    process.env.MIRRORSTREAM_CONFIG = path;
    process.env.MIRRORSTREAM_WEBRTC_ICE_PORT_COUNT = '3';
    try {
      const b = await startGateway(0);
      expect(icePorts(b.output)).toBe(`${port}-${port + 2}`);
      await killAll();
      const c = await startGateway(0, ['--webrtc-ice-port-count', '2']);
      expect(icePorts(c.output)).toBe(`${port}-${port + 1}`);
    } finally {
      delete process.env.MIRRORSTREAM_CONFIG;
      delete process.env.MIRRORSTREAM_WEBRTC_ICE_PORT_COUNT;
    }
  }, 60_000);

  it('a file with an unknown key, bad JSON or no file at all: exit 2 with MS_CONFIG_INVALID and what is wrong', async () => {
    const typo = await refused(['--config', file('typo.json', '{"limits":{"maxSesions":5}}')]);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('MS_CONFIG_INVALID');
    expect(typo.stderr).toContain('maxSesions');
    const bad = await refused(['--config', file('bad.json', '{"port": 80,')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/MS_CONFIG_INVALID: config file .*bad\.json is not valid JSON/);
    const missing = await refused([], { MIRRORSTREAM_CONFIG: join(dir, 'nope.json') });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/MS_CONFIG_INVALID: config file .*nope\.json cannot be read/);
  }, 60_000);
});

describe('CLI --trust-proxy', () => {
  it('per-address limits count the X-Forwarded-For client of a trusted proxy; a value that is not an address is exit 2', async () => {
    const g = await startGateway(0, ['--trust-proxy', 'loopback,10.0.0.0/8', '--tokens-per-address', '1']);
    const issue = async (client: string): Promise<number> =>
      (await fetch(`${g.url}/v1/endpoints/e/token`, { method: 'POST', headers: { authorization: `Bearer ${API_KEY}`, 'x-forwarded-for': client } })).status;
    expect([await issue('192.0.2.1'), await issue('192.0.2.2'), await issue('192.0.2.1')]).toEqual([201, 201, 429]);
    await killAll();
    const bad = await refused([], { MIRRORSTREAM_TRUST_PROXY: 'nginx' });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('MS_CONFIG_INVALID');
    expect(bad.stderr).toContain('MIRRORSTREAM_TRUST_PROXY (trustProxy)');
  }, 60_000);
});

describe('CLI flags and variables from the schema', () => {
  it('a flag or variable its key refuses: exit 2 with MS_CONFIG_INVALID naming it', async () => {
    // the last --port wins over refused()'s own
    const flag = await refused(['--port', 'http']);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain('MS_CONFIG_INVALID: --port (port)');
    const variable = await refused([], { MIRRORSTREAM_NATS_REPLICAS: 'three' });
    expect(variable.code).toBe(2);
    expect(variable.stderr).toContain('MS_CONFIG_INVALID: MIRRORSTREAM_NATS_REPLICAS (log.nats.replicas)');
  }, 60_000);

  it('--help lists every option with its variable and exits 0', async () => {
    const proc = spawn(process.execPath, [CLI, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const code = await withDeadline(new Promise<number | null>((r) => proc.once('exit', (c) => r(c))), 15_000, 'CLI --help exit');
    expect(code).toBe(0);
    for (const option of CLI_OPTIONS) {
      expect(stdout).toContain(flagOf(option));
      expect(stdout).toContain(option.env);
    }
    expect(stdout).toContain('--config <file>');
  }, 30_000);
});

describe('CLI warm-up', () => {
  /** The gateway's log messages, parsed. */
  const logged = (output: string[]): { msg?: string; endpointId?: string; durationMs?: number }[] =>
    output.flatMap((l) => {
      try {
        return [JSON.parse(l) as { msg?: string; endpointId?: string; durationMs?: number }];
      } catch {
        return [];
      }
    });

  it('before it says "listening" it has run one WebRTC session against its own HTTP port, and forgotten that endpoint', async () => {
    const g = await startGateway(0);
    const lines = logged(g.output);
    const warm = lines.findIndex((l) => l.msg?.startsWith('warm-up session connected'));
    const listening = lines.findIndex((l) => l.msg?.startsWith('mirrorstream listening'));
    expect(warm).toBeGreaterThanOrEqual(0);
    expect(warm).toBeLessThan(listening);
    const endpointId = lines[warm]!.endpointId!;
    expect(endpointId).toMatch(/^warm-up-/);
    expect(lines.slice(0, warm).some((l) => l.msg === 'WebRTC offer answered' && l.endpointId === endpointId)).toBe(true);
    // in no stream: gone once its connection closed
    let listed: string[] = [endpointId];
    await until(
      async () => {
        listed = ((await (await fetch(`${g.url}/v1/endpoints`, { headers: { authorization: `Bearer ${API_KEY}` } })).json()) as { endpoints: { endpoint_id: string }[] }).endpoints.map((e) => e.endpoint_id);
        return !listed.includes(endpointId);
      },
      5_000,
      'the warm-up endpoint gone',
      { everyMs: 50, state: () => listed },
    );
  }, 60_000);

  it('--no-warm-up (or MIRRORSTREAM_WARM_UP=false) skips it; another value is exit 2', async () => {
    const flagged = await startGateway(0, ['--no-warm-up']);
    expect(logged(flagged.output).some((l) => l.msg?.startsWith('warm-up'))).toBe(false);
    await killAll();
    process.env.MIRRORSTREAM_WARM_UP = 'false';
    try {
      const viaEnv = await startGateway(0);
      expect(logged(viaEnv.output).some((l) => l.msg?.startsWith('warm-up'))).toBe(false);
    } finally {
      delete process.env.MIRRORSTREAM_WARM_UP;
    }
    const bad = await refused([], { MIRRORSTREAM_WARM_UP: 'no' });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('MIRRORSTREAM_WARM_UP (warmUp)');
  }, 60_000);
});
