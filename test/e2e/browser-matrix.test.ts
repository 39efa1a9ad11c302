import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'puppeteer-core';
import { createGateway, serve, type Gateway } from '../../gateway/src/index.js';
import { BROWSERS, launchBrowser, watchPageNetwork, type BrowserName } from '../helpers/browsers.js';
import { testCertificate, type TestCertificate } from '../helpers/certs.js';
import { freePort } from '../helpers/nats.js';
import { renderDeployConfig, startNginx, type Nginx } from '../helpers/nginx.js';
import { until } from '../helpers/poll.js';

/**
 * The compatibility table of docs/browsers.md, cell by cell, in stock headless Chromium and
 * Firefox ESR: per browser and deployment, a receiver per `transports` choice connects, receives
 * 20 chunks in order and closes; what it connected over (or how it was refused) must be what
 * the table says. The matrix seen is printed at the end.
 */
const DOC = new URL('../../docs/browsers.md', import.meta.url);
const MARKER = '<!-- compatibility table: read by test/e2e/browser-matrix.test.ts -->';
const DEPLOYMENTS = ['plain', 'trusted listener', 'https origin'] as const;
type Deployment = (typeof DEPLOYMENTS)[number];
const LABEL: Record<BrowserName, string> = { chromium: 'Chromium', firefox: 'Firefox' };
const CHUNKS = 20;

interface Table {
  /** The `transports` of each outcome column, in order. */
  choices: string[][];
  /** `${browser label}|${deployment}` → the outcome per choice. */
  rows: Map<string, string[]>;
}

/** The table after the marker: a header naming each column's `transports`, then one row per browser and deployment. */
function readTable(): Table {
  const text = readFileSync(DOC, 'utf8');
  const at = text.indexOf(MARKER);
  if (at < 0) throw new Error(`docs/browsers.md has no "${MARKER}"`);
  const lines = text.slice(at + MARKER.length).trimStart().split('\n');
  const table = lines.slice(0, lines.findIndex((l) => !l.startsWith('|')));
  const cells = (line: string): string[] => line.split('|').slice(1, -1).map((c) => c.trim());
  const [header, , ...body] = table;
  const choices = cells(header ?? '').slice(2).map((c) => JSON.parse(c.replace(/^`|`$/g, '').replaceAll("'", '"')) as string[]);
  const rows = new Map(body.map((line) => {
    const [browser, deployment, ...outcomes] = cells(line);
    return [`${browser}|${deployment}`, outcomes] as const;
  }));
  return { choices, rows };
}

const table = readTable();
/** What each browser did, for the printout: `${label}|${deployment}` → "outcome (connect ms)" per choice. */
const seen = new Map<string, string[]>();

afterAll(() => {
  const header = `| browser | deployment | ${table.choices.map((c) => JSON.stringify(c)).join(' | ')} |`;
  const rows = [...seen].map(([key, outcomes]) => `| ${key.split('|').join(' | ')} | ${outcomes.join(' | ')} |`);
  console.log(`[browser matrix] as seen (outcome, connect() ms):\n${[header, ...rows].join('\n')}`);
});

interface Deployed {
  gateway: Gateway;
  gatewayUrl: string;
  close(): Promise<void>;
}

/** A deployment of docs/browsers.md: the gateway with `npm start`'s defaults, on its own or behind deploy/nginx. */
async function deploy(deployment: Deployment, cert: TestCertificate, dir: string): Promise<Deployed> {
  const gateway = createGateway({
    logLevel: 'silent',
    ...(deployment === 'trusted listener' ? { webtransport: { certFile: cert.certFile, keyFile: cert.keyFile } } : {}),
    ...(deployment === 'https origin' ? { trustProxy: ['loopback'] } : {}),
  });
  const server = await serve(gateway, { apiKey: 'matrix-key-0123456789ab', host: '127.0.0.1', port: 0 });
  let nginx: Nginx | undefined;
  let gatewayUrl = server.url;
  if (deployment === 'https origin') {
    const nginxPort = await freePort();
    nginx = await startNginx(dir, renderDeployConfig([server.port, server.port], nginxPort, cert), nginxPort);
    gatewayUrl = `https://127.0.0.1:${nginxPort}/gw1`;
  }
  return {
    gateway,
    gatewayUrl,
    close: async () => {
      await nginx?.close();
      await gateway.close();
      await server.close();
    },
  };
}

/** A page on the gateway's origin with the SDK loaded; `window.openCell` makes and connects a receiver. */
async function sdkPage(browser: Browser, gatewayUrl: string): Promise<{ page: Page; network: () => Promise<string[]> }> {
  const page = await browser.newPage();
  const network = await watchPageNetwork(page);
  await page.goto(`${gatewayUrl}/healthz`);
  // a string, not a function: vitest would rewrite import() inside a function body
  await page.evaluate(`(async () => {
    const sdk = await import(${JSON.stringify(`${gatewayUrl}/sdk/mirrorstream-receiver.js`)});
    window.cells = {};
    window.openCell = async (endpointId, token, transports) => {
      const rx = new sdk.Receiver({ gatewayUrl: ${JSON.stringify(gatewayUrl)}, endpointId, token, transports });
      const cell = (window.cells[endpointId] = { rx, seqs: [], details: [] });
      rx.on('status', (status, detail) => cell.details.push(status + ': ' + detail));
      rx.on('chunk', (c) => cell.seqs.push(c.seq));
      const started = performance.now();
      try {
        await rx.connect();
        return { transport: rx.transport, ms: performance.now() - started, details: cell.details };
      } catch (error) {
        rx.close();
        return { error: error && error.code ? error.code : String(error), ms: performance.now() - started };
      }
    };
  })()`);
  return { page, network };
}

