import type { Page } from 'puppeteer-core';
import type { Demo } from '../../demo/server.js';
import { BARCODE_BITS, BARCODE_HEIGHT, VIDEO_LAYERS } from '../../demo/video-source.js';
import { setViewportSize } from './browsers.js';
import { until } from './poll.js';

/**
 * The demo's video page (/demo/video/) driven as a viewer drives it, and what the viewer sees
 * read back from the canvas itself: the source draws the frame number as a 12-bit barcode along
 * the picture's top edge, and the page samples it on every animation frame. A frozen picture,
 * a skipped frame or a jump back in time is measured on the pixels, not taken from the player's
 * own account. Used by test/e2e/video.test.ts and bench/video-failover.ts.
 */
export const ROLES = ['primary', 'backup1', 'backup2'] as const;
export const TOP_LAYER = VIDEO_LAYERS.length - 1;

export interface DemoState {
  session: string;
  stream: {
    active: string[];
    switches: { at: number; from: string | null; to: string | null; reason: string; detail?: string[]; interruption_ms?: number }[];
    endpoints: { endpoint_id: string; state: string; role: string; layer_cap: number | null }[];
  };
}

/** What the canvas showed over a span of page time. */
export interface Seen {
  longestFrozenMs: number;
  /** Pictures older than the one before them. */
  back: number;
  /** Frame numbers passed over between two pictures. */
  skipped: number;
  pictures: number;
  /** Changes other than +1, for the log. */
  odd: string[];
}

/** `window.__barcodes` gets `[page ms, frame mod 4096]` at each change of the barcode. */
const SAMPLER = `(() => {
  window.__barcodes = [];
  const canvas = document.querySelector('#video');
  const ctx = canvas.getContext('2d');
  const sample = () => {
    const w = canvas.width, h = canvas.height;
    const row = ctx.getImageData(0, Math.floor(${BARCODE_HEIGHT / 2} / ${VIDEO_LAYERS[TOP_LAYER]?.height} * h), w, 1).data;
    let n = 0;
    for (let i = 0; i < ${BARCODE_BITS}; i++) if (row[Math.floor(((i + 0.5) * w) / ${BARCODE_BITS}) * 4] > 128) n |= 1 << i;
    const last = window.__barcodes[window.__barcodes.length - 1];
    if (!last || last[1] !== n) window.__barcodes.push([performance.now(), n]);
    requestAnimationFrame(sample);
  };
  requestAnimationFrame(sample);
})()`;

/** What `capPrimary` saw. */
export interface CapRun {
  droppedMs: number;
  badge: string;
  capped: Seen;
  climbedMs: number;
  uncapped: Seen;
  /** `[from, to, reason, detail]` of every switch while it ran. */
  switches: string[][];
}

export class VideoDemoPage {
  private constructor(
    readonly page: Page,
    readonly demo: Demo,
  ) {}

  /** Open the page, start sampling, and wait until it plays the top layer from the primary with every path up. */
  static async open(page: Page, demo: Demo): Promise<VideoDemoPage> {
    await setViewportSize(page, 1360, 1000);
    await page.goto(`${demo.url}/demo/video/`);
    await page.evaluate(SAMPLER);
    const v = new VideoDemoPage(page, demo);
    await until(
      async () => {
        const player = (await page.evaluate('window.videoPlayer && window.videoPlayer.stats()')) as { shown: number; layer: number } | null;
        return (player?.shown ?? 0) > 60 && player?.layer === TOP_LAYER && (await v.activeIs('primary'));
      },
      30_000,
      'the video playing its top layer from the primary, every path up',
      { everyMs: 200 },
    );
    return v;
  }

  async state(): Promise<DemoState> {
    const session = String(await this.page.evaluate('window.demoSession'));
    return (await (await fetch(`${this.demo.url}/demo/api/${session}/state`)).json()) as DemoState;
  }

  /** An endpoint's name on the page (its id without the session). */
  nameOf(s: DemoState, id: string | null | undefined): string {
    return (id ?? '').slice(s.session.length + 1);
  }

  async active(): Promise<string> {
    const s = await this.state();
    return this.nameOf(s, s.stream.active[0]);
  }

  /** `role` is active and every path is up. */
  async activeIs(role: string): Promise<boolean> {
    const s = await this.state();
    return this.nameOf(s, s.stream.active[0]) === role && s.stream.endpoints.every((e) => e.state === 'alive');
  }

  /** The gateway's layer cap for `role` now (null: every layer). */
  async layerCap(role: string): Promise<number | null | undefined> {
    const s = await this.state();
    return s.stream.endpoints.find((e) => this.nameOf(s, e.endpoint_id) === role)?.layer_cap;
  }

  async allAlive(): Promise<boolean> {
    return (await this.state()).stream.endpoints.every((e) => e.state === 'alive');
  }

  /** Set a panel's control as a viewer does; returns the page's time of the change. */
  control(role: string, selector: '.killBox' | '.rateKBps' | '.lossPct' | '.delayMs', value: string | boolean): Promise<number> {
    const nth = ROLES.indexOf(role as (typeof ROLES)[number]) + 1;
    return this.page.$eval(
      `.panel:nth-child(${nth}) ${selector}`,
      (el, v) => {
        const input = el as HTMLInputElement;
        if (typeof v === 'boolean') input.checked = v;
        else input.value = v;
        input.dispatchEvent(new Event('change'));
        return performance.now();
      },
      value,
    );
  }

