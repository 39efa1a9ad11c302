import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'puppeteer-core';
import { createGateway, serve, type Gateway, type HedgeEvent, type RunningServer, type SwitchEvent } from '../../gateway/src/index.js';
import { launchChromium, openReceiverPage, pageChunks } from '../helpers/chromium.js';
import { waitFor } from '../helpers/webrtc-scenario.js';

/**
 * Three receivers in three Chromium pages (native RTCPeerConnection); the active page is
 * closed without the SDK's close (crash-like): the next one takes over and the union of
 * what the pages report is every seq.
 */
let browser: Browser;
let closeBrowser: () => Promise<void>;

beforeAll(async () => {
  ({ browser, close: closeBrowser } = await launchChromium());
}, 60_000);

afterAll(async () => {
  await closeBrowser?.();
});

const got = pageChunks;

// hedging on (the default) and off (the switch on death only), side by side
describe.each([true, false])('failover between Chromium pages (hedge %s)', (hedge) => {
  let gateway: Gateway;
  let server: RunningServer;
  beforeAll(async () => {
    gateway = createGateway({ logLevel: 'silent', webrtc: { bindAddress: '127.0.0.1' }, webtransport: { enabled: false }, failover: { hedge } });
    server = await serve(gateway, { apiKey: 'e2e-key-0123456789abcd', host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await gateway?.close();
    await server?.close();
  });
  async function receiverPage(endpointId: string): Promise<Page> {
    const { token } = await gateway.issueToken(endpointId);
    return openReceiverPage(browser, { gatewayUrl: server.url, endpointId, token });
  }

  it('3 pages, 3 000 chunks, the active page is closed (crash-like): the next takes over, union 1..3 000', async () => {
    const ids = ['p1', 'p2', 'p3'];
    const pages = new Map<string, Page>();
    for (const id of ids) pages.set(id, await receiverPage(id));
    gateway.createStream({ stream_id: 'feed', endpoint_list: ids });
    await waitFor(() => gateway.getStream('feed').active[0] === 'p1', 5_000, 'p1 active');
    const switches: SwitchEvent[] = [];
    gateway.on('switched', (e) => switches.push(e));
    const hedges: HedgeEvent[] = [];
    gateway.on('hedged', (e) => hedges.push(e));
    const collected = new Map<string, [number, number][]>();
    let closedAt = 0;
    const start = performance.now();
    for (let seq = 1; seq <= 3_000; seq++) {
      await gateway.publish('feed', `tick ${seq}`);
      if (seq === 1_200) {
        // let what was published reach p1, then read it, then crash the page: everything p1
        // acked is in our snapshot, so the union check is exact
        await new Promise((r) => setTimeout(r, 100));
        const p1 = pages.get('p1');
        collected.set('p1', p1 ? await got(p1) : []);
        closedAt = Date.now();
        await p1?.close(); // no SDK close: the peer just vanishes
        pages.delete('p1');
      }
      const wait = start + seq * 2 - performance.now(); // 500 chunks/s
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    }
    await waitFor(() => switches.some((s) => s.from === 'p1'), 10_000, 'switch away from p1');
    const deadline = Date.now() + 15_000;
    for (;;) {
      for (const [id, page] of pages) collected.set(id, await got(page));
      const union = new Set([...collected.values()].flat().map(([seq]) => seq));
      if (union.size >= 3_000 || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const union = new Set([...collected.values()].flat().map(([seq]) => seq));
    expect(union.size).toBe(3_000);
    expect(Math.max(...union)).toBe(3_000);
    for (const list of collected.values()) {
      const seqs = list.map(([s]) => s);
      expect(seqs.every((v, i) => i === 0 || v > (seqs[i - 1] ?? 0))).toBe(true);
    }
    const away = switches.find((s) => s.from === 'p1');
    const lastOnP1 = collected.get('p1')?.at(-1);
    const firstOnNext = collected.get(away?.to ?? '')?.find(([seq]) => seq > (lastOnP1?.[0] ?? 0));
    const hedged = hedges.find((e) => e.kind === 'started' && e.for === 'p1');
    console.log(
      `[chromium, hedge ${hedge ? 'on' : 'off'}] page p1 closed at chunk 1 200: ${away?.to} took over (reason ${away?.reason}) ${(away?.at ?? 0) - closedAt} ms after the close` +
        `${hedged ? ` (hedge by ${hedged.by} began ${(hedged.at - closedAt).toFixed(0)} ms after the close)` : ''}; ` +
        `interruption (last chunk on p1 -> first new chunk on ${away?.to}, with the test's 100 ms pause before the close) ${((firstOnNext?.[1] ?? 0) - (lastOnP1?.[1] ?? 0)).toFixed(0)} ms; ` +
        `first new chunk on ${away?.to} ${((firstOnNext?.[1] ?? 0) - closedAt).toFixed(0)} ms after the close`,
    );
    // hedging off: never a hedge; on: a hedge that began is what took over
    if (!hedge) expect(hedges).toEqual([]);
    else if (hedged) expect(away?.reason).toBe('hedge-commit');
  }, 90_000);
});
