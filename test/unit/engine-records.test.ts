import { describe, expect, it } from 'vitest';
import { parseBoardRecord, parseControlMessage, parseCursor, parseStoredStream } from '../../gateway/src/storage/jetstream/records.js';
import type { MetricState } from '../../gateway/src/health/score.js';
import type { RoleDecision } from '../../gateway/src/streams/types.js';

const metric: MetricState = { value: 12, threshold: 50, kind: 'max', source: 'probe', breached: false, breachedSince: undefined };
const decision: RoleDecision = {
  active: ['e2'],
  promoted: [{ id: 'e2', fromSeq: 41, reason: 'disconnected', record: { from: 'e1', to: 'e2', reason: 'disconnected', at: 1_700_000_000_000, from_seq: 41, metrics: { rtt_ms: metric } } }],
  demoted: [{ id: 'e1', reason: 'disconnected' }],
  hedges: [{ for: 'e2', by: 'e3', fromSeq: 41 }],
};

describe('records read back from the engine', () => {
  it('a decision, a lease, a stored stream, a board record and a cursor survive the trip through JSON as they were', () => {
    expect(parseControlMessage(JSON.stringify({ k: 'roles', by: 'i-abc', d: decision }))).toEqual({ k: 'roles', by: 'i-abc', d: decision });
    expect(parseControlMessage(JSON.stringify({ k: 'lease', by: 'i-abc', until: 0 }))).toEqual({ k: 'lease', by: 'i-abc', until: 0 });
    const stream = { spec: { stream_id: 's', endpoint_list: ['e1', 'e2'] }, epoch: 'ep-1', createdAt: 1 };
    expect(parseStoredStream(JSON.stringify(stream))?.spec).toMatchObject({ stream_id: 's', endpoint_list: ['e1', 'e2'] });
    const board = { state: 'alive', degraded: false, upSince: 5, disconnectedAt: undefined, streams: { s: false }, health: { verdict: 'healthy', score: 1, since: 0, reasons: [], metrics: { rtt_ms: metric } }, at: 9 };
    // JSON drops undefined: the parsed record has the key again, as the type says
    expect(parseBoardRecord(JSON.stringify(board))).toStrictEqual({ ...board, health: { ...board.health, metrics: { rtt_ms: { ...metric, breachedSince: undefined } } } });
    expect(parseCursor('1234')).toBe(1234);
  });

  it('anything else is refused, not cast', () => {
    const bad = [
      '', 'null', '[]', '{not json',
      JSON.stringify({ k: 'roles', by: 'i', d: { ...decision, active: ['not an id!'] } }),
      JSON.stringify({ k: 'roles', by: 'i', d: { ...decision, promoted: [{ id: 'e2', fromSeq: -1, reason: 'disconnected', record: decision.promoted[0]!.record }] } }),
      JSON.stringify({ k: 'roles', by: 'i', d: { ...decision, demoted: [{ id: 'e1', reason: 'bored' }] } }),
      JSON.stringify({ k: 'lease', by: '', until: 1 }),
      JSON.stringify({ k: 'lease', by: 'i', until: '1' }),
      JSON.stringify({ k: 'vote', by: 'i' }),
    ];
    for (const text of bad) expect(parseControlMessage(text), text).toBeUndefined();
    expect(parseStoredStream(JSON.stringify({ spec: { stream_id: 's' }, epoch: 'ep', createdAt: 1 }))).toBeUndefined();
    expect(parseStoredStream(JSON.stringify({ spec: { stream_id: 's', endpoint_list: [] }, epoch: 'bad epoch', createdAt: 1 }))).toBeUndefined();
    expect(parseBoardRecord(JSON.stringify({ state: 'connected', degraded: false, streams: {}, health: {}, at: 1 }))).toBeUndefined();
    for (const c of ['', '-1', '1.5', '1e3', ' 7', '99999999999999999']) expect(parseCursor(c), c).toBeUndefined();
  });
});
