import { request } from 'node:http';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { pack } from 'msgpackr';
import { ROUTES as API_ROUTES } from '../../gateway/src/http/routes.js';

/**
 * Generated bad (and some good) HTTP requests against every route of the gateway: the
 * fuzz suite checks every answer, the soak sends bursts of them while streams run.
 * Path parameters come from `segment`, so a request names an id that exists only where
 * it is in `KNOWN_IDS`.
 */
export const KNOWN_IDS = ['s1', 'e1', 'missing'] as const;

/**
 * Every route of the API's one route table (gateway/src/http/routes.ts), grouped by path, with
 * its path parameters (`{id}`, `{session}`, `{file}`) as holes the generator fills.
 */
const ROUTE_LIST: readonly { methods: readonly string[]; path: readonly string[] }[] = (() => {
  const byPath = new Map<string, string[]>();
  for (const r of Object.values(API_ROUTES)) byPath.set(r.path, [...(byPath.get(r.path) ?? []), r.method.toUpperCase()]);
  return [...byPath].map(([path, methods]) => ({ methods, path: path.slice(1).split('/').map((s) => (s.startsWith('{') ? ':id' : s)) }));
})();

/** Path segments: ids that exist, plausible ones, and what breaks decoders. */
const segment = fc.oneof(
  fc.constantFrom(...KNOWN_IDS, 'refer', '..', '.', '%2e%2e', '%ZZ', '%u0041', '%', '%E0%A4', '%C0%AF', '%00', '%F0%9F%98%80', '%ff%fe'),
  fc.stringMatching(/^[A-Za-z0-9._~%-]{0,40}$/),
  fc.string({ unit: fc.constantFrom(...'abcXYZ019-_.:~%!$&\'()*+,;=@'.split('')), maxLength: 300 }),
);

/** A listening endpoint entry: good and bad urls and tokens (a good one dials a closed loopback port). */
const listener = fc.record(
  {
    endpoint_id: segment,
    url: fc.oneof(fc.constantFrom('http://127.0.0.1:9/', 'https://[::1]:9/x', 'ftp://127.0.0.1/', 'http://u:p@127.0.0.1/', 'http://10.1.2.3/', 'http://x.invalid/', 'javascript:alert(1)', ''), fc.string({ maxLength: 40 })),
    token: fc.oneof(fc.constant('fuzz-listener-token-0123'), fc.string({ maxLength: 20 })),
    priority: fc.integer({ min: -1, max: 70 }),
  },
  { requiredKeys: [] },
);

const json = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.record({ stream_id: segment, endpoint_list: fc.array(fc.oneof(segment, listener), { maxLength: 4 }), mode: fc.constantFrom('failover', 'mirror', 'x') }, { requiredKeys: [] }),
  fc.record({ endpoint_id: segment, position: fc.oneof(fc.integer(), fc.double()) }, { requiredKeys: [] }),
  listener,
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

export const requestArb = fc.record({
  route: fc.constantFrom(...ROUTE_LIST),
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
export type FuzzRequest = typeof requestArb extends fc.Arbitrary<infer T> ? T : never;

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

export interface Answer {
  status: number;
  text: string;
}

export interface Target {
  port: number;
  apiKey: string;
  /** A valid endpoint token (requests with auth 'token' carry it). */
  token: string;
  /** Send from this local address (e.g. 127.0.0.2: another client address on loopback). */
  localAddress?: string;
}

export function send(target: Target, r: FuzzRequest): Promise<Answer> {
  const method = r.otherMethod ?? r.route.methods[0] ?? 'GET';
  let i = 0;
  const path = '/' + r.route.path.map((s) => (s === ':id' ? (r.params[i++] ?? '') : s)).join('/') + (r.query === null ? '' : `?${r.query}`);
  const { bytes, header } = encode(r.body, r.encoding);
  const headers: Record<string, string> = {};
  if (r.auth === 'api-key') headers.authorization = `Bearer ${target.apiKey}`;
  if (r.auth === 'token') headers.authorization = `Bearer ${target.token}`;
  if (r.auth === 'garbage') headers.authorization = 'Basic Zm9vOmJhcg==';
  if (r.auth === 'bearer-only') headers.authorization = 'Bearer';
  if (r.contentType !== null) headers['content-type'] = r.contentType;
  if (header) headers['content-encoding'] = header;
  if (r.idempotencyKey !== null) headers['idempotency-key'] = r.idempotencyKey;
  if (bytes) headers['content-length'] = String(bytes.length);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: target.port, method, path, headers, ...(target.localAddress ? { localAddress: target.localAddress } : {}) }, (res) => {
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

