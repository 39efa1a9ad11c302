import type { Writable } from 'node:stream';
import { Command, Option } from 'commander';
import { AdminClient } from '@mirrorstream/producer';
import { Receiver, type Chunk, type TransportName } from '@mirrorstream/receiver/node';
import { EXIT, UsageError, apiKeyOf, action, describeError, gatewayUrls, withGatewayOptions, type ClientFlags } from './client.js';

interface ReceiveFlags extends ClientFlags {
  token?: string;
  transport: string;
  output: string;
  count?: string;
  bindAddress?: string;
}

export const TOKEN_ENV = 'MIRRORSTREAM_TOKEN';
const TRANSPORTS: readonly TransportName[] = ['webrtc', 'webtransport'];

export function receiveCommand(): Command {
  return withGatewayOptions(new Command('receive'))
    .description('receive as an endpoint: its chunks as lines on stdout (in seq order, no duplicates), its role, gap and reset events and connection status on stderr; it reconnects and resumes on its own until stopped')
    .argument('<endpoint>', 'endpoint id')
    .addOption(new Option('--token <token>', `endpoint token (env ${TOKEN_ENV}); without one, tokens are issued with the API key, a fresh one per connection`))
    .addOption(new Option('--transport <list>', `transports in order of preference, comma-separated: ${TRANSPORTS.join(', ')}`).default('webrtc'))
    .addOption(new Option('--output <format>', 'ndjson: one JSON object per chunk {stream, seq, timestamp, key?, layer?, payload (UTF-8) or payload_base64}; raw: the payload and a newline').choices(['ndjson', 'raw']).default('ndjson'))
    .addOption(new Option('--count <n>', 'exit 0 after this many chunks'))
    .addOption(new Option('--bind-address <address>', 'WebRTC: gather candidates on this local address only (default: every interface)'))
    .action(action('receive', (endpoint: string, flags: ReceiveFlags) => receive(endpoint, flags, process.stdout, process.env)));
}

/** Runs until SIGINT/SIGTERM or `--count` chunks (exit 0), or until the receiver is closed by an error retrying cannot help (exit 1). */
export function receive(endpoint: string, flags: ReceiveFlags, output: Writable, env: Readonly<Record<string, string | undefined>>): Promise<number> {
  const urls = gatewayUrls(flags, env);
  const transports = flags.transport.split(',').map((t) => t.trim());
  const unknown = transports.filter((t) => !(TRANSPORTS as readonly string[]).includes(t));
  if (unknown.length > 0 || transports.length === 0) throw new UsageError(`--transport: ${TRANSPORTS.join(', ')} (not: ${unknown.join(', ')})`);
  const count = flags.count === undefined ? undefined : Number(flags.count);
  if (count !== undefined && !(Number.isInteger(count) && count > 0)) throw new UsageError('--count: a positive integer');
  const given = flags.token ?? (env[TOKEN_ENV] || undefined);
  let token: string | (() => Promise<string>);
  if (given) token = given;
  else {
    const admin = new AdminClient(urls, apiKeyOf(flags, env));
    token = async () => (await admin.issueToken(endpoint)).token;
  }

  const rx = new Receiver({
    gatewayUrl: urls,
    endpointId: endpoint,
    token,
    transports: transports as TransportName[],
    ...(flags.bindAddress ? { rtcConfig: { bindAddress: flags.bindAddress } } : {}),
  });
  const say = (line: string): void => void process.stderr.write(`[${endpoint}] ${line}\n`);
  const format = flags.output === 'raw' ? rawLine : ndjsonLine;
  let received = 0;
  return new Promise<number>((resolve) => {
    let stopped = false;
    const stop = (code: number): void => {
      if (stopped) return;
      stopped = true;
      process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
      rx.close();
      resolve(code);
    };
    const onSignal = (): void => stop(EXIT.ok);
    process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
    rx.on('chunk', (chunk) => {
      if (count !== undefined && received >= count) return;
      output.write(format(chunk));
      if (++received === count) stop(EXIT.ok);
    });
    rx.on('role', (r) => say(`role ${r.streamId}: ${r.role} from seq ${r.fromSeq}`));
    rx.on('gap', (g) => say(`gap ${g.streamId}: ${g.from}..${g.to} (${g.reason})`));
    rx.on('reset', (r) => say(`reset ${r.streamId}: epoch ${r.oldEpoch ?? '-'} -> ${r.newEpoch} (seqs start over)`));
    rx.on('end', (e) => say(`end ${e.streamId}: ${e.reason}`));
    rx.on('error', (e) => say(`error ${describeError(e)}`));
    rx.on('status', (status, detail) => {
      say(`${status} (${detail})${status === 'connected' ? ` ${rx.gatewayUrl ?? ''} over ${rx.transport ?? '?'}` : ''}`);
      // closed by itself: an error retrying cannot help
      if (status === 'closed') stop(EXIT.refused);
    });
    // connect() rejects only when the receiver closes first: an error retrying cannot help (a bad token)
    rx.connect().catch((error: unknown) => {
      say(`stopped: ${describeError(error)}`);
      stop(EXIT.refused);
    });
  });
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function ndjsonLine(c: Chunk): string {
  let text: string | undefined;
  try {
    text = utf8.decode(c.payload);
  } catch {
    text = undefined;
  }
  const payload = text === undefined ? { payload_base64: Buffer.from(c.payload).toString('base64') } : { payload: text };
  return `${JSON.stringify({ stream: c.streamId, seq: c.seq, timestamp: c.timestamp, ...(c.key === undefined ? {} : { key: c.key }), ...(c.layer === undefined ? {} : { layer: c.layer }), ...payload })}\n`;
}

function rawLine(c: Chunk): Uint8Array {
  const line = new Uint8Array(c.payload.byteLength + 1);
  line.set(c.payload);
  line[c.payload.byteLength] = 0x0a;
  return line;
}
