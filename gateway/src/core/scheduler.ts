import { TypedEmitter, type Clock } from '@mirrorstream/receiver/protocol';
import type { Logger } from 'pino';
import type { Endpoint } from '../endpoints/endpoint.js';
import type { EndpointState } from '../health/failure-detector.js';
import type { Stream } from '../streams/stream.js';
import { emitEndpointHealth, type EventSink } from './events.js';
import type { Registry } from './registry.js';
import type { Timer, TimerQueue } from './timers.js';
import type { AckWaiters } from './waiters.js';

const AGE_SWEEP_MS = 1_000;
/** A tick this much later than due means the gateway itself was stalled (GC, a busy loop). */
const LATE_TICKS = 3;

export interface SchedulerOptions {
  tickMs: number;
  clock: Clock;
  timers: TimerQueue;
  log: Logger;
  registry: Registry;
  events: EventSink;
  waiters: AckWaiters;
  probeIntervals: { normalMs: number; carrierMs: number; standbyMs: number };
  heartbeatIntervals: { normalMs: number; standbyMs: number };
  /** How often receivers report, by the same split as heartbeats. */
  reportIntervals: { normalMs: number; standbyMs: number };
  /** Close the connection of an endpoint dead this long (0: never). */
  closeDeadAfterMs: number;
}

export type SchedulerEvents = {
  /** Apply the transport-pair rule to these endpoints (their health changed), before streams re-run their policy. */
  reviewTransports: [endpoints: ReadonlySet<Endpoint>];
  /** An endpoint was judged dead (the dial-out re-dials a listening one at once). */
  endpointDead: [endpointId: string];
};

/** The timed work of one endpoint. */
interface EndpointTimers {
  /** When its phi detector would next change its state (no heartbeat meanwhile). */
  liveness: Timer;
  /** When the connection of an endpoint that stayed dead is closed. */
  reap: Timer;
  /** When an endpoint carrying a stream turns silent (no echo meanwhile). */
  silence: Timer;
}

/**
 * Time-driven health, with work proportional to change. Nothing visits every endpoint or
 * every stream on a timer:
 * - an endpoint's liveness is judged when its phi detector would cross a threshold (a
 *   deadline moved by each heartbeat, on the gateway's one timer queue), when it is heard
 *   after a silence, and at its silence deadline while it carries a stream;
 * - its path health rides its probes (re-scored when one goes out, at most once a tick);
 * - a stream is measured every tick only while it is not settled (something in flight, a
 *   breach, a hedge), and re-runs its policy when an input of it changed (an endpoint's state
 *   or verdict, its own verdict on an endpoint) or at the time its policy named.
 * The tick (`tickMs`) measures those streams, applies the transport-pair rule to endpoints
 * whose health changed, re-runs the policy of streams that changed, sweeps retention once a
 * second and re-checks ack waiters.
 *
 * No judgment of liveness on stale input: a tick or deadline that fires late (the gateway's
 * own event loop was blocked) first lets pending I/O in, then judges, so the gateway's stall
 * is not blamed on the endpoints.
 */
export class Scheduler extends TypedEmitter<SchedulerEvents> {
  readonly #o: SchedulerOptions;
  #tick: Timer | undefined;
  #lastAgeSweep = 0;
  #lastTick: number | undefined;
  readonly #timers = new WeakMap<Endpoint, EndpointTimers>();
  /** Endpoints probed at the carrier rate: active with somewhere to fail over to; only their silence is judged. */
  readonly #carriers = new Set<Endpoint>();
  /** Streams measured every tick until settled. */
  readonly #unsettled = new Set<Stream>();
  /** Streams whose policy runs at the next tick (an input changed). */
  readonly #dirty = new Set<Stream>();
  /** Endpoints whose health changed since the last tick (the transport-pair rule looks at them). */
  readonly #changed = new Set<Endpoint>();
  readonly #wakes = new WeakMap<Stream, Timer>();

