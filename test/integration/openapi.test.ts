import { request as httpRequest } from 'node:http';
import { pack } from 'msgpackr';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import ajvFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import type { z } from 'zod';
import { createGateway, createHttpApp, MemoryTransport, serve, type BatchResult, type EndpointHealth, type Gateway, type RunningServer, type StreamHealth } from '../../gateway/src/index.js';
import { batchResultSchema, issuedTokenSchema, webTransportTicketSchema } from '../../gateway/src/http/answers.js';
import type { IssuedToken } from '../../gateway/src/signaling/tokens.js';
import type { WebTransportTicket } from '../../gateway/src/transports/webtransport/server.js';
import { endpointHealthSchema, streamHealthSchema } from '../../gateway/src/views/schemas.js';
import { ReceiverCore, type Chunk } from '../../receiver-sdk/src/index.js';
import { withDeadline } from '../helpers/poll.js';

/**
 * The contract: `GET /openapi.json` is a valid OpenAPI 3.1 document (checked by a standard
 * validator), it names every route the app serves, and the answers of every route (success and
 * errors, over a real socket) validate against it.
 */

type Method = 'get' | 'post' | 'put' | 'delete' | 'options';
interface Operation {
  operationId: string;
  responses: Record<string, { content?: Record<string, unknown> }>;
}
interface OpenApiDoc {
  openapi: string;
  paths: Record<string, Partial<Record<Method, Operation>>>;
}
interface Answer {
  status: number;
  headers: Headers;
  json: Record<string, unknown> | undefined;
}

const API_KEY = 'openapi-test-key-0123456789';
const WAIT_MS = 5_000;
// a CommonJS module: its function is `default` whichever way the import interops
const addFormats = ajvFormats.default;

let gateway: Gateway;
let server: RunningServer;
let doc: OpenApiDoc;
let ajv: Ajv2020;
const receivers: ReceiverCore[] = [];
/** Statuses whose answers were validated, by operation id. */
const validated = new Map<string, Set<number>>();

const pointer = (s: string): string => s.replace(/~/g, '~0').replace(/\//g, '~1');
const code = (a: Answer): unknown => (a.json?.error as { code?: unknown } | undefined)?.code;

/** Check one answer against the document: its status listed, its media type and body as documented. */
function check(method: Method, template: string, status: number, contentType: string, text: string): Record<string, unknown> | undefined {
  const op = doc.paths[template]?.[method];
  expect(op, `${method} ${template} is not in the document`).toBeDefined();
  const response = op?.responses[String(status)];
  expect(response, `${method} ${template} answered ${status}, which the document does not list`).toBeDefined();
  const type = contentType.split(';')[0]?.trim() ?? '';
  const documented = Object.keys(response?.content ?? {});
  if (documented.length === 0) expect(text, `${method} ${template} ${status} has no documented body`).toBe('');
  else expect(documented, `${method} ${template} ${status} answered ${type}`).toContain(type);
  let body: Record<string, unknown> | undefined;
  if (type === 'application/json') {
    body = JSON.parse(text) as Record<string, unknown>;
    const validate = ajv.getSchema(`openapi.json#/paths/${pointer(template)}/${method}/responses/${status}/content/${pointer(type)}/schema`);
    expect(validate, 'a schema for the answer').toBeDefined();
    const ok = validate?.(body);
    const why = (validate?.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`).join('; ');
    expect(ok, `${method} ${template} ${status}: ${why}`).toBe(true);
  }
  const operationId = op?.operationId ?? '';
  validated.set(operationId, (validated.get(operationId) ?? new Set()).add(status));
  return body;
}

/** A request to a documented route (`{name}` filled from `params`), its answer checked. */
async function call(
  method: Method,
  template: string,
  o: { params?: Record<string, string>; query?: string; body?: unknown; type?: string; auth?: string | null; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const path = template.replace(/\{(\w+)\}/g, (_m, name: string) => encodeURIComponent(o.params?.[name] ?? name));
  const headers: Record<string, string> = { ...o.headers };
  const auth = o.auth === undefined ? API_KEY : o.auth;
  if (auth !== null) headers.authorization = `Bearer ${auth}`;
  let body: BodyInit | undefined;
  if (o.body instanceof Uint8Array || typeof o.body === 'string') body = o.body as BodyInit;
  else if (o.body !== undefined) body = JSON.stringify(o.body);
  if (body !== undefined) headers['content-type'] = o.type ?? 'application/json';
  const res = await fetch(`${server.url}${path}${o.query ?? ''}`, { method: method.toUpperCase(), headers, body });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: check(method, template, res.status, res.headers.get('content-type') ?? '', text) };
}

/** A WebSocket upgrade request (fetch cannot send one), its answer checked. */
function upgrade(template: string, query: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${server.url}${template}${query}`, {
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': Buffer.alloc(16, 1).toString('base64') },
      timeout: WAIT_MS,
    });
    req.on('timeout', () => req.destroy(new Error('no answer to the upgrade')));
    req.on('error', reject);
    req.on('upgrade', (_res, socket) => {
      socket.destroy();
      resolve(101);
    });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        try {
          check('get', template, res.statusCode ?? 0, res.headers['content-type'] ?? '', text);
          resolve(res.statusCode ?? 0);
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      });
    });
    req.end();
  });
}

