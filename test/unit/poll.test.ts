import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { eventually, until, withDeadline } from '../helpers/poll.js';

/** The tests' one polling helper, on fake timers (its pauses and deadlines move only when the test says). */
describe('test/helpers/poll.ts', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('until: resolves once the condition holds, checking every everyMs', async () => {
    let checks = 0;
    const done = until(() => ++checks === 3, 1_000, 'three checks', { everyMs: 100 });
    await vi.advanceTimersByTimeAsync(200);
    await expect(done).resolves.toBeUndefined();
    expect(checks).toBe(3);
  });

  it('until: checks once more after the deadline, then names what it waited for and the last state', async () => {
    let ready = false;
    const late = until(() => ready, 250, 'ready', { everyMs: 100 });
    await vi.advanceTimersByTimeAsync(200);
    ready = true; // during the last pause, which ends at the deadline
    await vi.advanceTimersByTimeAsync(50);
    await expect(late).resolves.toBeUndefined();

    const never = until(() => false, 250, 'the flag', { everyMs: 100, state: () => ({ flag: false }) });
    const failed = expect(never).rejects.toThrow('the flag: not within 250 ms; last state: {"flag":false}');
    await vi.advanceTimersByTimeAsync(300);
    await failed;
  });

  it('until: a condition that throws ends the wait with its error', async () => {
    await expect(
      until(() => {
        throw new Error('probe broke');
      }, 1_000, 'x'),
    ).rejects.toThrow('probe broke');
  });

  it('eventually: retries while f throws, then returns its value; onRetry sees each retried error', async () => {
    let attempts = 0;
    const retried: string[] = [];
    const value = eventually(
      async () => {
        if (++attempts < 3) throw new Error(`attempt ${attempts}`);
        return 'ok';
      },
      1_000,
      'the value',
      { everyMs: 100, onRetry: (e) => retried.push(String(e)) },
    );
    await vi.advanceTimersByTimeAsync(200);
    await expect(value).resolves.toBe('ok');
    expect(retried).toEqual(['Error: attempt 1', 'Error: attempt 2']);
  });

  it('eventually: an error retryIf refuses is thrown at once; past the deadline, the last error, named', async () => {
    class Fatal extends Error {}
    await expect(eventually(() => Promise.reject(new Fatal('no')), 1_000, 'x', { retryIf: (e) => !(e instanceof Fatal) })).rejects.toBeInstanceOf(Fatal);

    let attempts = 0;
    const never = eventually(() => Promise.reject(new Error(`refused ${++attempts}`)), 250, 'the publish', { everyMs: 100 });
    const failed = expect(never).rejects.toThrow('the publish: not within 250 ms; last error: Error: refused 4');
    await vi.advanceTimersByTimeAsync(300);
    await failed;
  });

  it('withDeadline: the promise, or an error naming it once the time is up', async () => {
    await expect(withDeadline(Promise.resolve(7), 100, 'seven')).resolves.toBe(7);
    const hung = expect(withDeadline(new Promise(() => undefined), 100, 'the answer')).rejects.toThrow('the answer not within 100 ms');
    await vi.advanceTimersByTimeAsync(100);
    await hung;
  });
});
