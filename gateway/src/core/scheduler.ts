import type { Clock, TimerHandle } from '@mirrorstream/receiver/protocol';
import type { Logger } from 'pino';
import type { Endpoint } from '../endpoints/endpoint.js';
import type { EndpointState } from '../health/failure-detector.js';
import { emitEndpointHealth, type EventSink } from './events.js';
import type { Registry } from './registry.js';
import type { AckWaiters } from './waiters.js';

const AGE_SWEEP_MS = 1_000;
/** A tick this much later than due means the gateway itself was stalled (GC, a busy loop). */
const LATE_TICKS = 3;

export interface SchedulerOptions {
  tickMs: number;
  clock: Clock;
  log: Logger;
  registry: Registry;
  events: EventSink;
  waiters: AckWaiters;
  probeIntervals: { normalMs: number; carrierMs: number; standbyMs: number };
  /** Decisions that read the verdicts just assessed and act before streams re-evaluate (the transport-pair rule). */
  afterAssess: () => void;
}

/**
 * Time-driven health. The gateway's one periodic job, every `tickMs`: failure detectors of
 * every endpoint (path health rides each endpoint's probes instead, see #assess), stream-level health, then every stream re-runs its
 * failover policy (fail-back timers, dead endpoints); age eviction once a second; waiters
 * re-checked. And between ticks, a silence timer per endpoint active on a stream, so a
 * silent active endpoint is suspect (and hedged) within its RTT bound, not a tick later.
 *
 * No judgment of liveness on stale input: a tick or silence timer that fires late (the
 * gateway's own event loop was blocked) first lets pending I/O in, then judges, so the
 * gateway's stall is not blamed on the endpoints.
 */
export class Scheduler {
  readonly #o: SchedulerOptions;
  #timer: TimerHandle | undefined;
  #lastAgeSweep = 0;
  #lastTick: number | undefined;
  readonly #silenceTimers = new Map<Endpoint, TimerHandle>();
  /** Endpoints probed at the carrier rate: active with somewhere to fail over to; only their silence is judged. */
  readonly #carriers = new Set<Endpoint>();

  constructor(options: SchedulerOptions) {
    this.#o = options;
  }

  start(): void {
    this.#timer ??= this.#o.clock.setInterval(() => this.tick(), this.#o.tickMs);
  }