  constructor(options: SchedulerOptions) {
    super();
    this.#o = options;
    this.onListenerError = (err, event) => options.log.error({ err, event }, 'scheduler event listener threw');
    // every stream is followed from when it is here: when to measure it, when to decide again
    options.registry.on('streamAdded', (s) => this.#follow(s));
    options.registry.on('streamRemoved', (s) => this.#forget(s));
    options.registry.on('ownerChanged', (s) => void this.#dirty.add(s));
  }

  start(): void {
    if (this.#tick) return;
    const tick = (this.#tick = this.#o.timers.timer((now) => {
      tick.at(now + this.#o.tickMs);
      this.tick();
    }));
    tick.after(this.#o.tickMs);
  }

  /** Stop the tick (the timer queue belongs to the gateway: connections use it until they close). */
  stop(): void {
    this.#tick?.cancel();
    this.#tick = undefined;
  }

  // ---- endpoints

  /** An endpoint's connection finished its handshake (or closed): rates, deadlines, its streams. */
  endpointConnected(ep: Endpoint): void {
    this.#rate(ep);
    this.#scheduleLiveness(ep);
    this.#endpointChanged(ep);
  }

  endpointDisconnected(ep: Endpoint): void {
    const t = this.#timers.get(ep);
    t?.liveness.cancel();
    t?.silence.cancel();
    t?.reap.cancel();
    this.#carriers.delete(ep);
    this.#endpointChanged(ep);
  }

  /** A heartbeat came back: the liveness deadline moves; a suspect or dead endpoint is judged again now. */
  heartbeat(ep: Endpoint): void {
    if (ep.state !== 'alive') this.recheck(ep);
    else this.#scheduleLiveness(ep);
  }

  /**
   * A probe came due for `ep` (sent or not): set its probe and heartbeat rates to what
   * decisions need of it now, re-score its path, and if it carries a stream, judge its
   * silence at the deadline. (A hedging standby is judged by heartbeats like any standby: its
   * own hiccup must not make the hedge hop.)
   */
  probeDue(ep: Endpoint, sent: boolean): void {
    const carrier = this.#rate(ep);
    this.#assess(ep);
    if (!sent || !carrier || this.#tick === undefined) return;
    const timers = this.#timersOf(ep);
    const deadline = ep.silenceDeadline;
    // the limit follows the path's RTT and loss: a shorter one moves a pending check earlier
    if (deadline === undefined || (timers.silence.pending && timers.silence.dueAt <= deadline + 1)) return;
    timers.silence.at(deadline + 1);
  }

  /**
   * Path health rides the probes: re-measured when a probe comes due, at most once a tick, so
   * an endpoint probed at the standby rate is scored at that rate, not on every tick.
   */
  #assess(ep: Endpoint): void {
    const now = this.#o.clock.now();
    if (now - ep.assessedAt < this.#o.tickMs || !ep.assess(now)) return;
    const h = ep.health();
    this.#o.log.warn({ endpointId: ep.id, verdict: h.verdict, reasons: h.reasons, score: h.score }, 'endpoint path health changed');
    this.#endpointChanged(ep);
  }

  /**
   * Adaptive probing and heartbeats: fast only where a decision needs them. Carrier probe rate
   * for an endpoint active on a stream with another reachable endpoint to fail over to (its
   * silence starts a hedge); the normal probe rate for a stream's first reachable standby (the
   * hedge candidate), a hedging standby, a degraded endpoint proving recovery where a stream
   * could switch on it, and an active
   * endpoint that may switch transport; the standby rate for everyone else (the rest of a long
   * standby list, the active endpoint of a stream with no other endpoint). Heartbeats: the
   * normal interval wherever probes are faster than the standby rate, else the standby interval;
   * receivers' reports by the same split.
   * Returns whether the endpoint is a carrier.
   */
  #rate(ep: Endpoint): boolean {
    const { probeIntervals: p, heartbeatIntervals: hb, reportIntervals: reports, registry, clock } = this.#o;
    let ms = p.standbyMs;
    let carrier = false;
    // connected here or, with several instances, to another one (as its board says)
    const reachable = (id: string): boolean => {
      const state = registry.endpoints.view(id).state;
      return state === 'alive' || state === 'suspect';
    };
    for (const s of registry.streamsOf(ep.id)) {
      const list = s.endpointList;
      // a degraded endpoint proves its recovery at the normal rate only where a stream could
      // switch on it; the only endpoint of its streams has no decision waiting (WebTransport,
      // 5 000 offered: the gateway's own lateness made all 953 paths degraded on RTT, and 50
      // probes a second each fed the stalls that made them so)
      if (ep.degraded && list.length > 1) ms = Math.min(ms, p.normalMs);
      if (s.isActive(ep.id)) {
        if (list.some((id) => id !== ep.id && reachable(id))) {
          ms = p.carrierMs;
          carrier = true;
          break;
        }
        if (ep.canSwitchTransport) ms = Math.min(ms, p.normalMs);
      } else if (s.hedges.running.has(ep.id) || list.find((id) => !s.isActive(id) && reachable(id)) === ep.id) ms = Math.min(ms, p.normalMs);
    }
    if (carrier) this.#carriers.add(ep);
    else this.#carriers.delete(ep);
    const link = ep.link;
    if (!link) return carrier;
    if (ms !== link.probeIntervalMs) {
      link.setProbeInterval(ms);
      ep.probeRateChanged(ms);
    }
    const waitedOn = ms < p.standbyMs;
    // set before the heartbeat rate: a change of either tells the receiver in the same heartbeat
    link.setReportInterval(waitedOn ? reports.normalMs : reports.standbyMs);
    const heartbeatMs = waitedOn ? hb.normalMs : hb.standbyMs;
    if (heartbeatMs !== link.heartbeatIntervalMs) {
      link.setHeartbeatInterval(heartbeatMs);
      ep.heartbeatRateChanged(heartbeatMs, clock.now());
      this.#scheduleLiveness(ep);
    }
    return carrier;
  }

  #timersOf(ep: Endpoint): EndpointTimers {
    let t = this.#timers.get(ep);
    if (!t) {
      const { timers, clock } = this.#o;
      t = {
        liveness: timers.timer(() => this.recheck(ep)),
        reap: timers.timer(() => this.#reap(ep)),
        // a deadline runs before pending I/O is read: let an echo that is already here count
        silence: timers.timer(() => void clock.setTimeout(() => this.recheck(ep), 0)),
      };
      this.#timers.set(ep, t);
    }
    return t;
  }

  /** Still dead: close its connection; the receiver dials a new one (see heartbeat.closeDeadAfterMs). */
  #reap(ep: Endpoint): void {
    const connection = ep.link;
    if (ep.state !== 'dead' || !connection) return;
    this.#o.log.warn({ endpointId: ep.id, deadForMs: this.#o.closeDeadAfterMs }, 'closing the connection of an endpoint that stayed dead');
    connection.close(`no heartbeat answered for ${this.#o.closeDeadAfterMs} ms after it was judged dead`);
  }

  #scheduleLiveness(ep: Endpoint): void {
    const at = ep.link ? ep.livenessDeadline : undefined;
    const t = this.#timersOf(ep).liveness;
    if (at === undefined) t.cancel();
    else t.at(at);
  }

  /** Something was heard from a silent endpoint, or one of its deadlines passed: re-derive its state and act on a change. */
  recheck(ep: Endpoint): void {
    const now = this.#o.clock.now();
    // input read right after a stall, before the late tick came: forgive first, judge later
    if (this.#caughtStall(now)) {
      this.#o.clock.setTimeout(() => this.recheck(ep), 0);
      return;
    }
    const previous = this.#checkEndpoint(ep, now);
    this.#scheduleLiveness(ep);
    if (previous === undefined) return;
    // death is acted on by the tick, after the transport-pair rule had its say (it may move
    // the endpoint to its other transport within its grace instead of failing over)
    if (ep.state !== 'dead') for (const s of this.#o.registry.streamsOf(ep.id)) s.evaluate(now);
    this.#o.registry.endpoints.share(ep, now);
  }

  #checkEndpoint(ep: Endpoint, now: number): EndpointState | undefined {
    const previous = ep.check(now, this.#carriers.has(ep));
    if (previous !== undefined) {
      const { closeDeadAfterMs } = this.#o;
      if (ep.state === 'dead' && closeDeadAfterMs > 0) this.#timersOf(ep).reap.at(now + closeDeadAfterMs);
      else this.#timers.get(ep)?.reap.cancel();
      this.#o.log.warn({ endpointId: ep.id, state: ep.state, previous, phi: ep.phi }, 'endpoint health changed');
      emitEndpointHealth(this.#o.events, ep, previous, now);
      if (ep.state === 'dead') this.emit('endpointDead', ep.id);
      this.#endpointChanged(ep);
    }
    return previous;
  }

  /** An input of its streams' policies changed: they re-run it at the next tick, and the transport-pair rule looks at it. */
  #endpointChanged(ep: Endpoint): void {
    this.#changed.add(ep);
    for (const s of this.#o.registry.streamsOf(ep.id)) this.#dirty.add(s);
  }

  // ---- streams

  #follow(s: Stream): void {
    // it sent or its roles changed: measure it every tick until it settles
    s.on('assessing', () => void this.#unsettled.add(s));
    s.on('evaluateAt', (at) => this.#evaluateAt(s, at));
    // roles moved (the rates of its endpoints follow at the next tick), or its list changed
    s.on('activeChanged', () => void this.#dirty.add(s));
    s.on('listChanged', () => void this.#dirty.add(s));
  }

  /** Re-run the stream's policy at `at` (its policy's wake time), unless something changes first. */
  #evaluateAt(s: Stream, at: number | undefined): void {
    let t = this.#wakes.get(s);
    if (at === undefined) {
      t?.cancel();
      return;
    }
    if (!t) {
      t = this.#o.timers.timer(() => void this.#dirty.add(s));
      this.#wakes.set(s, t);
    }
    if (!t.pending || at < t.dueAt) t.at(at);
  }

  /** The stream was deleted here: it is neither measured nor decided again (its acks no longer reach it, so it would never settle). */
  #forget(s: Stream): void {
    this.#unsettled.delete(s);
    this.#dirty.delete(s);
    this.#wakes.get(s)?.cancel();
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
    for (const ep of this.#o.registry.endpoints.all) {
      ep.forgive(stalledMs, now);
      this.#scheduleLiveness(ep);
    }
    return true;
  }

  #run(): void {
    const { clock, registry } = this.#o;
    const now = clock.now();
    for (const s of this.#unsettled) {
      if (s.assess(now)) this.#dirty.add(s);
      if (s.settled) this.#unsettled.delete(s);
    }
    // the transport-pair rule reads the verdicts just assessed, before streams decide
    const review = new Set(this.#changed);
    this.#changed.clear();
    for (const s of this.#dirty) {
      for (const id of s.endpointList) {
        const ep = registry.endpoints.find(id);
        if (ep?.link) review.add(ep);
      }
    }
    if (review.size > 0) this.emit('reviewTransports', review);
    for (const ep of review) registry.endpoints.share(ep, now);
    const dirty = [...this.#dirty];
    this.#dirty.clear();
    for (const s of dirty) {
      s.evaluate(now);
      // roles may have moved: the rates of its endpoints follow
      for (const id of s.endpointList) {
        const ep = registry.endpoints.find(id);
        if (ep?.link) this.#rate(ep);
      }
    }
    if (now - this.#lastAgeSweep >= AGE_SWEEP_MS) {
      this.#lastAgeSweep = now;
      for (const s of registry.streams) s.log.evictExpired(now);
    }
    this.#o.waiters.notify();
  }
}
