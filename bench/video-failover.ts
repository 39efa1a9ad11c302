/**
 * Live video through failover, as a viewer sees it: the demo's video page (/demo/video/) in
 * stock headless Chromium, what the canvas shows read back from the frame-number barcode the
 * source draws (test/helpers/video-page.ts). `VIDEO_KILLS` (default 10) times: kill the active
 * path, measure from 0.5 s before to 2.5 s after (longest frozen picture, frames the display
 * passed over, pictures older than the one before), bring the path back. Then a rate cap at half
 * the top layer's bitrate on the primary: how long until its layer cap drops, the longest freeze
 * while capped, and how long until the top layer is back once the cap goes. The machine's CPU
 * steal beside every run. A screenshot taken as the first switch is seen.
 *
 *   npx tsx bench/video-failover.ts      # writes bench/results/video-failover-<date>.{json,md,png}
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { startDemo } from '../demo/server.js';
import { VIDEO_LAYERS } from '../demo/video-source.js';
import { launchBrowser } from '../test/helpers/browsers.js';
import { TOP_LAYER, VideoDemoPage } from '../test/helpers/video-page.js';
import { machineShare, machineTicks, percentile } from './stats.js';

const KILLS = Number(process.env.VIDEO_KILLS ?? 10);
const CAP_KBPS = Math.floor((VIDEO_LAYERS[TOP_LAYER]?.kbps ?? 0) / 8 / 2 / 5) * 5;
const date = new Date().toISOString().slice(0, 10);
const out = new URL(`./results/video-failover-${date}`, import.meta.url).pathname;

interface KillRun {
  killed: string;
  to: string;
  reason: string;
  interruption_ms: number | null;
  longest_frozen_ms: number;
  frames_skipped: number;
  went_back: number;
  steal_pct: number;
}

const demo = await startDemo(0, '127.0.0.1', { sessionGraceMs: 1_000 });
const { browser, close } = await launchBrowser('chromium');
const kills: KillRun[] = [];
let cap: Record<string, number | string> = {};
let missed = '';
try {
  const v = await VideoDemoPage.open(await browser.newPage(), demo);
  for (let i = 0; i < KILLS; i++) {
    const t = machineTicks();
    const r = await v.killActive(i === 0 ? () => v.page.screenshot({ path: `${out}.png` }).then(() => undefined) : undefined);
    kills.push({
      killed: r.killed,
      to: r.to,
      reason: r.reason,
      interruption_ms: r.interruptionMs ?? null,
      longest_frozen_ms: Math.round(r.seen.longestFrozenMs),
      frames_skipped: r.seen.skipped,
      went_back: r.seen.back,
      steal_pct: Math.round(machineShare(t, machineTicks()).stealPct * 10) / 10,
    });
    console.log(`kill ${i + 1}: ${JSON.stringify(kills.at(-1))}`);
  }
  const t = machineTicks();
  const r = await v.capPrimary(CAP_KBPS, 6_000, 30_000);
  cap = {
    cap_kbytes_per_s: CAP_KBPS,
    layer_drop_ms: Math.round(r.droppedMs),
    longest_frozen_capped_ms: Math.round(r.capped.longestFrozenMs),
    went_back_capped: r.capped.back,
    frames_skipped_capped: r.capped.skipped,
    top_layer_back_ms: Math.round(r.climbedMs),
    longest_frozen_climbing_ms: Math.round(r.uncapped.longestFrozenMs),
    switches: r.switches.length,
    steal_pct: Math.round(machineShare(t, machineTicks()).stealPct * 10) / 10,
  };
  console.log(`cap: ${JSON.stringify(cap)}`);
  missed = await v.missed();
} finally {
  await close();
  await demo.close();
}

const frozen = kills.map((k) => k.longest_frozen_ms);
const summary = {
  date,
  machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, Node ${process.version}`,
  kills: kills.length,
  longest_frozen_ms: { p50: percentile(frozen, 50), p99: percentile(frozen, 99), max: Math.max(...frozen) },
  went_back: kills.reduce((n, k) => n + k.went_back, 0),
  frames_skipped: kills.reduce((n, k) => n + k.frames_skipped, 0),
  missed,
  cap,
};
await mkdir(new URL('./results/', import.meta.url), { recursive: true });
await writeFile(`${out}.json`, `${JSON.stringify({ summary, kills }, null, 2)}\n`);
const md = [
  `# Video through failover, ${date}`,
  '',
  `${summary.machine}; \`npx tsx bench/video-failover.ts\`; the demo's /demo/video/ page in headless Chromium, what the canvas shows read back from the frame-number barcode.`,
  '',
  `Longest frozen picture over ${kills.length} kills of the active path: p50 ${summary.longest_frozen_ms.p50} ms, p99 ${summary.longest_frozen_ms.p99} ms, max ${summary.longest_frozen_ms.max} ms; went back in time ${summary.went_back}×; frames skipped ${summary.frames_skipped}; seqs missed (the page's counter) ${missed}.`,
  '',
  '| kill | from → to | switch | gateway interruption ms | longest frozen ms | frames skipped | went back | steal % |',
  '|---|---|---|---|---|---|---|---|',
  ...kills.map((k, i) => `| ${i + 1} | ${k.killed} → ${k.to} | ${k.reason} | ${k.interruption_ms ?? '–'} | ${k.longest_frozen_ms} | ${k.frames_skipped} | ${k.went_back} | ${k.steal_pct} |`),
  '',
  `Rate cap at half the top layer (${CAP_KBPS} kB/s) on the primary: layer cap below the top after ${cap.layer_drop_ms} ms; longest frozen while capped ${cap.longest_frozen_capped_ms} ms (went back ${cap.went_back_capped}×, ${cap.frames_skipped_capped} frames skipped); cap gone: top layer again after ${cap.top_layer_back_ms} ms (longest frozen ${cap.longest_frozen_climbing_ms} ms); switches ${cap.switches}; steal ${cap.steal_pct} %.`,
  '',
  `Screenshot as the first switch was seen: [video-failover-${date}.png](video-failover-${date}.png).`,
  '',
].join('\n');
await writeFile(`${out}.md`, md);
console.log(md);
