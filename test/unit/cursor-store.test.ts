import type { KV } from '@nats-io/kv';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { CursorStore } from '../../gateway/src/storage/jetstream/cursor-store.js';
import { ManualClock } from '../../receiver-sdk/src/index.js';
import { settle } from '../helpers/memory-harness.js';

/** A KV bucket in memory whose puts fail while `down` (NATS away); the store over real NATS runs in the JetStream tests. */
function fakeKv() {
  const data = new Map<string, string>();
  const state = { down: false, puts: 0 };
  const kv = {
    put: async (key: string, value: string) => {
      state.puts++;
      if (state.down) throw new Error('TIMEOUT');
      data.set(key, value);
      return 1;
    },
    get: async (key: string) => {
      const v = data.get(key);
      return v === undefined ? null : { operation: 'PUT', string: () => v };
    },
    keys: async (filter: string) =>
      (async function* () {
        yield* [...data.keys()].filter((k) => k.startsWith(filter.slice(0, -1)));
      })(),
  } as unknown as Pick<KV, 'put' | 'get' | 'keys'>;
  return { kv, data, state };
}

function setup() {
  const clock = new ManualClock();
  const { kv, data, state } = fakeKv();
  return { clock, data, state, store: new CursorStore(kv, clock, pino({ level: 'silent' })) };
}

/** Move the clock and let what it woke settle. */
async function after(clock: ManualClock, ms: number): Promise<void> {
  clock.advance(ms);
  await settle();
}

describe('CursorStore: acked cursors on KV', () => {
  it('writes the newest value of each cursor at most every 200 ms, never a lower one', async () => {
    const { clock, data, state, store } = setup();
    for (let seq = 1; seq <= 50; seq++) store.save('s.e1', seq);
    store.save('s.e1', 10);
    await after(clock, 200);
    expect(data.get('s.e1')).toBe('50');
    expect(state.puts).toBe(1);
    store.save('s.e1', 40);
    await after(clock, 200);
    expect(state.puts).toBe(1);
    await store.close();
  });

  it('a write that failed is retried on its own timer, without another ack', async () => {
    const { clock, data, state, store } = setup();
    state.down = true;
    store.save('s.e1', 7);
    await after(clock, 200);
    expect(data.get('s.e1')).toBeUndefined();
    await after(clock, 1_000);
    expect(state.puts).toBe(2);
    state.down = false;
    await after(clock, 1_000);
    expect(data.get('s.e1')).toBe('7');
    expect(clock.pendingTimers).toBe(0);
    expect(await store.load('s.')).toEqual(new Map([['e1', 7]]));
    await store.close();
  });

  it('a cursor another instance stored ahead is not written back over by a late retry', async () => {
    const { clock, data, state, store } = setup();
    state.down = true;
    store.save('s.e1', 7);
    await after(clock, 200);
    state.down = false;
    data.set('s.e1', '12');
    store.observe('s.e1', 12);
    await after(clock, 1_000);
    expect(data.get('s.e1')).toBe('12');
    expect(state.puts).toBe(1);
    store.save('s.e1', 11);
    await after(clock, 200);
    expect(state.puts).toBe(1);
    await store.close();
  });
});
