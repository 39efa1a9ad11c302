import { connect } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGateway, MemoryTransport, serve, type Gateway, type RunningServer } from '../../gateway/src/index.js';
import { HTTP_STATUS } from '../../gateway/src/http/errors.js';
import { ERROR_CODES, ReceiverCore, type Chunk, type ErrorCode } from '../../receiver-sdk/src/index.js';
import { KNOWN_IDS, requestArb, send, type Answer } from './bad-requests.js';
import { until } from '../helpers/poll.js';
import { FUZZ, fuzzParams } from './fuzz-params.js';

/**
 * Generated bad (and some good) requests against every route of a real HTTP server: no
 * answer is a 5xx, every 4xx carries `{error:{code,message}}` with a documented code and
 * its documented status, and a reference receiver on another stream gets every chunk,
 * once, in order, throughout. FUZZ_RUNS / FUZZ_SEED scale and replay it (a failing case
 * prints its seed and path).
 */
const API_KEY = 'fuzz-api-key-0123456789';
/** The server's limit for a request head (and a whole request): the smallest the config allows. */
const HEADERS_TIMEOUT_MS = 1_000;
const REF_STREAM = 'reference-stream-f1c2';

/** A 4xx must be `{error:{code,message}}` with a documented code whose status it is. */
function checkError(a: Answer, head: boolean): void {
  expect(a.status, a.text.slice(0, 300)).toBeLessThan(500);
  if (a.status < 400 || head) return;
  const parsed = JSON.parse(a.text) as { error?: { code?: unknown; message?: unknown } };
  expect(typeof parsed.error?.message).toBe('string');
  const code = parsed.error?.code as ErrorCode;
  expect(Object.keys(ERROR_CODES)).toContain(code);
  expect(HTTP_STATUS[code] ?? 500).toBe(a.status);
}

