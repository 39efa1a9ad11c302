/**
 * Copy bench/results/latest.md into the README between the bench markers, so the README
 * table is always the committed run's. `npm run bench` (full) does it; by hand:
 * npx tsx bench/readme.ts
 */
import { readFile, writeFile } from 'node:fs/promises';

const BEGIN = '<!-- bench:begin (copied from bench/results/latest.md) -->';
const END = '<!-- bench:end -->';

export async function copyResultsIntoReadme(): Promise<void> {
  const readmeUrl = new URL('../README.md', import.meta.url);
  const readme = await readFile(readmeUrl, 'utf8');
  const md = await readFile(new URL('./results/latest.md', import.meta.url), 'utf8');
  const start = readme.indexOf(BEGIN);
  const end = readme.indexOf(END);
  if (start < 0 || end < start) throw new Error(`README.md has no ${BEGIN} … ${END} block`);
  // demote the results' headings one level under the README's "## Benchmarks"
  const body = md
    .replace(/^# .*\n+/, '')
    .replace(/^## /gm, '### ')
    .trim();
  await writeFile(readmeUrl, `${readme.slice(0, start + BEGIN.length)}\n${body}\n${readme.slice(end)}`);
}

if (process.argv[1]?.endsWith('readme.ts')) await copyResultsIntoReadme();
