import { request } from 'node:http';
import { connect } from 'node:net';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { pack } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGateway, MemoryTransport, serve, type Gateway, type RunningServer } from '../../gateway/src/index.js';
import { HTTP_STATUS } from '../../gateway/src/http/errors.js';
import { ERROR_CODES, ReceiverCore, type Chunk, type ErrorCode } from '../../receiver-sdk/src/index.js';
import { FUZZ, fuzzParams } from './fuzz-params.js';

/**
 * Generated bad (and some good) requests against every route of a real HTTP server: no
 * answer is a 5xx, every 4xx carries `{error:{code,message}}` with a documented code and
 * its documented status, and a reference receiver on another stream gets every chunk,
 * once, in order, throughout. FUZZ_RUNS / FUZZ_SEED scale and replay it (a failing case
 * prints its seed and path).
 */
const API_KEY = 'fuzz-api-key-0123456789';
const REF_STREAM = 'reference-stream-f1c2';

/** Every route, with its path parameters as holes. */
const ROUTES: readonly { methods: readonly string[]; path: readonly string[] }[] = [
  { methods: ['GET'], path: ['healthz'] },
  { methods: ['GET'], path: ['metrics'] },
  { methods: ['GET'], path: ['sdk', '*'] },
  { methods: ['GET', 'POST'], path: ['v1', 'streams'] },
  { methods: ['GET', 'DELETE'], path: ['v1', 'streams', ':id'] },
  { methods: ['POST', 'PUT'], path: ['v1', 'streams', ':id', 'endpoints'] },
  { methods: ['DELETE'], path: ['v1', 'streams', ':id', 'endpoints', ':id'] },
  { methods: ['POST'], path: ['v1', 'streams', ':id', 'chunks'] },
  { methods: ['PUT'], path: ['v1', 'streams', ':id', 'policy'] },
  { methods: ['GET'], path: ['v1', 'streams', ':id', 'health'] },
  { methods: ['GET'], path: ['v1', 'endpoints'] },
  { methods: ['GET'], path: ['v1', 'endpoints', ':id', 'health'] },
  { methods: ['POST'], path: ['v1', 'endpoints', ':id', 'token'] },
  { methods: ['POST', 'OPTIONS'], path: ['v1', 'endpoints', ':id', 'webrtc'] },
  { methods: ['POST', 'OPTIONS'], path: ['v1', 'endpoints', ':id', 'webtransport'] },
  { methods: ['DELETE', 'OPTIONS'], path: ['v1', 'endpoints', ':id', 'webrtc', ':id'] },
];

/** Path segments: ids that exist, plausible ones, and what breaks decoders. */
const segment = fc.oneof(
  fc.constantFrom('s1', 'e1', 'missing', REF_STREAM.slice(0, 5), '..', '.', '%2e%2e', '%ZZ', '%u0041', '%', '%E0%A4', '%C0%AF', '%00', '%F0%9F%98%80', '%ff%fe'),
  fc.stringMatching(/^[A-Za-z0-9._~%-]{0,40}$/),
  fc.string({ unit: fc.constantFrom(...'abcXYZ019-_.:~%!$&\'()*+,;=@'.split('')), maxLength: 300 }),
);

const json = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.record({ stream_id: segment, endpoint_list: fc.array(segment, { maxLength: 4 }), mode: fc.constantFrom('failover', 'mirror', 'x') }, { requiredKeys: [] }),
  fc.record({ endpoint_id: segment, position: fc.oneof(fc.integer(), fc.double()) }, { requiredKeys: [] }),
  fc.record({ endpoint_list: fc.array(segment, { maxLength: 4 }) }),
  fc.record({ chunks: fc.array(fc.record({ payload: fc.string(), json: fc.jsonValue({ maxDepth: 3 }), payload_base64: fc.string(), key: fc.string(), layer: fc.integer({ min: -2, max: 20 }) }, { requiredKeys: [] }), { maxLength: 5 }) }),
  fc.record({ overflow: fc.string(), max_backlog_ms: fc.integer(), decimate_n: fc.integer(), ttl_s: fc.oneof(fc.integer(), fc.string()) }, { requiredKeys: [] }),
);

/** A JSON text nested deeper than any limit. */
const deepJson = fc.integer({ min: 65, max: 30_000 }).map((n) => `{"chunks":[{"json":${'['.repeat(n)}${']'.repeat(n)}}]}`);

const body = fc.oneof(
  fc.constant(undefined),
  json.map((v) => Buffer.from(JSON.stringify(v))),
  deepJson.map((t) => Buffer.from(t)),
  fc.string({ maxLength: 200 }).map((t) => Buffer.from(t)),
  fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b)),
  fc.jsonValue({ maxDepth: 3 }).map((v) => Buffer.from(pack(v))),
  fc.constant(Buffer.from('v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n')),
);

type Encoding = 'none' | 'gzip' | 'deflate' | 'br' | 'gzip-corrupt' | 'deflate-corrupt' | 'br-corrupt' | 'bogus';