describe('HTTP fuzz: generated requests against every route', () => {
  let gateway: Gateway;
  let server: RunningServer;
  let token: string;
  let reference: ReceiverCore;
  const delivered: Chunk[] = [];
  let published = 0;
  let producer: NodeJS.Timeout | undefined;

  beforeAll(async () => {
    // the per-address limits are off so every request reaches its handler (limits have their own
    // tests); an unfinished request is answered 408 after 1-2 s (the raw suite sends some)
    gateway = createGateway({
      logLevel: 'silent',
      webrtc: { bindAddress: '127.0.0.1' },
      limits: { signalingPerAddress: 0, tokensPerAddress: 0, headersTimeoutMs: HEADERS_TIMEOUT_MS, requestTimeoutMs: HEADERS_TIMEOUT_MS },
    });
    server = await serve(gateway, { apiKey: API_KEY, port: 0 });
    await gateway.createStream({ stream_id: KNOWN_IDS[0], endpoint_list: [KNOWN_IDS[1]] });
    await gateway.createStream({ stream_id: REF_STREAM, endpoint_list: ['reference-rx'] });
    token = (await gateway.issueToken(KNOWN_IDS[1])).token;
    reference = new ReceiverCore({
      endpointId: 'reference-rx',
      dial: async () => {
        const [g, r] = MemoryTransport.pair();
        gateway.accept(g, { endpointId: 'reference-rx' });
        return r;
      },
    });
    reference.on('chunk', (c) => delivered.push(c));
    await reference.connect();
    producer = setInterval(() => void gateway.publish(REF_STREAM, `ref ${++published}`).catch(() => undefined), 5);
  });

  afterAll(async () => {
    clearInterval(producer);
    reference?.close();
    await server?.close();
    await gateway?.close();
  });

  it('no 5xx; every 4xx is {error:{code,message}} with its documented status; the reference receiver loses nothing', async () => {
    const byStatus = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(requestArb, async (r) => {
        const a = await send({ port: server.port, apiKey: API_KEY, token }, r);
        byStatus.set(a.status, (byStatus.get(a.status) ?? 0) + 1);
        checkError(a, (r.otherMethod ?? r.route.methods[0]) === 'HEAD');
      }),
      fuzzParams(FUZZ.httpRuns),
    );
    clearInterval(producer);
    const last = published;
    await until(() => delivered.length >= last, 10_000, 'the reference receiver has every chunk', { state: () => `${delivered.length} of ${last}` });
    expect(delivered.map((c) => c.seq)).toEqual(Array.from({ length: last }, (_, i) => i + 1));
    const counts = [...byStatus].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}: ${n}`).join(', ');
    console.log(`[http fuzz] ${[...byStatus.values()].reduce((a, b) => a + b, 0)} requests (${counts}); reference receiver got ${delivered.length} of ${last} chunks in order`);
  }, 900_000);

  it('what the HTTP parser refuses (head too large, bad framing, garbage) is answered with a JSON error or a close, never a hang', async () => {
    const raw = fc.oneof(
      fc.integer({ min: 17_000, max: 40_000 }).map((n) => `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(n)}\r\n\r\n`),
      fc.constant('POST /v1/streams HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'),
      fc.constant('POST /v1/streams HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n'),
      fc.constant('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
      fc.string({ maxLength: 300 }).map((s) => `${s}\r\n\r\n`),
      fc.uint8Array({ minLength: 1, maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1') + '\r\n\r\n'),
    );
    const seen = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(raw, async (text) => {
        const { out, end } = await rawExchange(server.port, text);
        const status = /^HTTP\/1\.1 (\d{3}) /.exec(out)?.[1];
        const key = status ?? `no answer, ${end}`;
        seen.set(key, (seen.get(key) ?? 0) + 1);
        // no answer: then the server closed; it never leaves a client waiting out our limit (its own 408 comes first)
        if (status === undefined) return void expect(end, JSON.stringify(text.slice(0, 80))).toBe('closed by the server');
        expect(Number(status)).toBeLessThan(500);
        if (Number(status) < 400) return;
        // the first answer only (a request the server did read may be followed by a parser error)
        const start = out.indexOf('\r\n\r\n') + 4;
        const bodyText = out.slice(start, start + Number(/content-length: (\d+)/i.exec(out)?.[1] ?? out.length));
        const parsed = JSON.parse(bodyText) as { error: { code: ErrorCode } };
        expect(HTTP_STATUS[parsed.error.code]).toBe(Number(status));
      }),
      fuzzParams(FUZZ.rawRuns),
    );
    console.log(`[http fuzz, raw] ${[...seen].map(([s, n]) => `${s}: ${n}`).join(', ')}`);
  }, 900_000);
});

/**
 * How long a raw exchange may take before it counts as a hang: the server answers an unfinished
 * request (blank lines only, say: HTTP lets a request start after them) with 408 once its
 * headersTimeoutMs is up, checked every second; this leaves room for a loaded machine.
 */
const RAW_LIMIT_MS = 5 * (HEADERS_TIMEOUT_MS + 1_000);

/** Write `text`, read until one answer is complete or the server closes; how it ended. */
function rawExchange(port: number, text: string): Promise<{ out: string; end: 'answered' | 'closed by the server' | 'hung' }> {
  return new Promise((resolve) => {
    let out = '';
    let end: 'answered' | 'hung' | undefined;
    const socket = connect(port, '127.0.0.1', () => socket.write(Buffer.from(text, 'latin1')));
    const timer = setTimeout(() => {
      end = 'hung';
      socket.destroy();
    }, RAW_LIMIT_MS);
    socket.on('data', (d: Buffer) => {
      out += d.toString('latin1');
      // one answer is enough: a keep-alive server would otherwise wait for the next request
      const head = out.indexOf('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(out)?.[1];
      if (head >= 0 && length !== undefined && out.length >= head + 4 + Number(length)) {
        end = 'answered';
        socket.destroy();
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ out, end: end ?? 'closed by the server' });
    });
  });
}
