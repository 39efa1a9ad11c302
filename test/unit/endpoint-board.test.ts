import type { KV, KvWatchEntry } from '@nats-io/kv';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { FORGET_RECORD_MS, JetStreamEndpointBoard } from '../../gateway/src/log/jetstream/endpoint-board.js';
import { ManualClock } from '../../receiver-sdk/src/index.js';
import { settle } from '../helpers/memory-harness.js';

/** A KV bucket's watch fed by the test (a fake: the board over real NATS runs in the JetStream tests). */
function fakeKv(): { kv: KV; put(key: string, value: unknown): void } {
  const queue: KvWatchEntry[] = [];
  let wake: (() => void) | undefined;
  const entries = (async function* () {
    for (;;) {
      while (queue.length > 0) yield queue.shift()!;
      await new Promise<void>((r) => (wake = r));
    }
  })();
  const kv = { watch: async () => entries, put: async () => 0 } as unknown as KV;
  return {
    kv,
    put(key, value) {
      const text = JSON.stringify(value);
      queue.push({ key, operation: 'PUT', json: () => JSON.parse(text) as unknown } as unknown as KvWatchEntry);
      wake?.();
    },
  };
}

const health = { verdict: 'healthy', score: 1, since: 0, reasons: [], metrics: {} };

describe('endpoint board: records of other instances', () => {
  it('a record nobody refreshes reads as disconnected, and is dropped once the bucket TTL has removed it', async () => {
    const clock = new ManualClock();
    const { kv, put } = fakeKv();
    const board = new JetStreamEndpointBoard(kv, 'me', clock, pino({ level: 'silent' }));
    await board.watch();
    put('e1.gone', { state: 'connected', degraded: false, upSince: 0, streams: {}, health, at: clock.now() });
    await settle();
    expect(board.view('e1')?.state).toBe('connected');
    clock.advance(2_000);
    expect(board.view('e1')?.state).toBe('disconnected');
    clock.advance(FORGET_RECORD_MS);
    expect(board.view('e1')).toBeUndefined();
    board.close();
  });
});