interface CellResult {
  transport?: string;
  error?: string;
  ms: number;
  details?: string[];
}

describe.each(BROWSERS)('browser compatibility (docs/browsers.md) in headless %s', (browserName) => {
  let dir: string;
  let cert: TestCertificate;
  let browser: Browser;
  let closeBrowser: () => Promise<void>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mirrorstream-matrix-'));
    cert = await testCertificate(dir);
    // the test certificate stands for one a browser trusts (nginx's, or the listener's in "trusted listener")
    ({ browser, close: closeBrowser } = await launchBrowser(browserName, { trustSpki: cert.spki }));
  }, 60_000);

  afterAll(async () => {
    await closeBrowser?.();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each(DEPLOYMENTS)('%s: each transports choice connects (or is refused) as the table says, 20 chunks in order', async (deployment) => {
    const key = `${LABEL[browserName]}|${deployment}`;
    const expected = table.rows.get(key);
    expect(expected, `docs/browsers.md has a row for ${key}`).toHaveLength(table.choices.length);
    const deployed = await deploy(deployment, cert, join(dir, deployment.replaceAll(' ', '-')));
    try {
      const { page, network } = await sdkPage(browser, deployed.gatewayUrl);
      const outcomes: string[] = [];
      const printed: string[] = [];
      for (const [i, transports] of table.choices.entries()) {
        const id = `cell-${i}`;
        deployed.gateway.createStream({ stream_id: id, endpoint_list: [id] });
        const { token } = await deployed.gateway.issueToken(id);
        const result = (await page.evaluate(`window.openCell(${JSON.stringify(id)}, ${JSON.stringify(token)}, ${JSON.stringify(transports)})`)) as CellResult;
        let outcome = result.error ? `refused: ${result.error}` : String(result.transport);
        if (result.transport) {
          const asides = (result.details ?? []).filter((d) => d.includes('stepped aside'));
          expect(asides.length, 'a step-aside is told at most once').toBeLessThanOrEqual(1);
          if (asides.length === 1) outcome += '; webtransport stepped aside';
          await until(() => deployed.gateway.getStream(id).active.length === 1, 5_000, `${id} active`);
          for (let seq = 1; seq <= CHUNKS; seq++) await deployed.gateway.publish(id, `tick ${seq}`);
          const seqs = (): Promise<number[]> => page.evaluate(`window.cells[${JSON.stringify(id)}].seqs`) as Promise<number[]>;
          await until(async () => (await seqs()).length >= CHUNKS, 10_000, `${CHUNKS} chunks over ${outcome}`, { everyMs: 50 });
          expect(await seqs()).toEqual(Array.from({ length: CHUNKS }, (_, k) => k + 1));
          expect(deployed.gateway.endpointHealth(id).transport?.kind).toBe(result.transport);
          await page.evaluate(`window.cells[${JSON.stringify(id)}].rx.close()`);
        }
        outcomes.push(outcome);
        printed.push(`${outcome} (${Math.round(result.ms)})`);
      }
      seen.set(key, printed);
      const urls = await network();
      await page.close();
      expect(outcomes).toEqual(expected);
      // where the table says WebTransport stepped aside, the page never dialed it
      if (outcomes.some((o) => o.includes('stepped aside') || o.includes('MS_TRANSPORT_UNAVAILABLE'))) expect(urls.filter((u) => u.startsWith('wss:'))).toEqual([]);
      // every URL the page contacted is the gateway's URL's origin (the listener's port too, in "trusted listener")
      expect([...new Set(urls.map((u) => new URL(u).hostname))]).toEqual([new URL(deployed.gatewayUrl).hostname]);
    } finally {
      await deployed.close();
    }
  }, 60_000);
  it('plain: 20 receivers in a row, each preferring WebTransport, all connect over WebRTC, none refused for too many sessions; the page learns the step-aside once', async () => {
    const deployed = await deploy('plain', cert, join(dir, 'plain-20'));
    try {
      const { page } = await sdkPage(browser, deployed.gatewayUrl);
      const results: CellResult[] = [];
      for (let i = 0; i < 20; i++) {
        const id = `prefer-wt-${i}`;
        deployed.gateway.createStream({ stream_id: id, endpoint_list: [id] });
        const { token } = await deployed.gateway.issueToken(id);
        const r = (await page.evaluate(`window.openCell(${JSON.stringify(id)}, ${JSON.stringify(token)}, ["webtransport", "webrtc"])`)) as CellResult;
        results.push(r);
        if (r.transport) await page.evaluate(`window.cells[${JSON.stringify(id)}].rx.close()`);
      }
      await page.close();
      const ms = results.map((r) => Math.round(r.ms));
      const sorted = [...ms].sort((a, b) => a - b);
      console.log(`[${browserName}, prefer WebTransport against npm start] 20 receivers: ${results.map((r) => r.transport ?? r.error).join(',')}; connect ms min / median / max ${sorted[0]} / ${sorted[10]} / ${sorted[19]} (${ms.join(', ')})`);
      expect(results.map((r) => r.transport ?? r.error)).toEqual(results.map(() => 'webrtc'));
      // each told once; the first learned it with a ticket, the others knew
      expect(results.map((r) => (r.details ?? []).filter((d) => d.includes('stepped aside')).length)).toEqual(results.map(() => 1));
      expect((results[0]?.details ?? []).some((d) => d.includes('stepped aside (learned earlier here)'))).toBe(false);
      expect(results.slice(1).every((r) => (r.details ?? []).some((d) => d.includes('stepped aside (learned earlier here)')))).toBe(true);
    } finally {
      await deployed.close();
    }
  }, 60_000);
});
