import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { api, killAll, startGateway } from '../helpers/gateway-process.js';
import { until } from '../helpers/poll.js';

/**
 * Without the optional HTTP/3 backend (as on this machine), @fails-components/webtransport
 * prints stack traces when it is loaded. The gateway says so in one line of its own; a
 * Node receiver that dials over WebTransport prints nothing of the library's at all.
 */
const CHILD = fileURLToPath(new URL('./fixtures/receiver-child.ts', import.meta.url));
const TSX = fileURLToPath(new URL('../../node_modules/tsx/dist/loader.mjs', import.meta.url));
const NOISE = /http3 loader|Problem loading http3-quiche|Did you install @fails-components|ERR_MODULE_NOT_FOUND/;

describe('no library noise about the missing HTTP/3 backend', () => {
  afterEach(async () => {
    await killAll();
  });

  it('the gateway prints one line of its own; a Node receiver over WebTransport prints none', async () => {
    const g = await startGateway(0);
    await api(g.url, 'POST', '/v1/streams', { stream_id: 's', endpoint_list: ['wt'] });
    const { token } = (await api(g.url, 'POST', '/v1/endpoints/wt/token', {})) as { token: string };
    const rx = spawn(process.execPath, ['--import', TSX, CHILD], {
      env: { ...process.env, GATEWAY_URL: g.url, ENDPOINT_ID: 'wt', TOKEN: token, TRANSPORTS: 'webtransport' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const rxOutput: string[] = [];
    let chunks = 0;
    let transport: string | undefined;
    createInterface({ input: rx.stdout! }).on('line', (line) => {
      rxOutput.push(line);
      if (line.includes('"e":"chunk"')) chunks++;
      const ready = /"e":"ready","transport":"(\w+)"/.exec(line);
      if (ready) transport = ready[1];
    });
    createInterface({ input: rx.stderr! }).on('line', (line) => rxOutput.push(line));
    try {
      await until(() => transport !== undefined, 20_000, 'receiver ready');
      for (let i = 0; i < 20; i++) await api(g.url, 'POST', '/v1/streams/s/chunks', { chunks: [{ payload: `c${i}` }] });
      await until(() => chunks === 20, 10_000, '20 chunks over WebTransport');
    } finally {
      rx.kill('SIGKILL');
    }
    expect(transport).toBe('webtransport');
    expect(rxOutput.filter((l) => NOISE.test(l))).toEqual([]);
    expect(g.output.filter((l) => NOISE.test(l))).toEqual([]);
    expect(g.output.filter((l) => l.includes('WebTransport backend: HTTP/2'))).toHaveLength(1);
  }, 60_000);
});
