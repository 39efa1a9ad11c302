import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pack } from 'msgpackr';
import { createGateway, MemoryTransport, serve, type Gateway, type RunningServer } from '../../gateway/src/index.js';
import { ReceiverCore, type Chunk } from '../../receiver-sdk/src/index.js';
import { harness } from '../helpers/memory-harness.js';
import { until } from '../helpers/poll.js';

const API_KEY = 'test-key-0123456789abcdef';
let gateway: Gateway;
let server: RunningServer;

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}, url = server.url) {
  const init: RequestInit = { method, headers: { authorization: `Bearer ${API_KEY}`, ...headers } };
  if (body !== undefined) {
    if (body instanceof Uint8Array || typeof body === 'string') init.body = body as BodyInit;
    else {
      init.body = JSON.stringify(body);
      (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
    }
  }
  const res = await fetch(`${url}${path}`, init);
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
}

const code = (r: { json?: Record<string, unknown> }): unknown => (r.json?.error as { code?: string } | undefined)?.code;

beforeAll(async () => {
  gateway = createGateway({ logLevel: 'silent', maxBodyBytes: 64 * 1024, rate: { ingestWaitMs: 300 } });
  server = await serve(gateway, { apiKey: API_KEY, host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await gateway.close();
  await server.close();
});

describe('HTTP API over a real socket', () => {
  it('requires the API key on /v1 and answers 401 with a code', async () => {
    const res = await fetch(`${server.url}/v1/streams`);
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('MS_UNAUTHORIZED');
    expect(code(await call('GET', '/v1/streams', undefined, { authorization: 'Bearer wrong-key-0000000000' }))).toBe('MS_UNAUTHORIZED');
  });

  it('healthz is open and reports status', async () => {
    const res = await fetch(`${server.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ok', streams: expect.any(Number) });
  });

  it('creates, lists, reads, and deletes streams with the right codes', async () => {
    const created = await call('POST', '/v1/streams', { stream_id: 'api1', endpoint_list: ['e1', 'e2'], mode: 'failover' });
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe('/v1/streams/api1');
    expect(created.json).toMatchObject({ stream_id: 'api1', mode: 'failover', last_seq: 0 });
    expect((await call('POST', '/v1/streams', { stream_id: 'api1', endpoint_list: [] })).status).toBe(409);
    expect(code(await call('POST', '/v1/streams', { stream_id: 'api1', endpoint_list: [] }))).toBe('MS_STREAM_EXISTS');
    const list = await call('GET', '/v1/streams');
    expect((list.json?.streams as { stream_id: string }[]).map((s) => s.stream_id)).toContain('api1');
    expect((await call('GET', '/v1/streams/api1')).json).toMatchObject({ stream_id: 'api1' });
    expect(code(await call('GET', '/v1/streams/nope'))).toBe('MS_STREAM_NOT_FOUND');
    expect((await call('DELETE', '/v1/streams/api1')).status).toBe(204);
    expect((await call('DELETE', '/v1/streams/api1')).status).toBe(404);
  });

  it('rejects bad stream specs with 400 and unknown keys', async () => {
    for (const bad of [
      { endpoint_list: ['a'] },
      { stream_id: 'x y', endpoint_list: [] },
      { stream_id: 'x', endpoint_list: ['a', 'a'] },
      { stream_id: 'x', endpoint_list: [], mode: 'broadcast' },
      { stream_id: 'x', endpoint_list: [], mirror_k: 2 },
      { stream_id: 'x', endpoint_list: [], surprise: true },
    ]) {
      const r = await call('POST', '/v1/streams', bad);
      expect([r.status, code(r)]).toEqual([400, 'MS_BAD_REQUEST']);
    }
    const notJson = await call('POST', '/v1/streams', '{"stream_id":', { 'content-type': 'application/json' });
    expect([notJson.status, code(notJson)]).toEqual([400, 'MS_BAD_REQUEST']);
    const wrongType = await call('POST', '/v1/streams', 'stream_id=x', { 'content-type': 'text/plain' });
    expect([wrongType.status, code(wrongType)]).toEqual([415, 'MS_UNSUPPORTED_MEDIA_TYPE']);
  });

  it('adds, removes and reorders endpoints live', async () => {
    await call('POST', '/v1/streams', { stream_id: 'api2', endpoint_list: ['e1', 'e2'] });
    const added = await call('POST', '/v1/streams/api2/endpoints', { endpoint_id: 'e0', priority: 0 });
    expect(added.status).toBe(201);
    expect((added.json?.endpoint_list as { endpoint_id: string }[]).map((e) => e.endpoint_id)).toEqual(['e0', 'e1', 'e2']);
    expect(code(await call('POST', '/v1/streams/api2/endpoints', { endpoint_id: 'e0' }))).toBe('MS_ENDPOINT_EXISTS');
    expect(code(await call('POST', '/v1/streams/api2/endpoints', { endpoint_id: 'e 9' }))).toBe('MS_BAD_REQUEST');
    const reordered = await call('PUT', '/v1/streams/api2/endpoints', { endpoint_list: ['e2', 'e0', 'e1'] });
    expect((reordered.json?.endpoint_list as { endpoint_id: string }[]).map((e) => e.endpoint_id)).toEqual(['e2', 'e0', 'e1']);
    const mismatch = await call('PUT', '/v1/streams/api2/endpoints', { endpoint_list: ['e2', 'e0'] });
    expect([mismatch.status, code(mismatch)]).toEqual([422, 'MS_ENDPOINT_LIST_INVALID']);
    const removed = await call('DELETE', '/v1/streams/api2/endpoints/e0');
    expect((removed.json?.endpoint_list as { endpoint_id: string }[]).map((e) => e.endpoint_id)).toEqual(['e2', 'e1']);
    expect(code(await call('DELETE', '/v1/streams/api2/endpoints/e0'))).toBe('MS_ENDPOINT_NOT_FOUND');
  });

  it('ingests JSON, msgpack and raw chunks and a receiver gets them in order', async () => {
    await call('POST', '/v1/streams', { stream_id: 'api3', endpoint_list: ['rx'] });
    const got: Chunk[] = [];
    const rx = new ReceiverCore({
      endpointId: 'rx',
      dial: async () => {
        const [g, r] = MemoryTransport.pair();
        gateway.accept(g, { endpointId: 'rx' });
        return r;
      },
    });
    rx.on('chunk', (c) => got.push(c));
    await rx.connect();

    const json = await call('POST', '/v1/streams/api3/chunks', {
      chunks: [{ payload: 'hello' }, { json: { px: 101.5 }, key: 'AAPL' }, { payload_base64: Buffer.from([1, 2, 3]).toString('base64'), layer: 1 }],
    });
    expect(json.json).toEqual({ stream_id: 'api3', first_seq: 1, last_seq: 3, count: 3 });
    const mp = await call('POST', '/v1/streams/api3/chunks', pack({ chunks: [{ payload: new Uint8Array([9, 9]) }, { payload: 'text' }] }), {
      'content-type': 'application/msgpack',
    });
    expect(mp.json).toMatchObject({ first_seq: 4, last_seq: 5 });
    const raw = await call('POST', '/v1/streams/api3/chunks?key=k1&layer=2', new Uint8Array([7, 7, 7]), {
      'content-type': 'application/octet-stream',
    });
    expect(raw.json).toMatchObject({ first_seq: 6, last_seq: 6 });

    await until(() => got.length >= 6, 5_000, '6 chunks delivered', { state: () => got.map((c) => c.seq) });
    expect(got.map((c) => c.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    const text = new TextDecoder();
    expect(text.decode(got[0]?.payload)).toBe('hello');
    expect(JSON.parse(text.decode(got[1]?.payload))).toEqual({ px: 101.5 });
    expect(got[1]?.key).toBe('AAPL');
    expect([...(got[2]?.payload ?? [])]).toEqual([1, 2, 3]);
    expect(got[5]).toMatchObject({ key: 'k1', layer: 2 });
    rx.close();
  });

  it('answers bad chunk bodies with coded errors and loses nothing already stored', async () => {
    await call('POST', '/v1/streams', { stream_id: 'api4', endpoint_list: [] });
    const cases: [unknown, Record<string, string>, number, string][] = [
      [{ chunks: [] }, {}, 400, 'MS_BAD_REQUEST'],
      [{ chunks: [{ payload: 'a', json: 1 }] }, {}, 400, 'MS_BAD_REQUEST'],
      [{ chunks: [{ payload: 'a', layer: 99 }] }, {}, 400, 'MS_BAD_REQUEST'],
      [new Uint8Array([0xc1, 0xff]), { 'content-type': 'application/msgpack' }, 400, 'MS_BAD_REQUEST'],
      ['x'.repeat(70 * 1024), { 'content-type': 'application/octet-stream' }, 413, 'MS_PAYLOAD_TOO_LARGE'],
      ['abc', { 'content-type': 'text/csv' }, 415, 'MS_UNSUPPORTED_MEDIA_TYPE'],
      [new Uint8Array([1]), { 'content-type': 'application/octet-stream' }, 0, ''],
    ];
    for (const [body, headers, status, errCode] of cases) {
      const r = await call('POST', '/v1/streams/api4/chunks', body, headers);
      if (status === 0) expect(r.json).toMatchObject({ first_seq: 1, last_seq: 1 });
      else expect([r.status, code(r)]).toEqual([status, errCode]);
    }
    expect(code(await call('POST', '/v1/streams/none/chunks', { chunks: [{ payload: 'a' }] }))).toBe('MS_STREAM_NOT_FOUND');
    expect((await call('GET', '/v1/streams/api4')).json).toMatchObject({ last_seq: 1 });
  });

  it('changes the overflow policy live and answers 429 while a backpressured stream is held back', async () => {
    // on a manual clock: the backlog's age and the ingest wait are what the test steps, not real time
    const h = harness({ maxBodyBytes: 64 * 1024, rate: { ingestWaitMs: 300 } });
    const manual = await serve(h.gateway, { apiKey: API_KEY, host: '127.0.0.1', port: 0 });
    const at = (method: string, path: string, body?: unknown): ReturnType<typeof call> => call(method, path, body, {}, manual.url);
    try {
      await at('POST', '/v1/streams', { stream_id: 'bp', endpoint_list: ['slow'], policy: { overflow: 'backpressure', max_backlog_ms: 100 } });
      expect(code(await at('PUT', '/v1/streams/bp/policy', { overflow: 'sample' }))).toBe('MS_BAD_REQUEST');
      expect(code(await at('PUT', '/v1/streams/nope/policy', { overflow: 'conflate' }))).toBe('MS_STREAM_NOT_FOUND');
      const rx = await h.receiver('slow');
      await h.stepUntil(() => h.gateway.getStream('bp').active.length === 1, 1_000, 'slow active');
      rx.link()!.blackhole = true; // the endpoint stops acking
      expect((await at('POST', '/v1/streams/bp/chunks', { chunks: [{ payload: 'a' }] })).status).toBe(200);
      await h.step(150); // 'a' is now older than max_backlog_ms, unacked
      // held: the request waits ingestWaitMs (of the manual clock, stepped until it is answered), then 429
      let answered = false;
      const pending = at('POST', '/v1/streams/bp/chunks', { chunks: [{ payload: 'b' }] }).finally(() => (answered = true));
      await until(
        async () => {
          if (!answered) await h.step(10);
          return answered;
        },
        5_000,
        'the held request answered',
      );
      const held = await pending;
      expect([held.status, code(held)]).toEqual([429, 'MS_BACKPRESSURE']);
      const changed = await at('PUT', '/v1/streams/bp/policy', { overflow: 'drop-oldest', max_backlog_ms: 100 });
      expect(changed.json?.policy).toEqual({ overflow: 'drop-oldest', max_backlog_ms: 100, decimate_n: 2 });
      expect((await at('POST', '/v1/streams/bp/chunks', { chunks: [{ payload: 'c' }] })).status).toBe(200);
    } finally {
      await manual.close();
      await h.close();
    }
  });

  it('serves stream and endpoint health, and 404 for unknown ones and routes', async () => {
    await call('POST', '/v1/streams', { stream_id: 'api5', endpoint_list: ['h1'] });
    expect((await call('GET', '/v1/streams/api5/health')).json).toMatchObject({ stream_id: 'api5', status: 'down', switches: [] });
    expect(code(await call('GET', '/v1/streams/zzz/health'))).toBe('MS_STREAM_NOT_FOUND');
    const eps = await call('GET', '/v1/endpoints');
    expect((eps.json?.endpoints as { endpoint_id: string }[]).map((e) => e.endpoint_id)).toContain('h1');
    expect((await call('GET', '/v1/endpoints/h1/health')).json).toMatchObject({ endpoint_id: 'h1', connected: false, state: 'disconnected' });
    expect(code(await call('GET', '/v1/endpoints/ghost/health'))).toBe('MS_ENDPOINT_NOT_FOUND');
    expect(code(await call('GET', '/v1/nothing-here'))).toBe('MS_NOT_FOUND');
  });
});
