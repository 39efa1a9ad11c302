/**
 * Soak receiver: one endpoint on the public Node SDK, in its own process so the soak can
 * SIGKILL and SIGSTOP it. Reads SOAK_URLS (comma-separated gateway URLs), SOAK_ENDPOINT and
 * SOAK_TOKEN; writes one JSON line per delivered chunk and per notable event on stdout.
 * stdout to a pipe is synchronous on Linux, so a chunk is written before it is acked.
 */
import { Receiver } from '@mirrorstream/receiver/node';
import type { SoakLine } from './lines.js';

const out = (line: SoakLine): void => void process.stdout.write(`${JSON.stringify(line)}\n`);
const now = (): number => performance.timeOrigin + performance.now();
const text = new TextDecoder();

const rx = new Receiver({
  gatewayUrl: (process.env.SOAK_URLS ?? '').split(','),
  endpointId: process.env.SOAK_ENDPOINT ?? '',
  token: process.env.SOAK_TOKEN ?? '',
  rtcConfig: { bindAddress: '127.0.0.1' },
});
rx.on('chunk', (c) => out({ e: 'chunk', s: c.streamId, q: c.seq, p: text.decode(c.payload), t: now() }));
rx.on('gap', (g) => out({ e: 'gap', s: g.streamId, from: g.from, to: g.to, reason: g.reason, t: now() }));
rx.on('reset', (r) => out({ e: 'reset', s: r.streamId, t: now() }));
rx.on('error', (error) => out({ e: 'error', code: error.code, t: now() }));
await rx.connect();
out({ e: 'ready', t: now() });
