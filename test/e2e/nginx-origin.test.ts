import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'puppeteer-core';
import { createGateway, serve, type Gateway, type RunningServer } from '../../gateway/src/index.js';
import { testCertificate, type TestCertificate } from '../helpers/certs.js';
import { launchChromium, openReceiverPage, pageChunks, watchNetwork } from '../helpers/chromium.js';
import { freePort } from '../helpers/nats.js';
import { startNginx, type Nginx } from '../helpers/nginx.js';
import { waitFor } from '../helpers/webrtc-scenario.js';

/**
 * One public origin: Debian's nginx runs deploy/nginx/nginx.conf (only the addresses and the
 * certificate paths swapped) with a test certificate in front of a gateway; Chromium trusts
 * nginx's certificate only, not the gateway's WebTransport certificate. A page on
 * https://<nginx>/gw1 receives over WebRTC, one on /gw2 over the WebSocket tunnel, and the
 * producer's API goes through the same origin.
 */
const DEPLOY = join(dirname(fileURLToPath(import.meta.url)), '../../deploy/nginx');
const API_KEY = 'nginx-e2e-key-0123456789';

let dir: string;
let cert: TestCertificate;
let gateway: Gateway;
let server: RunningServer;
let nginx: Nginx;
let origin: string;
let browser: Browser;
let closeBrowser: () => Promise<void>;

/** deploy/nginx/nginx.conf with this test's addresses; each swap must find its line, so the file cannot drift from the test. */
function renderConfig(gatewayPort: number, nginxPort: number): string {
  let config = readFileSync(join(DEPLOY, 'nginx.conf'), 'utf8');
  const swaps: [string, string][] = [
    ['gateway1:8080', `127.0.0.1:${gatewayPort}`],
    ['gateway2:8080', `127.0.0.1:${gatewayPort}`],
    ['listen 443 ssl;', `listen 127.0.0.1:${nginxPort} ssl;`],
    ['/etc/nginx/certs/fullchain.pem', cert.certFile],
    ['/etc/nginx/certs/privkey.pem', cert.keyFile],
    ['include mirrorstream-proxy.conf;', `include ${join(DEPLOY, 'mirrorstream-proxy.conf')};`],
  ];
  for (const [from, to] of swaps) {
    if (!config.includes(from)) throw new Error(`deploy/nginx/nginx.conf has no "${from}"`);
    config = config.replaceAll(from, to);
  }
  return config;
}

/** A request to the public origin from Node, trusting the test certificate. */
function viaOrigin(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(`${origin}${path}`, {
      method,
      ca: cert.cert,
      headers: { authorization: `Bearer ${API_KEY}`, ...(payload ? { 'content-type': 'application/json' } : {}) },
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

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mirrorstream-nginx-'));
  cert = await testCertificate(dir);
  // the WebTransport listener keeps its own self-signed certificate, which Chromium does not trust
  gateway = createGateway({ logLevel: 'silent', webrtc: { bindAddress: '127.0.0.1' }, trustProxy: ['loopback'] });
  server = await serve(gateway, { apiKey: API_KEY, host: '127.0.0.1', port: 0 });
  const nginxPort = await freePort();
  nginx = await startNginx(dir, renderConfig(server.port, nginxPort), nginxPort);
  origin = `https://127.0.0.1:${nginxPort}`;
  ({ browser, close: closeBrowser } = await launchChromium([`--ignore-certificate-errors-spki-list=${cert.spki}`]));
}, 60_000);

afterAll(async () => {
  await closeBrowser?.();
  await nginx?.close();
  await gateway?.close();
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('one public origin behind nginx (TLS at nginx)', () => {
  it('Chromium on https:// receives over WebRTC (/gw1) and over the tunnel (/gw2); every URL it contacts is the origin', async () => {
    const created = await viaOrigin('POST', '/v1/streams', { stream_id: 'behind-nginx', mode: 'mirror', endpoint_list: ['rtc', 'tunnel'] });
    expect(created.status).toBe(201);
    const urls: string[] = [];
    const pages: Page[] = [];
    for (const [endpointId, base, transport] of [['rtc', '/gw1', 'webrtc'], ['tunnel', '/gw2', 'webtransport']] as const) {
      const { token } = await gateway.issueToken(endpointId);
      pages.push(await openReceiverPage(browser, { gatewayUrl: `${origin}${base}`, endpointId, token, transports: [transport], beforeLoad: (page) => watchNetwork(page, urls) }));
    }
    const [rtcPage, tunnelPage] = pages as [Page, Page];
    expect(await rtcPage.evaluate(() => (window as unknown as { transport: string }).transport)).toBe('webrtc');
    expect(await tunnelPage.evaluate(() => (window as unknown as { transport: string }).transport)).toBe('webtransport');
    await waitFor(() => gateway.getStream('behind-nginx').active.length === 2, 10_000, 'both endpoints active');

    const total = 1_000;
    for (let from = 1; from <= total; from += 250) {
      const batch = Array.from({ length: 250 }, (_, i) => ({ json: { tick: from + i } }));
      const published = await viaOrigin('POST', '/v1/streams/behind-nginx/chunks', { chunks: batch });
      expect(published.status).toBe(200);
    }
    const expected = Array.from({ length: total }, (_, i) => i + 1);
    for (const page of pages) {
      const deadline = Date.now() + 20_000;
      while ((await pageChunks(page)).length < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect((await pageChunks(page)).map(([seq]) => seq)).toEqual(expected);
    }
    expect(gateway.endpointHealth('rtc').transport?.kind).toBe('webrtc');
    expect(gateway.endpointHealth('tunnel').transport?.kind).toBe('webtransport');
    // the session DELETE on close goes through /gw1 too (nginx rewrites the gateway's Location)
    await rtcPage.evaluate(() => (window as unknown as { rx: { close(): void } }).rx.close());
    await new Promise((r) => setTimeout(r, 500));
    for (const page of pages) await page.close();

    const origins = [...new Set(urls.map((u) => new URL(u).origin))].sort();
    const nginxPort = new URL(origin).port;
    console.log(`[nginx origin] Chromium made ${urls.length} requests and connections, to ${origins.join(', ')}`);
    expect(origins).toEqual([origin, `wss://127.0.0.1:${nginxPort}`]);
    expect(urls.filter((u) => u.startsWith('wss:')).every((u) => /^wss:\/\/127\.0\.0\.1:\d+\/\/gw2\/v1\/wt\?ticket=/.test(u))).toBe(true);
    expect(urls.some((u) => u === `${origin}/gw1/sdk/mirrorstream-receiver.js`)).toBe(true);
    // nginx's own account (a WebSocket is logged once it closed): the tunnel upgraded (101), the
    // WebRTC offer answered, and the session's DELETE went through the prefix (204, or 404 when
    // the closed channels ended the session first)
    const tunnelLine = / "GET \/\/gw2\/v1\/wt\?ticket=\S+ HTTP\/1\.1" 101 /;
    let log: string[] = [];
    for (const deadline = Date.now() + 5_000; !log.some((l) => tunnelLine.test(l)) && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 100));
      log = await nginx.accessLog();
    }
    expect(log.some((l) => tunnelLine.test(l))).toBe(true);
    expect(log.some((l) => / "POST \/gw1\/v1\/endpoints\/rtc\/webrtc HTTP\/1\.1" 201 /.test(l))).toBe(true);
    expect(log.some((l) => / "DELETE \/gw1\/v1\/endpoints\/rtc\/webrtc\/[\w-]+ HTTP\/1\.1" (204|404) /.test(l))).toBe(true);
  }, 90_000);
});