  /** The player's own account (VideoPlayer.stats()). */
  async player(): Promise<{ shown: number; layer: number; longestFreezeMs: number; skipped: number; wentBack: number }> {
    return (await this.page.evaluate('window.videoPlayer.stats()')) as { shown: number; layer: number; longestFreezeMs: number; skipped: number; wentBack: number };
  }

  async missed(): Promise<string> {
    return this.page.$eval('#missed', (e) => e.textContent ?? '');
  }

  /** What the canvas showed between two page times. */
  async seenBetween(from: number, to: number): Promise<Seen> {
    const all = (await this.page.evaluate('window.__barcodes')) as [number, number][];
    const span = all.filter(([at]) => at >= from && at <= to);
    const wrap = 1 << BARCODE_BITS;
    const seen: Seen = { longestFrozenMs: 0, back: 0, skipped: 0, pictures: span.length, odd: [] };
    for (let i = 1; i < span.length; i++) {
      const [at, n] = span[i] as [number, number];
      const [prevAt, prev] = span[i - 1] as [number, number];
      seen.longestFrozenMs = Math.max(seen.longestFrozenMs, at - prevAt);
      const step = (n - prev + wrap) % wrap;
      if (step > wrap / 2) seen.back++;
      else seen.skipped += step - 1;
      if (step !== 1) seen.odd.push(`${Math.round(at - from)} ms: ${prev} → ${n}`);
    }
    return seen;
  }

  /**
   * Cap the primary's rate at `kbps` kB/s (the primary active first, so no fail-back falls into
   * it), hold the cap `holdMs` once the layer dropped, then lift it and wait (up to
   * `climbWithinMs`) for the top layer back: how long the drop and the climb took, the page's
   * badge while capped, what the canvas showed in each span, and the switches meanwhile.
   */
  async capPrimary(kbps: number, holdMs: number, climbWithinMs: number): Promise<CapRun> {
    await until(() => this.activeIs('primary'), 20_000, 'the primary active, every path up', { everyMs: 200 });
    const before = (await this.state()).stream.switches.length;
    const cappedAt = await this.control('primary', '.rateKBps', String(kbps));
    const t0 = performance.now();
    await until(async () => ((await this.layerCap('primary')) ?? TOP_LAYER) < TOP_LAYER, 10_000, 'the layer cap below the top layer', { everyMs: 20 });
    const droppedMs = performance.now() - t0;
    // the page's label follows its state twice a second
    let badge = '';
    await until(async () => /^layer [0-9] /.test((badge = await this.page.$eval('#layerBadge', (e) => e.textContent ?? ''))) && !badge.startsWith(`layer ${TOP_LAYER} `), 3_000, 'the badge naming a lower layer', { everyMs: 100, state: () => badge });
    await new Promise((r) => setTimeout(r, holdMs));
    const capped = await this.seenBetween(cappedAt - 500, (await this.page.evaluate('performance.now()')) as number);
    const uncappedAt = await this.control('primary', '.rateKBps', '0');
    const t1 = performance.now();
    await until(async () => (await this.layerCap('primary')) === null && (await this.player()).layer === TOP_LAYER, climbWithinMs, 'back to the top layer', { everyMs: 50 });
    const climbedMs = performance.now() - t1;
    const uncapped = await this.seenBetween(uncappedAt, uncappedAt + climbedMs);
    const after = await this.state();
    const switches = after.stream.switches.slice(before).map((w) => [this.nameOf(after, w.from), this.nameOf(after, w.to), w.reason, (w.detail ?? []).join(',')]);
    return { droppedMs, badge, capped, climbedMs, uncapped, switches };
  }

  /**
   * Kill the active path and watch: the switch away from it, then what the canvas showed from
   * 0.5 s before the kill to 2.5 s after; the path is brought back and every path is up again
   * before it returns. `onSwitch` runs as soon as the switch is seen (a screenshot mid-switch).
   */
  async killActive(onSwitch?: () => Promise<void>): Promise<{ killed: string; to: string; reason: string; interruptionMs: number | undefined; seen: Seen }> {
    const before = await this.state();
    const killed = this.nameOf(before, before.stream.active[0]);
    const killedAt = await this.control(killed, '.killBox', true);
    let after = before;
    await until(async () => (after = await this.state()).stream.switches.length > before.stream.switches.length, 10_000, `a switch away from ${killed}`, { everyMs: 50 });
    await onSwitch?.();
    const sw = after.stream.switches.at(-1);
    await new Promise((r) => setTimeout(r, 2_500));
    const seen = await this.seenBetween(killedAt - 500, killedAt + 2_500);
    await this.control(killed, '.killBox', false);
    await until(() => this.allAlive(), 15_000, `${killed} back up`, { everyMs: 200 });
    return { killed, to: this.nameOf(after, sw?.to), reason: sw?.reason ?? '', interruptionMs: sw?.interruption_ms, seen };
  }
}
