import type fc from 'fast-check';

/**
 * How much the fuzz suites run: small enough for `npm test` (about 30 s here).
 * `FUZZ_RUNS=<n>` sets the HTTP suite to n requests and scales the others by the same
 * factor. The seed is pinned (DEFAULT_SEED), so `npm test` runs the same cases every time;
 * `FUZZ_SEED=<seed>` explores others, and `FUZZ_SEED=<seed> FUZZ_PATH=<path>` (fast-check
 * prints both on failure) replays a failing case.
 */
const DEFAULT_SEED = 28;
const HTTP_RUNS = 2_000;
const factor = process.env.FUZZ_RUNS === undefined ? 1 : Number(process.env.FUZZ_RUNS) / HTTP_RUNS;
const scaled = (n: number): number => Math.max(1, Math.round(n * factor));

export const FUZZ = {
  httpRuns: scaled(HTTP_RUNS),
  rawRuns: scaled(200),
  decoderRuns: scaled(20_000),
  handshakeRuns: scaled(300),
  ingestRuns: scaled(300),
};

export function fuzzParams(numRuns: number): fc.Parameters<unknown> {
  const seed = process.env.FUZZ_SEED === undefined ? DEFAULT_SEED : Number(process.env.FUZZ_SEED);
  const path = process.env.FUZZ_PATH;
  return { numRuns, seed, ...(path === undefined ? {} : { path }), endOnFailure: true };
}