  stop(): void {
    this.#o.clock.clearInterval(this.#timer);
    this.#timer = undefined;
    for (const t of this.#silenceTimers.values()) this.#o.clock.clearTimeout(t);
    this.#silenceTimers.clear();
  }

  /**
   * A probe went out to `ep`: set its probe rate to what decisions need of it now (see
   * #probeRate), and if it carries a stream, judge its silence at the deadline. (A hedging
   * standby is judged by heartbeats like any standby: its own hiccup must not make the hedge hop.)
   */
  probeSent(ep: Endpoint): void {
    const { ms, carrier } = this.#probeRate(ep);
    ep.link?.setProbeInterval(ms);
    this.#assess(ep);
    if (carrier) this.#carriers.add(ep);
    else this.#carriers.delete(ep);
    if (this.#timer === undefined || this.#silenceTimers.has(ep) || !carrier) return;
    const deadline = ep.silenceDeadline;
    if (deadline === undefined) return;
    const { clock } = this.#o;
    const wait = Math.max(0, deadline - clock.now()) + 1;
    const timer = clock.setTimeout(() => {
      // a timer runs before pending I/O is read: let an echo that is already here count
      this.#silenceTimers.set(ep, clock.setTimeout(() => {
        this.#silenceTimers.delete(ep);
        this.recheck(ep);
      }, 0));
    }, wait);
    this.#silenceTimers.set(ep, timer);
  }

  /**
   * Path health rides the probes: re-measured when a probe goes out, at most once a tick, so
   * an endpoint probed at the standby rate is scored at that rate, not on every tick.
   */
  #assess(ep: Endpoint): void {
    const now = this.#o.clock.now();
    if (now - ep.assessedAt < this.#o.tickMs || !ep.assess(now)) return;
    const h = ep.health();
    this.#o.log.warn({ endpointId: ep.id, verdict: h.verdict, reasons: h.reasons, score: h.score }, 'endpoint path health changed');
  }

  /**
   * Adaptive probing: fast probes only where a decision needs them. Carrier rate for an
   * endpoint active on a stream with another connected endpoint to fail over to (its silence
   * starts a hedge); the normal rate for a stream's first connected standby (the hedge candidate), a
   * hedging standby, a degraded endpoint proving recovery, and an active endpoint that may
   * switch transport; the standby rate for everyone else (the rest of a long standby list,
   * the active endpoint of a stream with no other endpoint).
   */
  #probeRate(ep: Endpoint): { ms: number; carrier: boolean } {
    const { carrierMs, normalMs, standbyMs } = this.#o.probeIntervals;
    let ms = ep.degraded ? normalMs : standbyMs;
    const { registry } = this.#o;
    // connected here or, with several instances, to another one (as its board says)
    const reachable = (id: string): boolean => ['alive', 'suspect'].includes(registry.view(id).state);
    for (const s of registry.streamsOf(ep.id)) {
      const list = s.endpointList;
      if (s.isActive(ep.id)) {
        if (list.some((id) => id !== ep.id && reachable(id))) return { ms: carrierMs, carrier: true };
        if (ep.canSwitchTransport) ms = Math.min(ms, normalMs);
      } else if (s.hedges.running.has(ep.id) || list.find((id) => !s.isActive(id) && reachable(id)) === ep.id) ms = Math.min(ms, normalMs);
    }
    return { ms, carrier: false };
  }

  /** Something was heard from a silent endpoint, or its silence deadline passed: re-derive its state and act on a change. */
  recheck(ep: Endpoint): void {
    const now = this.#o.clock.now();
    // input read right after a stall, before the late tick came: forgive first, judge later
    if (this.#caughtStall(now)) {
      this.#o.clock.setTimeout(() => this.recheck(ep), 0);
      return;
    }
    if (this.#checkEndpoint(ep, now) === undefined) return;
    // death is acted on by the tick, after the transport-pair rule had its say (it may move
    // the endpoint to its other transport within its grace instead of failing over)
    if (ep.state !== 'dead') for (const s of this.#o.registry.streamsOf(ep.id)) s.evaluate(now);
    this.#o.registry.shareEndpoint(ep, now);
  }

  tick(): void {
    const now = this.#o.clock.now();
    if (this.#caughtStall(now)) this.#o.clock.setTimeout(() => this.#run(), 0);
    else this.#run();
    this.#lastTick = now;
  }

  /**
   * Whether the gateway's own event loop was blocked since the last tick (more than
   * LATE_TICKS late); if so every endpoint is forgiven that time, once, and the caller judges
   * after pending input is read.
   */
  #caughtStall(now: number): boolean {
    if (this.#lastTick === undefined) return false;
    const stalledMs = now - this.#lastTick - this.#o.tickMs;
    if (stalledMs <= LATE_TICKS * this.#o.tickMs) return false;
    this.#lastTick = now;
    this.#o.log.warn({ stalledMs: Math.round(stalledMs) }, 'gateway event loop was blocked; liveness judged after pending input');
    for (const ep of this.#o.registry.endpoints) ep.forgive(stalledMs, now);
    return true;
  }

  #checkEndpoint(ep: Endpoint, now: number): EndpointState | undefined {
    const previous = ep.check(now, this.#carriers.has(ep));
    if (previous !== undefined) {
      this.#o.log.warn({ endpointId: ep.id, state: ep.state, previous, phi: ep.phi }, 'endpoint health changed');
      emitEndpointHealth(this.#o.events, ep, previous, now);
    }
    return previous;
  }

  #run(): void {
    const { clock, registry } = this.#o;
    const now = clock.now();
    for (const ep of registry.endpoints) {
      this.#checkEndpoint(ep, now);
      // probes that cannot be sent (a full or closed channel) do not freeze its path health
      if (now - ep.assessedAt >= 2 * this.#o.probeIntervals.standbyMs) this.#assess(ep);
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
