import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser } from 'puppeteer-core';
import { launchChromium } from './chromium.js';

/**
 * The browsers the browser e2e tests run in: Debian's Chromium (over the DevTools protocol)
 * and Debian's Firefox ESR (over WebDriver BiDi), both stock and headless with a fresh profile.
 * A test that cannot run in one of them says why in its name.
 */
export const BROWSERS = ['chromium', 'firefox'] as const;
export type BrowserName = (typeof BROWSERS)[number];

export function firefoxPath(): string {
  const path = process.env.FIREFOX_PATH ?? '/usr/bin/firefox-esr';
  if (!existsSync(path)) throw new Error(`no Firefox at ${path}: install Debian's package (apt-get install -y firefox-esr) or set FIREFOX_PATH`);
  return path;
}

export async function launchBrowser(name: BrowserName): Promise<{ browser: Browser; close: () => Promise<void> }> {
  if (name === 'chromium') return launchChromium();
  const profile = mkdtempSync(join(tmpdir(), 'mirrorstream-firefox-'));
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: firefoxPath(),
    headless: true,
    userDataDir: profile,
    // no preferences of ours: puppeteer's own automation profile, WebRTC as any user has it
  });
  return {
    browser,
    close: async () => {
      await browser.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
