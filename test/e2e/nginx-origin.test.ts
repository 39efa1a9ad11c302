import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'puppeteer-core';
import { createGateway, serve, type Gateway, type RunningServer } from '../../gateway/src/index.js';
import { testCertificate, type TestCertificate } from '../helpers/certs.js';
import { runCli } from '../helpers/cli.js';
import { BROWSERS, browserFacingAddress, launchBrowser, watchPageNetwork, type BrowserName } from '../helpers/browsers.js';
import { openReceiverPage, pageChunks } from '../helpers/chromium.js';
import { freePort, startNats, type NatsServer } from '../helpers/nats.js';
import { renderDeployConfig, startNginx, type Nginx } from '../helpers/nginx.js';
import { eventually, until } from '../helpers/poll.js';

/**
 * One public origin: Debian's nginx runs deploy/nginx/nginx.conf (only the addresses and the
 * certificate paths swapped) with a test certificate in front of two gateway instances on one
 * nats-server (JetStream), as docker-compose.yml deploys them. Chromium trusts nginx's
 * certificate only, not the gateways' WebTransport certificates; Firefox is told to accept
 * certificates it cannot verify (WebDriver's acceptInsecureCerts), so that every URL a page
 * contacts is the origin is checked from the page's own network. A page on https://<nginx>
 * receives over WebRTC through /gw1, one over the WebSocket tunnel through /gw2, the producer's
 * API goes through /. Then instance 1 drains: / answers from instance 2, and the WebRTC page
 * moves to /gw2 (GOAWAY) and goes on.
 */
const API_KEY = 'nginx-e2e-key-0123456789';

let dir: string;
let cert: TestCertificate;
let nats: NatsServer;
let gateways: [Gateway, Gateway];
let servers: [RunningServer, RunningServer];
let nginx: Nginx;
let origin: string;
let browser: Browser;
let closeBrowser: () => Promise<void>;

/** A request to the public origin from Node, trusting the test certificate. */
function viaOrigin(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(`${origin}${path}`, {
      method,
      ca: cert.cert,
      headers: { authorization: `Bearer ${API_KEY}`, ...(payload ? { 'content-type': 'application/json' } : {}), ...headers },
      timeout: 10_000,
    });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text ? (JSON.parse(text) as unknown) : undefined }));
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in 10 s`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** POSTs answered 503 (a draining instance) and retried. */
let publishRetries = 0;

/** Publish a batch through the origin as a producer does: a 503 (a draining instance; nginx does not retry POSTs) is retried with the same Idempotency-Key. */
async function publish(streamId: string, chunks: unknown[], key: string): Promise<{ first_seq: number; last_seq: number }> {
  class Draining extends Error {}
  return eventually(
    async () => {
      const answer = await viaOrigin('POST', `/v1/streams/${streamId}/chunks`, { chunks }, { 'idempotency-key': key });
      if (answer.status === 200) return answer.json as { first_seq: number; last_seq: number };
      const error = `publish ${key}: ${answer.status} ${JSON.stringify(answer.json)}`;
      throw answer.status === 503 ? new Draining(error) : new Error(error);
    },
    2_000,
    `publish ${key}`,
    { everyMs: 50, retryIf: (error) => error instanceof Draining, onRetry: () => publishRetries++ },
  );
}

async function setUp(browserName: BrowserName): Promise<void> {
  publishRetries = 0;
  dir = mkdtempSync(join(tmpdir(), 'mirrorstream-nginx-'));
  cert = await testCertificate(dir);
  nats = await startNats();
  // two instances on one JetStream; each WebTransport listener keeps its own self-signed
  // certificate, which Chromium does not trust
  const instance = (): Gateway =>
    createGateway({
      logLevel: 'silent',
      webrtc: { bindAddress: browserFacingAddress(browserName) },
      trustProxy: ['loopback'],
      tokens: { secret: 'nginx-e2e-token-secret-0123456789abcdef' },
      log: { kind: 'jetstream', nats: { servers: [nats.url], prefix: 'ngx', requestTimeoutMs: 2_000 } },
    });
  gateways = [instance(), instance()];
  await Promise.all(gateways.map((g) => g.start()));
  servers = [await serve(gateways[0], { apiKey: API_KEY, host: '127.0.0.1', port: 0 }), await serve(gateways[1], { apiKey: API_KEY, host: '127.0.0.1', port: 0 })];
  const nginxPort = await freePort();
  nginx = await startNginx(dir, renderDeployConfig([servers[0].port, servers[1].port], nginxPort, cert), nginxPort);
  origin = `https://127.0.0.1:${nginxPort}`;
  ({ browser, close: closeBrowser } = await launchBrowser(browserName, { trustSpki: cert.spki }));
}