const requestArb = fc.record({
  route: fc.constantFrom(...ROUTES),
  otherMethod: fc.option(fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'), { freq: 4 }),
  params: fc.array(segment, { minLength: 3, maxLength: 3 }),
  query: fc.option(fc.stringMatching(/^[A-Za-z0-9=&%+._-]{0,60}$/)),
  // mostly authorized, so the handlers behind the key see the input
  auth: fc.oneof({ arbitrary: fc.constant('api-key'), weight: 6 }, { arbitrary: fc.constant('token'), weight: 2 }, { arbitrary: fc.constantFrom('none', 'garbage', 'bearer-only'), weight: 1 }),
  contentType: fc.option(fc.constantFrom('application/json', 'application/msgpack', 'application/octet-stream', 'application/sdp', 'text/plain', 'application/json; charset=latin1', 'application/json; charset=utf-16', 'multipart/form-data; boundary=x', '*/*', 'application/vnd.api+json')),
  encoding: fc.constantFrom<Encoding>('none', 'none', 'gzip', 'deflate', 'br', 'gzip-corrupt', 'deflate-corrupt', 'br-corrupt', 'bogus'),
  body,
  idempotencyKey: fc.option(fc.string({ unit: fc.constantFrom(...'abc012 -_~!'.split('')), maxLength: 200 })),
});
type FuzzRequest = typeof requestArb extends fc.Arbitrary<infer T> ? T : never;

function encode(body: Buffer | undefined, encoding: Encoding): { bytes: Buffer | undefined; header: string | undefined } {
  const b = body ?? Buffer.alloc(0);
  switch (encoding) {
    case 'none':
      return { bytes: body, header: undefined };
    case 'gzip':
      return { bytes: gzipSync(b), header: 'gzip' };
    case 'deflate':
      return { bytes: deflateSync(b), header: 'deflate' };
    case 'br':
      return { bytes: brotliCompressSync(b), header: 'br' };
    case 'gzip-corrupt':
      return { bytes: Buffer.concat([gzipSync(b).subarray(0, 12), Buffer.from('corrupt')]), header: 'gzip' };
    case 'deflate-corrupt':
      return { bytes: Buffer.from('not deflate at all'), header: 'deflate' };
    case 'br-corrupt':
      return { bytes: Buffer.from([0xff, 0xff, 0xff, 0x00]), header: 'br' };
    case 'bogus':
      return { bytes: body, header: 'x-unknown' };
  }
}

interface Answer {
  status: number;
  text: string;
}

function send(port: number, r: FuzzRequest, token: string): Promise<Answer> {
  const method = r.otherMethod ?? r.route.methods[0] ?? 'GET';
  let i = 0;
  const path = '/' + r.route.path.map((s) => (s === ':id' || s === '*' ? (r.params[i++] ?? '') : s)).join('/') + (r.query === null ? '' : `?${r.query}`);
  const { bytes, header } = encode(r.body, r.encoding);
  const headers: Record<string, string> = {};
  if (r.auth === 'api-key') headers.authorization = `Bearer ${API_KEY}`;
  if (r.auth === 'token') headers.authorization = `Bearer ${token}`;
  if (r.auth === 'garbage') headers.authorization = 'Basic Zm9vOmJhcg==';
  if (r.auth === 'bearer-only') headers.authorization = 'Bearer';
  if (r.contentType !== null) headers['content-type'] = r.contentType;
  if (header) headers['content-encoding'] = header;
  if (r.idempotencyKey !== null) headers['idempotency-key'] = r.idempotencyKey;
  if (bytes) headers['content-length'] = String(bytes.length);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`no answer to ${method} ${path} in 10 s`)));
    req.end(bytes);
  });
}

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
    // the per-address limits are off so every request reaches its handler (limits have their own tests)
    gateway = createGateway({ logLevel: 'silent', webrtc: { bindAddress: '127.0.0.1' }, limits: { signalingPerAddress: 0, tokensPerAddress: 0 } });
    server = await serve(gateway, { apiKey: API_KEY, port: 0 });
    await gateway.createStream({ stream_id: 's1', endpoint_list: ['e1'] });
    await gateway.createStream({ stream_id: REF_STREAM, endpoint_list: ['reference-rx'] });
    token = (await gateway.issueToken('e1')).token;
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
        const a = await send(server.port, r, token);
        byStatus.set(a.status, (byStatus.get(a.status) ?? 0) + 1);
        checkError(a, (r.otherMethod ?? r.route.methods[0]) === 'HEAD');
      }),
      fuzzParams(FUZZ.httpRuns),
    );
    clearInterval(producer);
    const last = published;
    const deadline = Date.now() + 10_000;
    while (delivered.length < last && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
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
        const out = await rawExchange(server.port, text);
        const status = /^HTTP\/1\.1 (\d{3}) /.exec(out)?.[1];
        seen.set(status ?? 'no answer in 1 s', (seen.get(status ?? 'no answer in 1 s') ?? 0) + 1);
        if (status === undefined) return;
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

/** Write `text`, read until the server closes (bounded). */
function rawExchange(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    const socket = connect(port, '127.0.0.1', () => socket.write(Buffer.from(text, 'latin1')));
    const timer = setTimeout(() => socket.destroy(), 1_000);
    socket.on('data', (d: Buffer) => {
      out += d.toString('latin1');
      // one answer is enough: a keep-alive server would otherwise wait for the next request
      const end = out.indexOf('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(out)?.[1];
      if (end >= 0 && length !== undefined && out.length >= end + 4 + Number(length)) socket.destroy();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}
