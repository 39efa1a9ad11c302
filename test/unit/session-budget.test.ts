import { describe, expect, it } from 'vitest';
import { SessionBudget } from '../../gateway/src/signaling/budget.js';

describe('SessionBudget', () => {
  it('per endpoint and in total; a release (once, even if called twice) frees the slot', () => {
    const budget = new SessionBudget({ sessionsPerEndpoint: 2, maxSessions: 3 });
    const a1 = budget.take('a', 'webrtc');
    budget.take('a', 'webrtc');
    expect(() => budget.take('a', 'webrtc')).toThrow(expect.objectContaining({ code: 'MS_TOO_MANY_SESSIONS', retryable: true }));
    budget.take('b', 'webrtc');
    expect(() => budget.take('c', 'webrtc')).toThrow(expect.objectContaining({ code: 'MS_TOO_MANY_SESSIONS' }));
    a1();
    a1();
    expect(budget.open).toBe(2);
    const c = budget.take('c', 'webrtc');
    expect(() => budget.take('a', 'webrtc')).toThrow(expect.objectContaining({ code: 'MS_TOO_MANY_SESSIONS' }));
    c();
    budget.take('a', 'webrtc');
    expect(budget.open).toBe(3);
  });
});
