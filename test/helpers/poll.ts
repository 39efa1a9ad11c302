/**
 * The one way tests wait on real time for something to happen: poll a condition (`until`) or
 * retry an action (`eventually`), each bounded. Deadlines are on the monotonic performance
 * clock; after the deadline there is one last check, so a condition met during the last pause
 * is not reported as a failure; the error names what was awaited and the last state seen.
 */
export interface PollOptions {
  /** Pause between checks (ms). */
  everyMs?: number;
  /** What to print beside a timeout: the state the test was waiting on (called once, at the end). */
  state?: () => unknown;
}

export interface RetryOptions {
  /** Pause between attempts (ms). */
  everyMs?: number;
  /** Retry only errors this accepts (default: every error); another is thrown at once. */
  retryIf?: (error: unknown) => boolean;
  /** Called for each error that is retried (e.g. to count refusals). */
  onRetry?: (error: unknown) => void;
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A promise that rejects after `ms` unless `p` settles first. */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} not within ${ms} ms`)), ms))),
  ]).finally(() => clearTimeout(timer));
}

function describeState(state: (() => unknown) | undefined): string {
  if (!state) return '';
  try {
    const s = state();
    return `; last state: ${typeof s === 'string' ? s : JSON.stringify(s)}`;
  } catch (error) {
    return `; last state unreadable: ${String(error)}`;
  }
}

/**
 * Resolve once `cond()` is true; throw if it is still false `ms` after the call. An async
 * `cond` (an HTTP probe, say) is itself given at most `ms` per check; a `cond` that throws
 * ends the wait with its error (a failing probe is a finding, not a "not yet").
 */
export async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string, opts: PollOptions = {}): Promise<void> {
  const everyMs = opts.everyMs ?? 10;
  const deadline = performance.now() + ms;
  const check = async (): Promise<boolean> => {
    const r = cond();
    return typeof r === 'boolean' ? r : withDeadline(r, ms, `${what} (one check)`);
  };
  for (;;) {
    if (await check()) return;
    const left = deadline - performance.now();
    if (left <= 0) break;
    await pause(Math.min(everyMs, left));
  }
  if (await check()) return;
  throw new Error(`${what}: not within ${ms} ms${describeState(opts.state)}`);
}

/**
 * `f()`'s result once it resolves; retried while it throws, for at most `ms` (each attempt is
 * given at most `ms` too). After the deadline: one last attempt, then its error, named.
 */
export async function eventually<T>(f: () => Promise<T>, ms: number, what: string, opts: RetryOptions = {}): Promise<T> {
  const everyMs = opts.everyMs ?? 100;
  const deadline = performance.now() + ms;
  for (;;) {
    try {
      return await withDeadline(f(), ms, `${what} (one attempt)`);
    } catch (error) {
      if (opts.retryIf && !opts.retryIf(error)) throw error;
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`${what}: not within ${ms} ms; last error: ${String(error)}`, { cause: error });
      opts.onRetry?.(error);
      await pause(Math.min(everyMs, left));
    }
  }
}
