/**
 * Copy bench/results/latest.md into the benchmarks page (docs/benchmarks.md) between the bench
 * markers, so the page's tables are always the committed run's. `npm run bench` (full) does
 * it; by hand: npx tsx bench/readme.ts
 */
import { readFile, writeFile } from 'node:fs/promises';

const BEGIN = '<!-- bench:begin (copied from bench/results/latest.md) -->';
const END = '<!-- bench:end -->';

export async function copyResultsIntoReadme(): Promise<void> {
  const pageUrl = new URL('../docs/benchmarks.md', import.meta.url);
  const page = await readFile(pageUrl, 'utf8');
  const md = await readFile(new URL('./results/latest.md', import.meta.url), 'utf8');
  const start = page.indexOf(BEGIN);
  const end = page.indexOf(END);
  if (start < 0 || end < start) throw new Error(`docs/benchmarks.md has no ${BEGIN} … ${END} block`);
  // demote the results' headings one level under the page's "## Results of the last full run"
  const body = md
    .replace(/^# .*\n+/, '')
    .replace(/^## /gm, '### ')
    .trim();
  await writeFile(pageUrl, `${page.slice(0, start + BEGIN.length)}\n${body}\n${page.slice(end)}`);
}

if (process.argv[1]?.endsWith('readme.ts')) await copyResultsIntoReadme();
