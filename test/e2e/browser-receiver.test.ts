import { createHash, createPublicKey } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import selfsigned from 'selfsigned';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'puppeteer-core';
import { createGateway, serve, type Gateway, type RunningServer } from '../../gateway/src/index.js';
import { launchChromium, openReceiverPage, pageChunks } from '../helpers/chromium.js';
import { waitFor } from '../helpers/webrtc-scenario.js';

/**
 * The browser build of the SDK in real headless Chromium: WebRTC with the native
 * RTCPeerConnection (Chromium hides host candidates behind .local names; the gateway drops
 * them and the peer-reflexive 127.0.0.1 pair connects), and WebTransport through the
 * WebSocket tunnel to the gateway's HTTP/2 WebTransport (no HTTP/3 backend here).
 */
let gateway: Gateway;
let server: RunningServer;
let browser: Browser;
let closeBrowser: () => Promise<void>;
let certDir: string;

beforeAll(async () => {
  // a known certificate, so Chromium can be told to accept it for the wss:// tunnel
  certDir = mkdtempSync(join(tmpdir(), 'mirrorstream-cert-'));
  const pems = await selfsigned.generate([{ name: 'commonName', value: '127.0.0.1' }], {
    keyType: 'ec',
    curve: 'P-256',
    notAfterDate: new Date(Date.now() + 10 * 24 * 3600_000),
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
  });
  writeFileSync(join(certDir, 'cert.pem'), pems.cert);
  writeFileSync(join(certDir, 'key.pem'), pems.private);
  const spki = createHash('sha256').update(createPublicKey(pems.cert).export({ type: 'spki', format: 'der' })).digest('base64');
  gateway = createGateway({
    logLevel: 'silent',
    webrtc: { bindAddress: '127.0.0.1' },
    webtransport: { certFile: join(certDir, 'cert.pem'), keyFile: join(certDir, 'key.pem') },
  });
  server = await serve(gateway, { apiKey: 'e2e-key-0123456789abcd', host: '127.0.0.1', port: 0 });
  ({ browser, close: closeBrowser } = await launchChromium([`--ignore-certificate-errors-spki-list=${spki}`]));
}, 60_000);

afterAll(async () => {
  await closeBrowser?.();
  await gateway?.close();
  await server?.close();
  rmSync(certDir, { recursive: true, force: true });
});

async function browserReceiver(endpointId: string, transports: string[]) {
  const { token } = await gateway.issueToken(endpointId);
  return openReceiverPage(browser, { gatewayUrl: server.url, endpointId, token, transports });
}

describe('browser receiver SDK in headless Chromium', () => {
  it.each([['webrtc'], ['webtransport']])('receives a stream over %s in order', async (transport) => {
    const id = `browser-${transport}`;
    gateway.createStream({ stream_id: id, endpoint_list: [id] });
    const page = await browserReceiver(id, [transport]);
    expect(await page.evaluate(() => (window as unknown as { transport: string }).transport)).toBe(transport);
    await waitFor(() => gateway.getStream(id).active.length === 1, 5_000, 'active');
    for (let i = 1; i <= 2_000; i++) await gateway.publish(id, `tick ${i}`);
    const seqs = async (): Promise<number[]> => (await pageChunks(page)).map(([seq]) => seq);
    const deadline = Date.now() + 20_000;
    while ((await seqs()).length < 2_000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await seqs()).toEqual(Array.from({ length: 2_000 }, (_, i) => i + 1));
    expect(gateway.endpointHealth(id).transport?.kind).toBe(transport);
    await page.close();
  }, 60_000);
});
