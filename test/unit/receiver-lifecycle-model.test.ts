import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MirrorstreamError } from '../../receiver-sdk/src/index.js';
import type { LifecycleState } from '../../receiver-sdk/src/lifecycle.js';
import { lifecycleRig, turn, type FakeLink } from '../helpers/lifecycle-rig.js';

/**
 * The receiver's lifecycle state machine fed random event sequences on a manual clock (a
 * fast-check model; seeded): every transition it takes is in TRANSITIONS (it throws
 * otherwise), and what must hold between events holds. Each transition alone:
 * receiver-lifecycle.test.ts.
 */

type Step =
  | { kind: 'connect' | 'close' | 'land' | 'fail' | 'fatal' | 'welcome' | 'spoke' | 'silent' | 'goaway' | 'lost' | 'error' }
  | { kind: 'wait'; ms: number };

describe('receiver lifecycle: random event sequences (fast-check model)', () => {
  it('never takes a transition outside the table; one dial at a time; a link exactly in handshake, open and replacing; closed is final', async () => {
    // the ends (close, a fatal answer) are rare, so that runs reach open and replacing and move between them
    const weights = { connect: 4, land: 8, fail: 3, welcome: 6, spoke: 4, silent: 5, goaway: 3, lost: 3, error: 2, close: 1, fatal: 1 } as const;
    const step: fc.Arbitrary<Step> = fc.oneof(
      ...Object.entries(weights).map(([kind, weight]) => ({ arbitrary: fc.constant({ kind } as Step), weight })),
      { arbitrary: fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 1, max: 200 }) }), weight: 4 },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 20, maxLength: 60 }), async (steps) => {
        const t = lifecycleRig(50);
        let wasClosed = false;
        for (const s of steps) {
          const dial = t.pending()[0];
          const link = t.lc.link as FakeLink | undefined;
          if (s.kind === 'connect') t.connect();
          else if (s.kind === 'close') t.lc.close();
          else if (s.kind === 'land') await dial?.land();
          else if (s.kind === 'fail') await dial?.fail();
          else if (s.kind === 'fatal') await dial?.fail(new MirrorstreamError('MS_UNAUTHORIZED'));
          else if (s.kind === 'welcome') t.lc.welcome('session');
          else if (s.kind === 'spoke') t.lc.spoke();
          else if (s.kind === 'silent') t.lc.drop({ kind: 'silent', limitMs: 300 });
          else if (s.kind === 'goaway') t.lc.drop({ kind: 'goaway', reason: 'restart' });
          else if (s.kind === 'lost') link?.close('reset');
          else if (s.kind === 'error') t.lc.drop({ kind: 'failed', error: new MirrorstreamError('MS_TRANSPORT_DEGRADED', 'degraded', { retryable: true }) });
          else if (s.kind === 'wait') t.clock.advance(s.ms);
          await turn();

          const state = t.lc.state;
          const pending = t.pending().length;
          expect(pending).toBeLessThanOrEqual(1);
          expect(t.lc.link !== undefined).toBe(['handshake', 'open', 'replacing'].includes(state));
          if (state === 'dialing' || state === 'replacing') expect(pending).toBe(1);
          if (state === 'backoff') expect([pending, t.clock.pendingTimers]).toEqual([0, 1]);
          // every link but the current one is closed
          for (const d of t.dials) if (d.landed && d.link !== t.lc.link) expect(d.link.isClosed).toBe(true);
          const status = ({ idle: 'idle', open: 'connected', closed: 'closed', replacing: 'reconnecting', backoff: 'reconnecting' } as Partial<Record<LifecycleState, string>>)[state];
          if (status) expect(t.lc.status).toBe(status);
          if (wasClosed) expect(state).toBe('closed');
          wasClosed = state === 'closed';
        }
        t.lc.close();
        await t.pending()[0]?.land();
        expect(t.dials.every((d) => !d.landed || d.link.isClosed)).toBe(true);
        expect(t.clock.pendingTimers).toBe(0);
      }),
      { numRuns: 500, seed: 28 },
    );
  });
});
