import { monitorEventLoopDelay } from 'node:perf_hooks';
import { MirrorstreamError, type Clock } from '@mirrorstream/receiver/protocol';
import type { AdmissionConfig } from '../config.js';
import type { TimerQueue } from '../core/timers.js';

/** The event loop's delay, as a histogram read and emptied once per window. */
export interface LoopDelaySource {
  /** The p99 of the delays since the last reset, in ms (0 without samples). */
  p99Ms(): number;
  reset(): void;
  stop(): void;
}

/** Node's own measure (perf_hooks): how late a 10 ms timer fires. */
export function eventLoopDelay(): LoopDelaySource {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  return {
    p99Ms: () => (histogram.count > 0 ? histogram.percentile(99) / 1e6 : 0),
    reset: () => histogram.reset(),
    stop: () => histogram.disable(),
  };
}

export type RefusalReason = 'loop_delay' | 'rate' | 'handshakes';

/** What a new session comes over: WebTransport sessions stop being admitted at a lower loop delay (admission.webtransportAdmitLoopDelayMs). */
export type AdmissionKind = 'webrtc' | 'webtransport';

/** Retry-After of a refusal that passes soon: handshakes under way, this moment's admissions used up (past the event-loop budget: admission.retryAfterS). */
export const SOON_RETRY_AFTER_MS = 1_000;
/** The longest Retry-After a crowd is spread over (see #comeBackMs). */
export const CROWD_RETRY_AFTER_MAX_MS = 30_000;

export interface AdmissionSnapshot {
  /** False while the gateway is overloaded: its event loop over budget `windowsToClose` windows in a row (/readyz `overloaded`). */
  admitting: boolean;
  /** The event loop's p99 delay in the last window, ms. */
  loop_delay_p99_ms: number;
  /** New endpoints admitted per second now: maxNewPerSecond scaled by the loop's headroom under admitLoopDelayMs (null: no rate limit). */
  admit_rate_per_s: number | null;
  /** Of those, WebTransport ones at most: scaled by the headroom under webtransportAdmitLoopDelayMs (null: no rate limit). */
  webtransport_admit_rate_per_s: number | null;
  /** WebRTC handshakes under way (offers answered, not connected or failed yet). */
  pending_handshakes: number;
  /** New sessions refused since start, by reason. */
  refused: Record<RefusalReason, number>;
}

/**
 * Admission control: a gateway near its capacity takes new endpoints in more slowly, and past
 * it refuses them (503 MS_OVERLOADED with Retry-After, `/readyz` `overloaded`), while it keeps
 * serving the ones it has. Three budgets:
 * - the event loop: its p99 delay over each `windowMs` window. A late loop is what every
 *   connection's heartbeats, probes and sends wait behind, so it measures the headroom of all
 *   of them at once. Over `maxLoopDelayMs`, no new endpoint is admitted; over it
 *   `windowsToClose` windows in a row, the gateway says it is overloaded;
 * - the admission rate: `maxNewPerSecond` × the loop's headroom under `admitLoopDelayMs`
 *   (1 − p99 / admitLoopDelayMs, p99 the worse of the last two windows), none at or past it.
 *   A connect burst shows in the loop delay only after its handshakes ran, and an endpoint's
 *   steady cost only after it connected: admission stops at a delay below the budget, so what
 *   it let in before those costs showed lands between the two (with one target, 50 ms, the
 *   fan-out bench's 2 000 offered ended at p99 88 ms); a rate that falls as the loop fills
 *   lets part of the cost show before more come, and opens again gradually, not to a crowd;
 *   WebTransport sessions also take from a second rate, scaled the same way under the lower
 *   `webtransportAdmitLoopDelayMs`: such an endpoint costs the event loop more (its transport
 *   runs in JavaScript) and each of its heartbeats crosses several turns on both sides, so at
 *   the same loop delay its heartbeats are 2-2.5 times later than a WebRTC endpoint's;
 * - WebRTC handshakes under way (`maxPendingHandshakes`).
 * The two loop budgets apply from `minSessions` sessions open: a gateway serving fewer is
 * never full (see #holdsEnough). An endpoint that already has a session open (a replacement,
 * a transport switch) is not refused: it is served already.
 */
