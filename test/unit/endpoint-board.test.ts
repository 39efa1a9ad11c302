import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { FORGET_RECORD_MS, JetStreamEndpointBoard, STALE_MS } from '../../gateway/src/storage/jetstream/endpoint-board.js';
import { Presence } from '../../gateway/src/storage/jetstream/presence.js';
import { FakeBus } from '../helpers/fake-presence-bus.js';
import type { KvChange } from '../../gateway/src/storage/jetstream/follow-stream.js';
import { ManualClock } from '../../receiver-sdk/src/index.js';

/** The board over real NATS runs in the JetStream tests; here the backend's follower is the test. */
const kv = { put: async () => 0 };
let revision = 0;
const put = (key: string, value: unknown): KvChange => ({ key, operation: 'PUT', revision: ++revision, value: JSON.stringify(value) });

const health = { verdict: 'healthy', score: 1, since: 0, reasons: [], metrics: {} };

describe('endpoint board: records of other instances', () => {
  it('without presence: a record nobody refreshes reads as disconnected, and is dropped once the bucket TTL has removed it', () => {
    const clock = new ManualClock();
    const board = new JetStreamEndpointBoard(kv, 'me', clock, pino({ level: 'silent' }));
    board.take(put('e1.gone', { state: 'alive', degraded: false, upSince: 0, streams: {}, health, at: clock.now() }));
    expect(board.view('e1')?.state).toBe('alive');
    clock.advance(STALE_MS - 1);
    expect(board.view('e1')?.state).toBe('alive');
    clock.advance(1);
    expect(board.view('e1')?.state).toBe('disconnected');
    clock.advance(FORGET_RECORD_MS);
    expect(board.view('e1')).toBeUndefined();
    board.close();
  });

  it('a record that does not fit the schema is skipped, never cast; the last valid one stands', () => {
    const clock = new ManualClock();
    const board = new JetStreamEndpointBoard(kv, 'me', clock, pino({ level: 'silent' }));
    const changed: string[] = [];
    board.onChange = (id) => changed.push(id);
    board.take(put('e1.other', { state: 'alive', degraded: false, streams: { s: true }, health, at: clock.now() }));
    expect(board.view('e1')?.streamDegraded?.('s')).toBe(true);
    // a state no version writes, a string where a number goes, a half record, no JSON at all
    board.take(put('e1.other', { state: 'connected', degraded: false, streams: {}, health, at: clock.now() }));
    board.take(put('e1.other', { state: 'dead', degraded: false, streams: {}, health, at: 'now' }));
    board.take(put('e1.other', { state: 'dead' }));
    board.take({ key: 'e1.other', operation: 'PUT', revision: ++revision, value: '{not json' });
    expect(board.view('e1')?.state).toBe('alive');
    expect(changed).toEqual(['e1']);
    // a deletion removes the record; our own records are never taken in
    board.take({ key: 'e1.other', operation: 'DEL', revision: ++revision, value: '' });
    board.take(put('e1.me', { state: 'alive', degraded: false, streams: {}, health, at: clock.now() }));
    expect(board.view('e1')).toBeUndefined();
    board.close();
  });

  it('with presence: the records of an instance that went silent read as disconnected since it was last heard, told at once', () => {
    const clock = new ManualClock();
    const bus = new FakeBus();
    const timing = { intervalMs: 100, goneMs: 300, selfMs: 200 };
    const presence = new Presence(bus, 'ms', 'me', clock, pino({ level: 'silent' }), timing);
    const other = new Presence(bus, 'ms', 'other', clock, pino({ level: 'silent' }), timing);
    const board = new JetStreamEndpointBoard(kv, 'me', clock, pino({ level: 'silent' }), presence);
    const changed: string[] = [];
    board.onChange = (id) => changed.push(id);
    board.take(put('e1.other', { state: 'alive', degraded: false, streams: {}, health, at: clock.now() }));
    clock.advance(1_000);
    expect(board.view('e1')?.state).toBe('alive');
    // the other instance dies: no more presence, and its record stays as it was
    const lastHeard = clock.now();
    other.close();
    clock.advance(timing.goneMs - 1);
    expect(board.view('e1')?.state).toBe('alive');
    expect(changed).toEqual(['e1']);
    clock.advance(timing.intervalMs);
    expect(board.view('e1')).toMatchObject({ state: 'disconnected', disconnectedAt: lastHeard });
    expect(changed).toEqual(['e1', 'e1']);
    board.close();
    presence.close();
  });
});
