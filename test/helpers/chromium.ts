import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

/**
 * The system Chromium, headless, with the flags this workplace needs (no background
 * networking: every connection off the machine is refused) and a fresh profile.
 */
export function chromiumPath(): string {
  const path = process.env.CHROME_PATH ?? '/usr/bin/chromium';
  if (!existsSync(path)) {
    throw new Error(`no Chromium at ${path}: install Debian's package (apt-get install -y chromium) or set CHROME_PATH`);
  }
  return path;
}

export async function launchChromium(extraArgs: string[] = []): Promise<{ browser: Browser; close: () => Promise<void> }> {
  const profile = mkdtempSync(join(tmpdir(), 'mirrorstream-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--user-data-dir=${profile}`,
      ...extraArgs,
    ],
  });
  return {
    browser,
    close: async () => {
      await browser.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export interface ReceiverPageOptions {
  /** The page and the SDK bundle load from the first URL; the receiver gets them all (it moves on GOAWAY). */
  gatewayUrl: string | string[];
  endpointId: string;
  token: string;
  transports?: string[];
  /**
   * Route the page's WebRTC signaling through the test (e.g. to put netsim relays in the
   * path): called with the offer, returns the gateway's answer.
   */
  signal?: (url: string, offer: string, authorization: string) => Promise<{ status: number; location: string | null; text: string }>;
  /** Called with the new page before it loads anything (e.g. to watch its network). */
  beforeLoad?: (page: Page) => Promise<void>;
}

/**
 * A page running the browser SDK's Receiver. `window.got` collects `[seq, epoch ms]` per
 * chunk, `window.transport` the transport it connected over.
 */
export async function openReceiverPage(browser: Browser, o: ReceiverPageOptions): Promise<Page> {
  const page = await browser.newPage();
  await o.beforeLoad?.(page);
  if (o.signal) await page.exposeFunction('signal', o.signal);
  const first = Array.isArray(o.gatewayUrl) ? (o.gatewayUrl[0] ?? '') : o.gatewayUrl;
  await page.goto(`${first}/healthz`);
  // a string, not a function: vitest would rewrite import() inside a function body
  await page.evaluate(`(async () => {
    const sdk = await import(${JSON.stringify(`${first}/sdk/mirrorstream-receiver.js`)});
    window.got = [];
    const viaTest = async (url, init) => {
      if (init && init.method === 'POST' && String(url).endsWith('/webrtc')) {
        const r = await window.signal(String(url), init.body, init.headers.authorization);
        return new Response(r.text, { status: r.status, headers: r.location ? { location: r.location } : {} });
      }
      return fetch(url, init);
    };
    const rx = new sdk.Receiver({
      gatewayUrl: ${JSON.stringify(o.gatewayUrl)},
      endpointId: ${JSON.stringify(o.endpointId)},
      token: ${JSON.stringify(o.token)},
      transports: ${JSON.stringify(o.transports ?? ['webrtc'])},
      ${o.signal ? 'fetch: viaTest,' : ''}
    });
    rx.on('chunk', (c) => window.got.push([c.seq, performance.timeOrigin + performance.now()]));
    await rx.connect();
    window.rx = rx;
    window.transport = rx.transport;
  })()`);
  return page;
}

/** What a receiver page collected so far: `[seq, epoch ms]` per chunk. */
export function pageChunks(page: Page): Promise<[number, number][]> {
  return page.evaluate(() => (window as unknown as { got: [number, number][] }).got);
}
