import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGateway, ManualClock, serve, type Gateway, type RunningServer } from '../../gateway/src/index.js';
import type { WebRtcEngine } from '../../gateway/src/transports/webrtc/index.js';
import { closeOnManualClock } from '../helpers/memory-harness.js';

const API_KEY = 'signaling-key-0123456789';
const OFFER = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n';
let gateway: Gateway;
let server: RunningServer;
const clock = new ManualClock(Date.now());
/** Counts what reaches the engine: a rejected request must never get here. */
const seen: string[] = [];
const engine: WebRtcEngine = {
  name: 'werift',
  answer: async (sdp) => {
    seen.push(sdp);
    return { answerSdp: 'v=0\r\nanswer\r\n', transport: new Promise(() => undefined) };
  },
  // no stream here has a listening endpoint: the gateway never offers
  offer: () => Promise.reject(new Error('not used here')),
};

beforeAll(async () => {
  gateway = createGateway({ logLevel: 'silent', clock, webrtcEngine: engine });
  server = await serve(gateway, { apiKey: API_KEY, host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await closeOnManualClock(gateway, clock);
  await server.close();
});

const offer = (id: string, headers: Record<string, string>, body = OFFER) =>
  fetch(`${server.url}/v1/endpoints/${id}/webrtc`, { method: 'POST', headers: { 'content-type': 'application/sdp', ...headers }, body });
const token = async (id: string, ttl?: number): Promise<string> => {
  const res = await fetch(`${server.url}/v1/endpoints/${id}/token`, {
    method: 'POST',
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(ttl === undefined ? {} : { ttl_s: ttl }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { token: string }).token;
};
const code = async (res: Response): Promise<[number, string]> => [res.status, ((await res.json()) as { error: { code: string } }).error.code];

describe('signaling authentication', () => {
  it('missing, malformed, expired and other-endpoint tokens are 401 and never reach the engine', async () => {
    expect(await code(await offer('ep1', {}))).toEqual([401, 'MS_UNAUTHORIZED']);
    expect(await code(await offer('ep1', { authorization: 'Bearer not.a.jwt' }))).toEqual([401, 'MS_UNAUTHORIZED']);
    expect(await code(await offer('ep1', { authorization: `Bearer ${API_KEY}` }))).toEqual([401, 'MS_UNAUTHORIZED']);
    expect(await code(await offer('ep1', { authorization: `Bearer ${await token('ep2')}` }))).toEqual([401, 'MS_UNAUTHORIZED']);
    const shortLived = await token('ep1', 1);
    clock.advance(2_000);
    const expired = await offer('ep1', { authorization: `Bearer ${shortLived}` });
    const body = (await expired.json()) as { error: { code: string; message: string } };
    expect([expired.status, body.error.code, body.error.message]).toEqual([401, 'MS_UNAUTHORIZED', 'endpoint token expired']);
    expect(seen).toEqual([]);
  });

  it('a valid token with a bad body gets 415/400, still without reaching the engine', async () => {
    const t = await token('ep1');
    const wrongType = await fetch(`${server.url}/v1/endpoints/ep1/webrtc`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t}`, 'content-type': 'text/plain' },
      body: OFFER,
    });
    expect(await code(wrongType)).toEqual([415, 'MS_UNSUPPORTED_MEDIA_TYPE']);
    expect(await code(await offer('ep1', { authorization: `Bearer ${t}` }, 'hello'))).toEqual([400, 'MS_BAD_REQUEST']);
    expect(seen).toEqual([]);
  });

  it('a valid token reaches the engine: 201, SDP answer and a Location to DELETE', async () => {
    const t = await token('ep1');
    const res = await offer('ep1', { authorization: `Bearer ${t}` });
    expect(res.status).toBe(201);
    expect(res.headers.get('content-type')).toMatch(/^application\/sdp/);
    expect(await res.text()).toBe('v=0\r\nanswer\r\n');
    const location = res.headers.get('location') ?? '';
    expect(location).toMatch(/^\/v1\/endpoints\/ep1\/webrtc\/[0-9a-f-]{36}$/);
    expect(seen).toHaveLength(1);
    const other = await token('ep2');
    expect(await code(await fetch(`${server.url}${location}`, { method: 'DELETE', headers: { authorization: `Bearer ${other}` } }))).toEqual([401, 'MS_UNAUTHORIZED']);
    expect((await fetch(`${server.url}${location}`, { method: 'DELETE', headers: { authorization: `Bearer ${t}` } })).status).toBe(204);
    expect(await code(await fetch(`${server.url}${location}`, { method: 'DELETE', headers: { authorization: `Bearer ${t}` } }))).toEqual([404, 'MS_SESSION_NOT_FOUND']);
  });

  it('token issuance needs the API key and validates its input', async () => {
    const noKey = await fetch(`${server.url}/v1/endpoints/ep1/token`, { method: 'POST' });
    expect(await code(noKey)).toEqual([401, 'MS_UNAUTHORIZED']);
    const bad = await fetch(`${server.url}/v1/endpoints/ep1/token`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ttl_s: -5 }),
    });
    expect(await code(bad)).toEqual([400, 'MS_BAD_REQUEST']);
    const badId = await fetch(`${server.url}/v1/endpoints/bad%20id/token`, { method: 'POST', headers: { authorization: `Bearer ${API_KEY}` } });
    expect(await code(badId)).toEqual([400, 'MS_BAD_REQUEST']);
  });
});
