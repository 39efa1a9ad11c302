import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'puppeteer-core';
import { createGateway, serve, type Gateway, type RunningServer } from '../../gateway/src/index.js';
import { testCertificate } from '../helpers/certs.js';
import { BROWSERS, browserFacingAddress, launchBrowser, watchPageNetwork } from '../helpers/browsers.js';
import { openReceiverPage, pageChunks } from '../helpers/chromium.js';
import { until } from '../helpers/poll.js';

/**
 * The browser build of the SDK in real headless browsers, stock Chromium and Firefox ESR:
 * WebRTC with the native RTCPeerConnection (both hide host candidates behind .local names; the
 * gateway drops them and the peer-reflexive pair connects), and WebTransport through the
 * WebSocket tunnel to the gateway's HTTP/2 WebTransport (no HTTP/3 backend here), on a
 * certificate the browser is told to trust.
 *
 * Firefox pairs no loopback candidate with its own host candidates: its gateway's ICE listens
 * on this machine's own address (the packets never leave the machine); Chromium's on 127.0.0.1.
 */
describe.each(BROWSERS)('browser receiver SDK in headless %s', (browserName) => {
  let gateway: Gateway;
  let server: RunningServer;
  let browser: Browser;
  let closeBrowser: () => Promise<void>;
  let certDir: string;

  beforeAll(async () => {
    // a known certificate, so the browser can be told to accept it for the wss:// tunnel
    certDir = mkdtempSync(join(tmpdir(), 'mirrorstream-cert-'));
    const { certFile, keyFile, spki } = await testCertificate(certDir);
    gateway = createGateway({
      logLevel: 'silent',
      webrtc: { bindAddress: browserFacingAddress(browserName) },
      webtransport: { certFile, keyFile },
    });
    server = await serve(gateway, { apiKey: 'e2e-key-0123456789abcd', host: '127.0.0.1', port: 0 });
    ({ browser, close: closeBrowser } = await launchBrowser(browserName, { trustSpki: spki }));
  }, 60_000);

  afterAll(async () => {
    await closeBrowser?.();
    await gateway?.close();
    await server?.close();
    rmSync(certDir, { recursive: true, force: true });
  });

  async function browserReceiver(endpointId: string, transports: string[], watch?: (page: Page) => Promise<void>) {
    const { token } = await gateway.issueToken(endpointId);
    return openReceiverPage(browser, { gatewayUrl: server.url, endpointId, token, transports, ...(watch ? { beforeLoad: watch } : {}) });
  }

  it.each([['webrtc'], ['webtransport']])('receives a stream over %s in order', async (transport) => {
    const id = `browser-${transport}`;
    gateway.createStream({ stream_id: id, endpoint_list: [id] });
    const page = await browserReceiver(id, [transport]);
    expect(await page.evaluate(() => (window as unknown as { transport: string }).transport)).toBe(transport);
    await until(() => gateway.getStream(id).active.length === 1, 5_000, 'active');
    for (let i = 1; i <= 2_000; i++) await gateway.publish(id, `tick ${i}`);
    const seqs = async (): Promise<number[]> => (await pageChunks(page)).map(([seq]) => seq);
    await until(async () => (await seqs()).length >= 2_000, 20_000, '2 000 chunks in the page', { everyMs: 50 });
    expect(await seqs()).toEqual(Array.from({ length: 2_000 }, (_, i) => i + 1));
    expect(gateway.endpointHealth(id).transport?.kind).toBe(transport);
    await page.close();
  }, 60_000);

  it('contacts no host but the gateway: loading the SDK and receiving over WebRTC and over WebTransport', async () => {
    const gatewayHost = new URL(server.url).hostname;
    const contacted: string[] = [];
    for (const transport of ['webrtc', 'webtransport']) {
      const id = `browser-origins-${transport}`;
      gateway.createStream({ stream_id: id, endpoint_list: [id] });
      let network: (() => Promise<string[]>) | undefined;
      const page = await browserReceiver(id, [transport], async (p) => void (network = await watchPageNetwork(p)));
      await until(() => gateway.getStream(id).active.length === 1, 5_000, 'active');
      for (let i = 1; i <= 50; i++) await gateway.publish(id, `tick ${i}`);
      await until(async () => (await pageChunks(page)).length >= 50, 10_000, '50 chunks in the page', { everyMs: 50 });
      expect((await pageChunks(page)).length).toBe(50);
      // anything the library starts later (its periodic work: the first receiver report, 1 s in) shows up here too
      await until(() => gateway.endpointHealth(id).streams[0]?.receiver_report != null, 5_000, 'a receiver report from the page', { everyMs: 50 });
      contacted.push(...((await network?.()) ?? []));
      await page.close();
    }
    const origins = [...new Set(contacted.map((u) => new URL(u).origin))];
    console.log(`[${browserName}, browser origins] ${contacted.length} requests and connections, to ${origins.join(', ')}`);
    expect(origins.filter((o) => new URL(o).hostname !== gatewayHost)).toEqual([]);
    expect(contacted.some((u) => u.endsWith('/sdk/mirrorstream-receiver.js'))).toBe(true);
  }, 60_000);
});
