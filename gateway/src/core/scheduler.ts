import type { Clock, TimerHandle } from '@mirrorstream/receiver/protocol';
import type { Logger } from 'pino';
import { emitEndpointHealth, type EventSink } from './events.js';
import type { Registry } from './registry.js';
import type { AckWaiters } from './waiters.js';

const AGE_SWEEP_MS = 1_000;

export interface SchedulerOptions {
  tickMs: number;
  clock: Clock;
  log: Logger;
  registry: Registry;
  events: EventSink;
  waiters: AckWaiters;
  /** Decisions that read the verdicts just assessed and act before streams re-evaluate (the transport-pair rule). */
  afterAssess: () => void;
}

/**
 * The gateway's one periodic job, every `tickMs`: failure detectors and path health of
 * every endpoint, stream-level health, then every stream re-runs its failover policy
 * (fail-back timers, dead endpoints); age eviction once a second; waiters re-checked.
 */
export class Scheduler {
  readonly #o: SchedulerOptions;
  #timer: TimerHandle | undefined;
  #lastAgeSweep = 0;

  constructor(options: SchedulerOptions) {
    this.#o = options;
  }

  start(): void {
    this.#timer ??= this.#o.clock.setInterval(() => this.tick(), this.#o.tickMs);
  }

  stop(): void {
    this.#o.clock.clearInterval(this.#timer);
    this.#timer = undefined;
  }

  tick(): void {
    const { clock, log, registry, events } = this.#o;
    const now = clock.now();
    for (const ep of registry.endpoints) {
      const previous = ep.check(now);
      if (previous !== undefined) {
        log.warn({ endpointId: ep.id, state: ep.state, previous, phi: ep.phi }, 'endpoint health changed');
        emitEndpointHealth(events, ep, previous, now);
      }
      if (ep.assess(now)) {
        const h = ep.health();
        log.warn({ endpointId: ep.id, verdict: h.verdict, reasons: h.reasons, score: h.score }, 'endpoint path health changed');
      }
    }
    for (const s of registry.streams) s.assess(now);
    this.#o.afterAssess();
    for (const s of registry.streams) s.evaluate(now);
    if (now - this.#lastAgeSweep >= AGE_SWEEP_MS) {
      this.#lastAgeSweep = now;
      for (const s of registry.streams) s.log.evictExpired(now);
    }
    this.#o.waiters.notify();
  }
}
