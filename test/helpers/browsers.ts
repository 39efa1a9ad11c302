import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { ownAddresses } from '../../netsim/index.js';
import { launchChromium } from './chromium.js';
import { until } from './poll.js';

/**
 * The browsers the browser e2e tests run in: Debian's Chromium (over the DevTools protocol)
 * and Debian's Firefox ESR (over WebDriver BiDi), both stock and headless with a fresh profile.
 * A test that cannot run in one of them says why in its name.
 */
export const BROWSERS = ['chromium', 'firefox'] as const;
export type BrowserName = (typeof BROWSERS)[number];

/**
 * The address on this machine that a test offers this browser for WebRTC: where a test
 * gateway's ICE listens, or a netsim relay in the path. Firefox pairs no loopback candidate with
 * its own (non-loopback, `.local`) host candidates: for it, this machine's own address (the
 * packets never leave the machine); for Chromium, 127.0.0.1.
 */
export function browserFacingAddress(name: BrowserName): string {
  return name === 'firefox' ? (ownAddresses()[0] ?? '127.0.0.1') : '127.0.0.1';
}

export function firefoxPath(): string {
  const path = process.env.FIREFOX_PATH ?? '/usr/bin/firefox-esr';
  if (!existsSync(path)) throw new Error(`no Firefox at ${path}: install Debian's package (apt-get install -y firefox-esr) or set FIREFOX_PATH`);
  return path;
}

export interface LaunchOptions {
  /**
   * Trust the test's own TLS certificate: Chromium by its public key's hash
   * (`--ignore-certificate-errors-spki-list`), Firefox by WebDriver's `acceptInsecureCerts`.
   */
  trustSpki?: string;
}

export async function launchBrowser(name: BrowserName, o: LaunchOptions = {}): Promise<{ browser: Browser; close: () => Promise<void> }> {
  if (name === 'chromium') return launchChromium(o.trustSpki ? [`--ignore-certificate-errors-spki-list=${o.trustSpki}`] : []);
  const profile = mkdtempSync(join(tmpdir(), 'mirrorstream-firefox-'));
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: firefoxPath(),
    headless: true,
    userDataDir: profile,
    // no preferences of ours: puppeteer's own automation profile, WebRTC as any user has it
    ...(o.trustSpki ? { acceptInsecureCerts: true } : {}),
  });
  return {
    browser,
    close: async () => {
      await browser.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Every URL the page requests or connects to, in any browser: HTTP requests as the browser
 * reports them, WebSocket and WebTransport connections as the page's own code opens them (the
 * constructors wrapped before anything loads). Read them with `networkOf(page)` before it closes.
 */
export async function watchPageNetwork(page: Page): Promise<() => Promise<string[]>> {
  const requested: string[] = [];
  page.on('request', (r) => void requested.push(r.url()));
  await page.evaluateOnNewDocument(`(() => {
    const seen = (window.__connections = []);
    for (const name of ['WebSocket', 'WebTransport']) {
      const Native = window[name];
      if (typeof Native !== 'function') continue;
      window[name] = new Proxy(Native, { construct(target, args) { seen.push(String(args[0])); return Reflect.construct(target, args); } });
    }
  })()`);
  return async () => [...requested, ...((await page.evaluate('window.__connections || []')) as string[])];
}

/**
 * Set the page's viewport in any browser. puppeteer-core sends WebDriver BiDi's viewport and
 * screen-orientation commands together; a Firefox ESR without the second (140 has none) refuses
 * it though the viewport command goes through (it took within 300 ms when tried): that one
 * refusal is let through once the page has the size.
 */
export async function setViewportSize(page: Page, width: number, height: number): Promise<void> {
  try {
    await page.setViewport({ width, height });
  } catch (error) {
    if (!String(error).includes('setScreenOrientationOverride')) throw error;
    const size = async (): Promise<string> => ((await page.evaluate('[window.innerWidth, window.innerHeight]')) as number[]).join('×');
    await until(async () => (await size()) === `${width}×${height}`, 2_000, `viewport ${width}×${height} (after ${String(error).slice(0, 120)})`, { everyMs: 50, state: size });
  }
}