/** A receiver on an in-memory transport; its first chunk once `publish` ran. */
async function receiver(endpointId: string): Promise<{ rx: ReceiverCore; link: MemoryTransport; first: Promise<Chunk> }> {
  const [g, link] = MemoryTransport.pair();
  const rx = new ReceiverCore({ endpointId, dial: async () => (gateway.accept(g, { endpointId }), link) });
  receivers.push(rx);
  const first = withDeadline(new Promise<Chunk>((resolve) => rx.once('chunk', resolve)), WAIT_MS, `${endpointId}'s first chunk`);
  await rx.connect();
  return { rx, link, first };
}

beforeAll(async () => {
  gateway = createGateway({ logLevel: 'silent', maxBodyBytes: 64 * 1024, rate: { ingestWaitMs: 200 } });
  server = await serve(gateway, { apiKey: API_KEY, host: '127.0.0.1', port: 0 });
  const res = await fetch(`${server.url}/openapi.json`);
  expect(res.status).toBe(200);
  doc = (await res.json()) as OpenApiDoc;
  ajv = new Ajv2020({ allErrors: true, strict: true });
  addFormats(ajv);
  ajv.addFormat('base64', true); // zod's z.base64() says format "base64" (not a standard format); its pattern checks
  ajv.addVocabulary(['openapi', 'info', 'paths', 'components', 'security', 'servers', 'tags', 'webhooks', 'jsonSchemaDialect', 'externalDocs']);
  ajv.addSchema(doc, 'openapi.json');
});

afterAll(async () => {
  for (const rx of receivers) rx.close();
  await gateway.close();
  await server.close();
});

