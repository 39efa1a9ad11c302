import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'puppeteer-core';
import { createGateway, serve, type Gateway, type RunningServer, type SwitchEvent } from '../../gateway/src/index.js';
import { BROWSERS, browserFacingAddress, launchBrowser } from '../helpers/browsers.js';
import { openReceiverPage, pageChunks } from '../helpers/chromium.js';
import { ImpairedLink } from '../../netsim/index.js';
import { until } from '../helpers/poll.js';
import { mulberry32 } from '../helpers/random.js';

/**
 * Three pages of one browser, Chromium or Firefox, whose WebRTC paths run through a netsim relay
 * (the page's signaling goes through the test, which rewrites the gateway's candidates in the
 * answer; the page offers none, so the gateway knows the page only as the relay's address:
 * netsim/webrtc-link.ts); the active page's link is degraded to 15 % loss: the next page takes
 * over and the union of seqs is complete. The relay listens where the browser can pair with it
 * (Firefox: this machine's own address, never loopback).
 */
describe.each(BROWSERS)('degradation failover between %s pages (netsim)', (browserName) => {
  let gateway: Gateway;
  let server: RunningServer;
  let browser: Browser;
  let closeBrowser: () => Promise<void>;
  const links = new Map<string, ImpairedLink>();

  beforeAll(async () => {
    gateway = createGateway({ logLevel: 'silent', webrtc: { bindAddress: '127.0.0.1' }, webtransport: { enabled: false }, failback: { enabled: false } });
    server = await serve(gateway, { apiKey: 'e2e-key-0123456789abcd', host: '127.0.0.1', port: 0 });
    ({ browser, close: closeBrowser } = await launchBrowser(browserName));
  }, 60_000);

  afterAll(async () => {
    await closeBrowser?.();
    await gateway?.close();
    await server?.close();
    for (const l of links.values()) await l.close();
  });

  async function impairedPage(endpointId: string): Promise<Page> {
    // seeded loss: the same drop pattern per packet order every run
    const link = new ImpairedLink({ random: mulberry32(links.size + 1), browserRelayHost: browserFacingAddress(browserName) });
    links.set(endpointId, link);
    const { token } = await gateway.issueToken(endpointId);
    return openReceiverPage(browser, {
      gatewayUrl: server.url,
      endpointId,
      token,
      // the page's signaling goes through the relay
      signal: async (url, body, authorization) => {
        const res = await link.fetch(url, { method: 'POST', headers: { 'content-type': 'application/sdp', authorization }, body });
        return { status: res.status, location: res.headers.get('location'), text: await res.text() };
      },
    });
  }

  it('3 pages, 3 000 chunks, the active link goes to 15 % loss: the next page takes over, union 1..3 000', async () => {
    const ids = ['d1', 'd2', 'd3'];
    const pages = new Map<string, Page>();
    for (const id of ids) pages.set(id, await impairedPage(id));
    gateway.createStream({ stream_id: 'feed', endpoint_list: ids });
    await until(() => gateway.getStream('feed').active[0] === 'd1', 5_000, 'd1 active');
    for (const l of links.values()) expect(l.relays.length).toBe(1);
    const switches: SwitchEvent[] = [];
    gateway.on('switched', (e) => switches.push(e));
    let impairedAt = 0;
    const start = performance.now();
    for (let seq = 1; seq <= 3_000; seq++) {
      await gateway.publish('feed', `tick ${seq}`);
      if (seq === 1_200) {
        links.get('d1')?.set({ lossPct: 15 });
        impairedAt = gateway.clock.now();
      }
      const wait = start + seq * 2 - performance.now(); // 500 chunks/s
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    }
    await until(() => switches.some((s) => s.from === 'd1'), 10_000, 'switch away from d1');
    const seqsOf = async (): Promise<Map<string, number[]>> =>
      new Map(await Promise.all(ids.map(async (id) => [id, (await pageChunks(pages.get(id)!)).map(([seq]) => seq)] as const)));
    let all = new Map<string, number[]>();
    await until(async () => new Set([...(all = await seqsOf()).values()].flat()).size >= 3_000, 15_000, 'every seq in some page', { everyMs: 200 });
    const union = new Set([...all.values()].flat());
    expect(union.size).toBe(3_000);
    expect(Math.max(...union)).toBe(3_000);
    for (const seqs of all.values()) expect(seqs.every((v, i) => i === 0 || v > (seqs[i - 1] ?? 0))).toBe(true);
    const away = switches.find((s) => s.from === 'd1');
    const relayed = links.get('d1')?.relays.reduce((n, r) => n + r.stats().up.packetsForwarded + r.stats().down.packetsForwarded, 0);
    console.log(`[${browserName}, netsim] d1's link at 15 % loss from chunk 1 200: ${away?.to} took over ${Math.round((away?.at ?? 0) - impairedAt)} ms later (reason ${away?.reason}${away?.detail ? ` ${away.detail.join(',')}` : ''}); ${relayed} packets crossed d1's relays; union 1..3 000`);
    expect(relayed).toBeGreaterThan(1_000);
  }, 90_000);
});