export class Admission {
  readonly #config: AdmissionConfig;
  readonly #clock: Clock;
  readonly #loopDelay: LoopDelaySource;
  readonly #pendingHandshakes: () => number;
  readonly #sessionsOpen: () => number;
  #windowsOver = 0;
  #lastP99Ms = 0;
  #previousP99Ms = 0;
  /** New endpoints per second now, and of those WebTransport ones (see AdmissionBucket). */
  readonly #all: AdmissionBucket;
  readonly #webtransport: AdmissionBucket;
  readonly #refused: Record<RefusalReason, number> = { loop_delay: 0, rate: 0, handshakes: 0 };
  #refusedThisWindow = 0;
  #refusedLastWindow = 0;
  /** Spreads a refused crowd's Retry-After (injectable: tests seed it). */
  readonly #random: () => number;

  constructor(o: { config: AdmissionConfig; timers: TimerQueue; loopDelay: LoopDelaySource; pendingHandshakes: () => number; sessionsOpen: () => number; random?: () => number }) {
    this.#config = o.config;
    this.#random = o.random ?? Math.random;
    this.#clock = o.timers.clock;
    this.#loopDelay = o.loopDelay;
    this.#pendingHandshakes = o.pendingHandshakes;
    this.#sessionsOpen = o.sessionsOpen;
    const rate = o.config.maxNewPerSecond > 0 ? o.config.maxNewPerSecond : Infinity;
    this.#all = new AdmissionBucket(rate, this.#clock.now());
    this.#webtransport = new AdmissionBucket(rate, this.#clock.now());
    if (o.config.maxLoopDelayMs > 0) {
      const window = o.timers.timer(() => {
        this.#endWindow();
        window.after(o.config.windowMs);
      });
      window.after(o.config.windowMs);
    }
  }

  /** False while overloaded (what /readyz and the metric say). */
  get admitting(): boolean {
    return this.#windowsOver < this.#config.windowsToClose;
  }

