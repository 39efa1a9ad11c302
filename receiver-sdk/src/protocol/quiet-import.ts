/* eslint-disable no-console -- this module wraps the console methods themselves */
/**
 * Load a module while console lines that match `drop` are dropped (all others pass
 * through), until the load, `settled`, and one more macrotask are done. For a library that
 * prints at import time: @fails-components/webtransport prints stack traces when its
 * optional HTTP/3 backend is missing, which the gateway reports once in its own words and
 * which a user's program should never see. Nested or concurrent loads share one filter.
 */
const QUIET_METHODS = ['log', 'error', 'warn'] as const;
let depth = 0;
let originals: ((...args: unknown[]) => void)[] = [];
const filters: RegExp[] = [];

export async function importQuietly<T>(load: () => Promise<T>, drop: RegExp, settled: (loaded: T) => Promise<unknown> = async () => undefined): Promise<T> {
  if (depth++ === 0) {
    originals = QUIET_METHODS.map((m) => console[m]);
    QUIET_METHODS.forEach((m, i) => {
      console[m] = (...args: unknown[]): void => {
        if (typeof args[0] === 'string' && filters.some((f) => f.test(args[0] as string))) return;
        originals[i]!.apply(console, args);
      };
    });
  }
  filters.push(drop);
  try {
    const loaded = await load();
    await settled(loaded).catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 0));
    return loaded;
  } finally {
    filters.splice(filters.indexOf(drop), 1);
    if (--depth === 0) QUIET_METHODS.forEach((m, i) => (console[m] = originals[i]!));
  }
}

/** What @fails-components/webtransport prints when its optional HTTP/3 backend is not installed. */
export const MISSING_HTTP3_NOISE = /^(http3 loader:|Problem loading http3-quiche transport|Did you install @fails-components\/webtransport-transport-http3-quiche\?)/;