describe('the OpenAPI contract of the HTTP API', () => {
  it('is a valid OpenAPI 3.1 document by a standard validator, and the validator refuses a broken one', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc) as unknown as Record<string, unknown>);
    expect(result.errors ?? []).toEqual([]);
    expect([result.valid, validator.version]).toEqual([true, '3.1']);
    const broken = structuredClone(doc) as unknown as { paths: Record<string, { get?: { responses: Record<string, { description?: string }> } }> };
    delete broken.paths['/healthz']?.get?.responses['200']?.description; // a response must have one
    expect((await new Validator().validate(broken as unknown as Record<string, unknown>)).valid).toBe(false);
    await call('get', '/openapi.json', { auth: null });
  });

  it('the answer check catches drift: an unknown field, or a code the status does not carry', () => {
    const info = ajv.getSchema(`openapi.json#/components/schemas/StreamInfo`);
    expect(info?.({ stream_id: 's' })).toBe(false);
    const notFound = ajv.getSchema(`openapi.json#/paths/${pointer('/v1/streams/{id}')}/get/responses/404/content/application~1json/schema`);
    expect(notFound?.({ error: { code: 'MS_STREAM_NOT_FOUND', message: 'no' } })).toBe(true);
    expect(notFound?.({ error: { code: 'MS_ENDPOINT_NOT_FOUND', message: 'no' } })).toBe(false);
    expect(notFound?.({ error: { code: 'MS_STREAM_NOT_FOUND', message: 'no', extra: 1 } })).toBe(false);
  });

  it('names every route the app serves, and the app serves every route it names', () => {
    interface Layer {
      rawPath?: unknown;
      route?: { path: string; methods: Record<string, boolean> };
      handle?: { stack?: Layer[] };
    }
    const served = new Set<string>();
    const mounts: string[] = [];
    const walk = (stack: Layer[], base: string): void => {
      for (const layer of stack) {
        if (layer.route) for (const m of Object.keys(layer.route.methods)) served.add(`${m} ${base}${layer.route.path.replace(/:(\w+)/g, '{$1}')}`);
        else if (layer.handle?.stack) walk(layer.handle.stack, `${base}${String(layer.rawPath)}`);
        else if (typeof layer.rawPath === 'string' && layer.rawPath !== '/') mounts.push(`${base}${layer.rawPath}`);
      }
    };
    walk((createHttpApp(gateway, { apiKey: API_KEY }) as unknown as { router: { stack: Layer[] } }).router.stack, '');
    const documented = new Set(Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item).map((m) => `${m} ${path}`)));
    expect(served.size).toBeGreaterThan(20);
    expect([...served].filter((r) => !documented.has(r))).toEqual([]);
    for (const mount of mounts) expect([...documented].some((r) => r.startsWith(`get ${mount}/`)), `the middleware at ${mount}`).toBe(true);
    // the tunnel and the streaming ingest are the upgrade listener's (tested below); the SDK is served when it is built
    expect([...documented].filter((r) => !served.has(r) && r !== 'get /v1/wt' && r !== 'get /v1/ingest' && r !== 'get /sdk/{file}')).toEqual([]);
  });

  it('health, readiness, metrics and the SDK answer as documented', async () => {
    expect((await call('get', '/healthz', { auth: null })).json).toMatchObject({ status: 'ok' });
    expect((await call('get', '/readyz', { auth: null })).status).toBe(200);
    expect((await call('get', '/metrics', { auth: null })).status).toBe(200);
    expect(code(await call('get', '/sdk/{file}', { params: { file: 'no-such-file.js' }, auth: null }))).toBe('MS_NOT_FOUND');
  });

  it('stream and endpoint-list routes: answers and errors', async () => {
    expect(code(await call('post', '/v1/streams', { body: { stream_id: 's1', endpoint_list: [] }, auth: null }))).toBe('MS_UNAUTHORIZED');
    const created = await call('post', '/v1/streams', { body: { stream_id: 's1', endpoint_list: ['e1', 'e2'], mode: 'mirror', mirror_k: 1 } });
    expect([created.status, created.headers.get('location')]).toEqual([201, '/v1/streams/s1']);
    expect(code(await call('post', '/v1/streams', { body: { stream_id: 's1', endpoint_list: [] } }))).toBe('MS_STREAM_EXISTS');
    expect(code(await call('post', '/v1/streams', { body: { stream_id: 's2', endpoint_list: ['a', 'a'] } }))).toBe('MS_BAD_REQUEST');
    expect(code(await call('post', '/v1/streams', { body: 'stream_id=s2', type: 'text/plain' }))).toBe('MS_UNSUPPORTED_MEDIA_TYPE');
    expect((await call('get', '/v1/streams')).status).toBe(200);
    expect(code(await call('get', '/v1/streams', { auth: 'wrong-key' }))).toBe('MS_UNAUTHORIZED');
    expect((await call('get', '/v1/streams/{id}', { params: { id: 's1' } })).json).toMatchObject({ stream_id: 's1', mirror_k: 1 });
    expect(code(await call('get', '/v1/streams/{id}', { params: { id: 'nope' } }))).toBe('MS_STREAM_NOT_FOUND');
    const s1 = { id: 's1' };
    expect((await call('post', '/v1/streams/{id}/endpoints', { params: s1, body: { endpoint_id: 'e3', priority: 0 } })).status).toBe(201);
    expect(code(await call('post', '/v1/streams/{id}/endpoints', { params: s1, body: { endpoint_id: 'e3' } }))).toBe('MS_ENDPOINT_EXISTS');
    expect((await call('put', '/v1/streams/{id}/endpoints', { params: s1, body: { endpoint_list: ['e1', 'e2', 'e3'] } })).status).toBe(200);
    expect(code(await call('put', '/v1/streams/{id}/endpoints', { params: s1, body: { endpoint_list: ['e1'] } }))).toBe('MS_ENDPOINT_LIST_INVALID');
    const removed = await call('delete', '/v1/streams/{id}/endpoints/{endpoint_id}', { params: { id: 's1', endpoint_id: 'e3' } });
    expect(removed.status).toBe(200);
    expect(code(await call('delete', '/v1/streams/{id}/endpoints/{endpoint_id}', { params: { id: 's1', endpoint_id: 'e3' } }))).toBe('MS_ENDPOINT_NOT_FOUND');
    expect((await call('put', '/v1/streams/{id}/policy', { params: s1, body: { overflow: 'drop-oldest' } })).json).toMatchObject({ policy: { overflow: 'drop-oldest' } });
    expect(code(await call('put', '/v1/streams/{id}/policy', { params: s1, body: { overflow: 'sample' } }))).toBe('MS_BAD_REQUEST');
    expect((await call('delete', '/v1/streams/{id}', { params: s1 })).status).toBe(204);
    expect(code(await call('delete', '/v1/streams/{id}', { params: s1 }))).toBe('MS_STREAM_NOT_FOUND');
  });

  it('chunks in every body format, and their errors', async () => {
    await call('post', '/v1/streams', { body: { stream_id: 'c1', endpoint_list: [] } });
    const c1 = { id: 'c1' };
    const batch = { chunks: [{ payload: 'a' }, { json: { px: 1 }, key: 'k' }, { payload_base64: 'AQID', layer: 1 }] };
    expect((await call('post', '/v1/streams/{id}/chunks', { params: c1, body: batch, headers: { 'idempotency-key': 'b-1' } })).json).toEqual({ stream_id: 'c1', first_seq: 1, last_seq: 3, count: 3 });
    const msgpack = pack({ chunks: [{ payload: new Uint8Array([1, 2]) }, { payload: 'text' }] });
    expect((await call('post', '/v1/streams/{id}/chunks', { params: c1, body: msgpack, type: 'application/msgpack' })).json).toMatchObject({ first_seq: 4, last_seq: 5 });
    const raw = await call('post', '/v1/streams/{id}/chunks', { params: c1, query: '?key=k&layer=2', body: new Uint8Array([7]), type: 'application/octet-stream' });
    expect(raw.json).toMatchObject({ first_seq: 6, last_seq: 6 });
    expect(code(await call('post', '/v1/streams/{id}/chunks', { params: c1, body: { chunks: [{ payload: 'a', json: 1 }] } }))).toBe('MS_BAD_REQUEST');
    expect(code(await call('post', '/v1/streams/{id}/chunks', { params: c1, body: batch, headers: { 'idempotency-key': 'has space' } }))).toBe('MS_BAD_REQUEST');
    expect(code(await call('post', '/v1/streams/{id}/chunks', { params: c1, body: 'a', type: 'text/plain' }))).toBe('MS_UNSUPPORTED_MEDIA_TYPE');
    expect(code(await call('post', '/v1/streams/{id}/chunks', { params: c1, body: { chunks: [{ payload: 'x'.repeat(70_000) }] } }))).toBe('MS_PAYLOAD_TOO_LARGE');
    expect(code(await call('post', '/v1/streams/{id}/chunks', { params: { id: 'nope' }, body: batch }))).toBe('MS_STREAM_NOT_FOUND');
  });

  it('health of a stream and an endpoint with a live receiver, and 429 with Retry-After under backpressure', async () => {
    await call('post', '/v1/streams', { body: { stream_id: 'live', endpoint_list: ['rx', 'standby'], policy: { overflow: 'backpressure', max_backlog_ms: 20 } } });
    const live = { id: 'live' };
    const { rx, link, first } = await receiver('rx');
    await call('post', '/v1/streams/{id}/chunks', { params: live, body: { chunks: [{ payload: 'one' }] } });
    expect((await first).seq).toBe(1);
    const health = await call('get', '/v1/streams/{id}/health', { params: live });
    expect(health.json).toMatchObject({ active: ['rx'], switches: [{ to: 'rx', reason: 'initial' }] });
    expect(code(await call('get', '/v1/streams/{id}/health', { params: { id: 'nope' } }))).toBe('MS_STREAM_NOT_FOUND');
    expect((await call('get', '/v1/endpoints/{id}/health', { params: { id: 'rx' } })).json).toMatchObject({ connected: true, transport: { kind: 'memory' } });
    expect((await call('get', '/v1/endpoints/{id}/health', { params: { id: 'standby' } })).json).toMatchObject({ connected: false, transport: null });
    expect(code(await call('get', '/v1/endpoints/{id}/health', { params: { id: 'ghost' } }))).toBe('MS_ENDPOINT_NOT_FOUND');
    expect((await call('get', '/v1/endpoints')).status).toBe(200);
    expect(code(await call('get', '/v1/endpoints', { auth: null }))).toBe('MS_UNAUTHORIZED');

    link.blackhole = true; // no more acks: the backlog grows past max_backlog_ms
    let held: Answer | undefined;
    for (const deadline = Date.now() + WAIT_MS; !held && Date.now() < deadline; ) {
      const a = await call('post', '/v1/streams/{id}/chunks', { params: live, body: { chunks: [{ payload: 'more' }] } });
      if (a.status === 429) held = a;
    }
    expect(held && [code(held), held.headers.get('retry-after')]).toEqual(['MS_BACKPRESSURE', '1']);
    expect((await call('delete', '/v1/streams/{id}', { params: live })).status).toBe(204);
    rx.close();
  });

  it('tokens and signaling: answers and errors', async () => {
    const w1 = { id: 'w1' };
    expect((await call('post', '/v1/endpoints/{id}/token', { params: w1 })).status).toBe(201);
    expect(code(await call('post', '/v1/endpoints/{id}/token', { params: w1, body: { ttl_s: 0 } }))).toBe('MS_BAD_REQUEST');
    const token = String((await call('post', '/v1/endpoints/{id}/token', { params: w1, body: { ttl_s: 60 } })).json?.token);
    expect((await call('options', '/v1/endpoints/{id}/webrtc', { params: w1, auth: null })).status).toBe(204);
    expect((await call('options', '/v1/endpoints/{id}/webrtc/{session}', { params: { id: 'w1', session: 's' }, auth: null })).status).toBe(204);
    expect(code(await call('post', '/v1/endpoints/{id}/webrtc', { params: w1, body: 'v=0', type: 'application/sdp', auth: null }))).toBe('MS_UNAUTHORIZED');
    expect(code(await call('post', '/v1/endpoints/{id}/webrtc', { params: w1, body: 'v=0', type: 'text/plain', auth: token }))).toBe('MS_UNSUPPORTED_MEDIA_TYPE');
    expect(code(await call('post', '/v1/endpoints/{id}/webrtc', { params: w1, body: 'not sdp', type: 'application/sdp', auth: token }))).toBe('MS_BAD_REQUEST');
    expect(code(await call('delete', '/v1/endpoints/{id}/webrtc/{session}', { params: { id: 'w1', session: 'nope' }, auth: token }))).toBe('MS_SESSION_NOT_FOUND');
    expect((await call('options', '/v1/endpoints/{id}/webtransport', { params: w1, auth: null })).status).toBe(204);
    expect(code(await call('post', '/v1/endpoints/{id}/webtransport', { params: w1, auth: 'not-a-token' }))).toBe('MS_UNAUTHORIZED');
    const ticket = await call('post', '/v1/endpoints/{id}/webtransport', { params: w1, auth: token });
    expect(ticket.status).toBe(201);
    expect(await upgrade('/v1/wt', '?ticket=made-up')).toBe(401);
    // the streaming ingest without the API key (its frames: test/integration/ingest-stream.test.ts)
    expect(await upgrade('/v1/ingest', '')).toBe(401);
  });

  it('after close: readiness 503 with its own body, state changes 503 MS_GATEWAY_CLOSED', async () => {
    await gateway.close();
    expect((await call('get', '/readyz', { auth: null })).json).toMatchObject({ ready: false, status: 'draining' });
    expect(code(await call('post', '/v1/streams', { body: { stream_id: 'late', endpoint_list: [] } }))).toBe('MS_GATEWAY_CLOSED');
  });

  it('every JSON route had a success and an error answer validated (the tests above)', () => {
    const missing: string[] = [];
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const statuses = Object.entries(op.responses);
        const json = statuses.some(([s, r]) => s.startsWith('2') && r.content?.['application/json']);
        const errors = statuses.some(([s]) => s.startsWith('4'));
        const seen = [...(validated.get(op.operationId) ?? [])];
        if (json && !seen.some((s) => s < 300)) missing.push(`${method} ${path}: a success`);
        if (json && errors && !seen.some((s) => s >= 400 && s < 500)) missing.push(`${method} ${path}: an error`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('the schemas of answers typed elsewhere match those types (checked by tsc, in npm test)', () => {
    /** Every property path of a type ("a", "a.b", through arrays and nulls), to compare two types' fields. */
    type Paths<T> = T extends readonly (infer E)[] ? Paths<E> : T extends object ? { [K in keyof T & string]-?: K | `${K}.${Paths<NonNullable<T[K]>>}` }[keyof T & string] : never;
    expectTypeOf<z.output<typeof batchResultSchema>>().toEqualTypeOf<BatchResult>();
    expectTypeOf<z.output<typeof issuedTokenSchema>>().toEqualTypeOf<IssuedToken>();
    expectTypeOf<z.output<typeof webTransportTicketSchema>>().toEqualTypeOf<WebTransportTicket>();
    // these two hold the core's types (and phi may be Infinity, null in JSON): same fields, and every value fits
    expectTypeOf<Paths<z.output<typeof streamHealthSchema>>>().toEqualTypeOf<Paths<StreamHealth>>();
    expectTypeOf<StreamHealth>().toExtend<z.input<typeof streamHealthSchema>>();
    expectTypeOf<Paths<z.output<typeof endpointHealthSchema>>>().toEqualTypeOf<Paths<EndpointHealth>>();
    expectTypeOf<EndpointHealth>().toExtend<z.input<typeof endpointHealthSchema>>();
  });
});