  /** A new endpoint's session over `kind`: throws MS_OVERLOADED (503, retryable) past a budget. */
  admit(kind: AdmissionKind): void {
    const { maxLoopDelayMs, retryAfterS, maxPendingHandshakes } = this.#config;
    if (maxLoopDelayMs > 0 && this.#lastP99Ms > maxLoopDelayMs && this.#holdsEnough()) {
      this.#refused.loop_delay++;
      this.#refusedThisWindow++;
      // overloaded: come back after retryAfterS; one late window (a GC pause): soon
      throw new MirrorstreamError('MS_OVERLOADED', `the gateway is over its budget: event loop p99 ${Math.round(this.#lastP99Ms)} ms late (admission.maxLoopDelayMs ${maxLoopDelayMs}); try another instance, or retry after Retry-After`, {
        retryable: true,
        retryAfterMs: this.admitting ? this.#comeBackMs() : Math.max(retryAfterS * 1000, this.#comeBackMs()),
      });
    }
    const now = this.#clock.now();
    this.#all.refill(now);
    this.#webtransport.refill(now);
    const short = this.#all.tokens < 1 ? this.#all : kind === 'webtransport' && this.#webtransport.tokens < 1 ? this.#webtransport : undefined;
    if (short) {
      this.#refused.rate++;
      this.#refusedThisWindow++;
      const target = short === this.#all ? 'admission.admitLoopDelayMs' : 'admission.webtransportAdmitLoopDelayMs (WebTransport sessions)';
      throw new MirrorstreamError('MS_OVERLOADED', `the gateway takes new endpoints in at ${Math.round(short.ratePerS)}/s now (admission.maxNewPerSecond, scaled by its event loop's headroom under ${target}); retry after Retry-After`, { retryable: true, retryAfterMs: this.#comeBackMs(short) });
    }
    const pending = this.#pendingHandshakes();
    if (maxPendingHandshakes > 0 && pending >= maxPendingHandshakes) {
      this.#refused.handshakes++;
      this.#refusedThisWindow++;
      // handshakes complete within a second or so: come back soon, not after retryAfterS
      throw new MirrorstreamError('MS_OVERLOADED', `the gateway has ${pending} WebRTC handshakes under way (admission.maxPendingHandshakes); retry after Retry-After`, { retryable: true, retryAfterMs: this.#comeBackMs() });
    }
    this.#all.take();
    if (kind === 'webtransport') this.#webtransport.take();
  }

  snapshot(): AdmissionSnapshot {
    return {
      admitting: this.admitting,
      loop_delay_p99_ms: this.#lastP99Ms,
      admit_rate_per_s: Number.isFinite(this.#all.ratePerS) ? this.#all.ratePerS : null,
      webtransport_admit_rate_per_s: Number.isFinite(this.#webtransport.ratePerS) ? this.#webtransport.ratePerS : null,
      pending_handshakes: this.#pendingHandshakes(),
      refused: { ...this.#refused },
    };
  }

  stop(): void {
    this.#loopDelay.stop();
  }

  /**
   * When a refused receiver should come back: soon (1 s), or, with a crowd waiting, at a time
   * drawn evenly from the span the current rate (at least a tenth of maxNewPerSecond) needs to
   * take in as many as were refused in the last window (at most 30 s). Every refused receiver retrying each second would keep the
   * gateway busy answering them; spread over their turns, they arrive about as fast as they can
   * be admitted, and the first of them soon.
   */
  #comeBackMs(bucket: AdmissionBucket = this.#all): number {
    // a rate of none (a connect burst's windows, the loop at the admission target) lasts a few
    // windows: spread over a tenth of the full rate at least, not over 1/s (30 s for 30 refused)
    const rate = Number.isFinite(bucket.ratePerS) ? Math.max(1, bucket.ratePerS, this.#config.maxNewPerSecond / 10) : Infinity;
    const spanMs = Math.min(CROWD_RETRY_AFTER_MAX_MS, (this.#refusedLastWindow / rate) * 1000);
    if (spanMs <= SOON_RETRY_AFTER_MS) return SOON_RETRY_AFTER_MS;
    // whole seconds: Retry-After is in seconds
    return Math.ceil((SOON_RETRY_AFTER_MS + this.#random() * (spanMs - SOON_RETRY_AFTER_MS)) / 1000) * 1000;
  }

  /**
   * Whether the gateway serves enough sessions (admission.minSessions) for their cost to be
   * what makes its loop late. Below that the delay comes from elsewhere (a busy host, a GC, its
   * own start-up; under CI load a test process's loop passed 25 ms with one session open), and
   * refusing endpoints would shed none of it.
   */
  #holdsEnough(): boolean {
    return this.#sessionsOpen() >= this.#config.minSessions;
  }

  #endWindow(): void {
    const p99 = this.#loopDelay.p99Ms();
    this.#loopDelay.reset();
    this.#all.refill(this.#clock.now());
    this.#webtransport.refill(this.#clock.now());
    this.#previousP99Ms = this.#lastP99Ms;
    this.#lastP99Ms = p99;
    this.#refusedLastWindow = this.#refusedThisWindow;
    this.#refusedThisWindow = 0;
    const { maxLoopDelayMs, admitLoopDelayMs, webtransportAdmitLoopDelayMs, maxNewPerSecond } = this.#config;
    const loaded = this.#holdsEnough();
    this.#windowsOver = loaded && p99 > maxLoopDelayMs ? this.#windowsOver + 1 : 0;
    if (maxNewPerSecond > 0) {
      // the worse of two windows: one quiet window (~100 samples) must not open the door to a crowd
      const worse = loaded ? Math.max(p99, this.#previousP99Ms) : 0;
      const rateUnder = (targetMs: number): number => maxNewPerSecond * Math.min(1, Math.max(0, 1 - worse / Math.min(targetMs, maxLoopDelayMs)));
      this.#all.setRate(rateUnder(admitLoopDelayMs));
      this.#webtransport.setRate(rateUnder(Math.min(webtransportAdmitLoopDelayMs, admitLoopDelayMs)));
    }
  }
}

/**
 * Admissions that may go now: refilled at `ratePerS`, at most a tenth of a second's worth (at
 * least one, none at rate 0; Infinity: no rate limit).
 */
class AdmissionBucket {
  ratePerS: number;
  tokens: number;
  #refilledAt: number;

  constructor(ratePerS: number, now: number) {
    this.ratePerS = ratePerS;
    this.tokens = this.#burst;
    this.#refilledAt = now;
  }

  get #burst(): number {
    if (!Number.isFinite(this.ratePerS)) return Infinity;
    return this.ratePerS > 0 ? Math.max(1, this.ratePerS / 10) : 0;
  }

  refill(now: number): void {
    this.tokens = Number.isFinite(this.ratePerS) ? Math.min(this.#burst, this.tokens + ((now - this.#refilledAt) / 1000) * this.ratePerS) : Infinity;
    this.#refilledAt = now;
  }

  take(): void {
    this.tokens -= 1;
  }

  setRate(ratePerS: number): void {
    const closed = this.ratePerS === 0;
    this.ratePerS = ratePerS;
    // opening again from none: the first one comes in at once, the rest at the rate
    this.tokens = closed && ratePerS > 0 ? 1 : Math.min(this.tokens, this.#burst);
  }
}