async function tearDown(): Promise<void> {
  await closeBrowser?.();
  await nginx?.close();
  for (const g of gateways ?? []) await g.close();
  for (const s of servers ?? []) await s.close();
  await nats?.close();
  rmSync(dir, { recursive: true, force: true });
}

/** The instance whose connection serves `endpointId` uses `transport` for it (a prefix reached its own instance). */
function servedBy(g: Gateway, endpointId: string, transport: string): boolean {
  try {
    return g.endpointHealth(endpointId).transport?.kind === transport;
  } catch {
    return false;
  }
}

async function allChunks(page: Page, total: number): Promise<number[]> {
  let got: [number, number][] = [];
  await until(async () => (got = await pageChunks(page)).length >= total, 20_000, `${total} chunks in the page`, { everyMs: 50, state: () => `${got.length}, last ${got.at(-1)?.[0]}` });
  return got.map(([seq]) => seq);
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe.each(BROWSERS)('one public origin behind nginx (TLS at nginx), two instances, %s', (browserName) => {
  beforeAll(() => setUp(browserName), 60_000);
  afterAll(tearDown);

  it('a page on https:// receives over WebRTC (/gw1) and the tunnel (/gw2); instance 1 drains: / answers from instance 2, the WebRTC page moves to /gw2; mirrorstream publish streams in through /; every URL it contacts is the origin', async () => {
    const created = await viaOrigin('POST', '/v1/streams', { stream_id: 'behind-nginx', mode: 'mirror', endpoint_list: ['rtc', 'tunnel'] });
    expect(created.status).toBe(201);
    let rtcNetwork: (() => Promise<string[]>) | undefined;
    let tunnelNetwork: (() => Promise<string[]>) | undefined;
    const { token: rtcToken } = await gateways[0].issueToken('rtc');
    const { token: tunnelToken } = await gateways[0].issueToken('tunnel');
    const rtcPage = await openReceiverPage(browser, { gatewayUrl: [`${origin}/gw1`, `${origin}/gw2`], endpointId: 'rtc', token: rtcToken, transports: ['webrtc'], beforeLoad: async (page) => void (rtcNetwork = await watchPageNetwork(page)) });
    const tunnelPage = await openReceiverPage(browser, { gatewayUrl: `${origin}/gw2`, endpointId: 'tunnel', token: tunnelToken, transports: ['webtransport'], beforeLoad: async (page) => void (tunnelNetwork = await watchPageNetwork(page)) });
    expect(await rtcPage.evaluate(() => (window as unknown as { transport: string }).transport)).toBe('webrtc');
    expect(await tunnelPage.evaluate(() => (window as unknown as { transport: string }).transport)).toBe('webtransport');
    // each prefix reached its own instance
    await until(() => servedBy(gateways[0], 'rtc', 'webrtc') && servedBy(gateways[1], 'tunnel', 'webtransport'), 10_000, 'rtc on instance 1, tunnel on instance 2');

    let batch = 0;
    const publishRange = async (from: number, to: number): Promise<void> => {
      for (let first = from; first <= to; first += 250) {
        const chunks = range(first, Math.min(to, first + 249)).map((tick) => ({ json: { tick } }));
        const r = await publish('behind-nginx', chunks, `batch-${++batch}`);
        expect(r.first_seq).toBe(first);
      }
    };
    await publishRange(1, 1_000);
    expect(await allChunks(rtcPage, 1_000)).toEqual(range(1, 1_000));
    expect(await allChunks(tunnelPage, 1_000)).toEqual(range(1, 1_000));

    // instance 1 drains (SIGTERM does this), its HTTP port still open: / goes to instance 2
    await gateways[0].close();
    const direct = await fetch(`${servers[0].url}/readyz`);
    expect(direct.status).toBe(503);
    const second = gateways[1].status().instance_id;
    for (let i = 0; i < 6; i++) expect(await viaOrigin('GET', '/readyz')).toEqual({ status: 200, json: { ready: true, status: 'ready', instance_id: second } });
    // GOAWAY: the WebRTC page dials its next URL, /gw2, and resumes there
    await until(() => servedBy(gateways[1], 'rtc', 'webrtc'), 15_000, 'rtc moved to instance 2');
    await publishRange(1_001, 1_500);
    expect(await allChunks(rtcPage, 1_500)).toEqual(range(1, 1_500));
    expect(await allChunks(tunnelPage, 1_500)).toEqual(range(1, 1_500));
    // a producer through the origin: `mirrorstream publish` on the streaming ingest (a WebSocket
    // upgrade of GET /v1/ingest), trusting the test CA as a user does (NODE_EXTRA_CA_CERTS)
    const lines = range(1_501, 2_000).map((tick) => JSON.stringify({ tick }));
    const cli = await runCli(['publish', 'behind-nginx', '--ndjson', '--verbose'], {
      env: { MIRRORSTREAM_URL: origin, MIRRORSTREAM_API_KEY: API_KEY, NODE_EXTRA_CA_CERTS: cert.certFile },
      input: `${lines.join('\n')}\n`,
    });
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { seq: number }).seq)).toEqual(range(1_501, 2_000));
    expect(await allChunks(rtcPage, 2_000)).toEqual(range(1, 2_000));
    expect(await allChunks(tunnelPage, 2_000)).toEqual(range(1, 2_000));
    // the session DELETE on close goes through /gw2 (nginx rewrites the gateway's Location): nginx logged it (204, or
    // 404 when the closed channels ended the session first) before the page goes
    const deleteLine = / "DELETE \/gw2\/v1\/endpoints\/rtc\/webrtc\/[\w-]+ HTTP\/1\.1" (204|404) /;
    await rtcPage.evaluate(() => (window as unknown as { rx: { close(): void } }).rx.close());
    await until(async () => (await nginx.accessLog()).some((l) => deleteLine.test(l)), 5_000, 'the DELETE in nginx\'s access log', { everyMs: 50 });
    const urls = [...((await rtcNetwork?.()) ?? []), ...((await tunnelNetwork?.()) ?? [])];
    await rtcPage.close();
    await tunnelPage.close();

    const origins = [...new Set(urls.map((u) => new URL(u).origin))].sort();
    const nginxPort = new URL(origin).port;
    console.log(`[nginx origin, ${browserName}] the pages made ${urls.length} requests and connections, to ${origins.join(', ')}; ${batch} producer batches, ${publishRetries} retried after a 503`);
    expect(origins).toEqual([origin, `wss://127.0.0.1:${nginxPort}`]);
    // one slash: the bundle's tunnel joins host and path without a second one (scripts/build-browser.ts)
    expect(urls.filter((u) => u.startsWith('wss:')).length).toBeGreaterThan(0);
    expect(urls.filter((u) => u.startsWith('wss:')).every((u) => /^wss:\/\/127\.0\.0\.1:\d+\/gw2\/v1\/wt\?ticket=/.test(u))).toBe(true);
    expect(urls.some((u) => u === `${origin}/gw1/sdk/mirrorstream-receiver.js`)).toBe(true);
    // nginx's own account (a WebSocket is logged once it closed): the tunnel upgraded (101), the
    // WebRTC offer answered on /gw1 and, after the move, on /gw2, and the session's DELETE went
    // through the prefix (204, or 404 when the closed channels ended the session first)
    const tunnelLine = / "GET \/gw2\/v1\/wt\?ticket=\S+ HTTP\/1\.1" 101 /;
    let log: string[] = [];
    await until(async () => (log = await nginx.accessLog()).some((l) => tunnelLine.test(l)), 5_000, 'the tunnel in nginx\'s access log', { everyMs: 100 });
    expect(log.some((l) => / "POST \/gw1\/v1\/endpoints\/rtc\/webrtc HTTP\/1\.1" 201 /.test(l))).toBe(true);
    expect(log.some((l) => / "POST \/gw2\/v1\/endpoints\/rtc\/webrtc HTTP\/1\.1" 201 /.test(l))).toBe(true);
    expect(log.some((l) => deleteLine.test(l))).toBe(true);
    expect(log.some((l) => / "GET \/v1\/ingest HTTP\/1\.1" 101 /.test(l)), 'the streaming ingest upgraded through the origin').toBe(true);
  }, 120_000);
});
