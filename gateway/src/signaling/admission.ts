import { monitorEventLoopDelay } from 'node:perf_hooks';
import { MirrorstreamError } from '@mirrorstream/receiver/protocol';
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

export type RefusalReason = 'loop_delay' | 'handshakes';

/** Retry-After of a refusal for handshakes under way (the event-loop budget's is admission.retryAfterS). */
export const HANDSHAKES_RETRY_AFTER_MS = 1_000;

export interface AdmissionSnapshot {
  /** New endpoints get sessions (false: the event loop is past its budget). */
  admitting: boolean;
  /** The event loop's p99 delay in the last window, ms. */
  loop_delay_p99_ms: number;
  /** WebRTC handshakes under way (offers answered, not connected or failed yet). */
  pending_handshakes: number;
  /** New sessions refused since start, by reason. */
  refused: Record<RefusalReason, number>;
}

/**
 * Admission control: a gateway past its capacity refuses new endpoints (503 MS_OVERLOADED with
 * Retry-After, `/readyz` `overloaded`) and keeps serving the ones it has. Two budgets:
 * - the event loop: its p99 delay over each `windowMs` window; above `maxLoopDelayMs` in
 *   `windowsToClose` windows in a row, admission closes, and it opens again after
 *   `windowsToOpen` windows in a row below `maxLoopDelayMs` × `resumeRatio`. A late loop is what
 *   every connection's heartbeats, probes and sends wait behind, so it measures the headroom of
 *   all of them at once;
 * - WebRTC handshakes under way (`maxPendingHandshakes`): a crowd of receivers arriving at once
 *   (a restart, a failover of another instance) is admitted as fast as handshakes complete, not
 *   all before the loop delay can show what they cost.
 * An endpoint that already has a session open (a replacement, a transport switch) is not
 * refused: it is served already.
 */
export class Admission {
  readonly #config: AdmissionConfig;
  readonly #loopDelay: LoopDelaySource;
  readonly #pendingHandshakes: () => number;
  #admitting = true;
  #windowsOver = 0;
  #windowsUnder = 0;
  #lastP99Ms = 0;
  readonly #refused: Record<RefusalReason, number> = { loop_delay: 0, handshakes: 0 };

  constructor(o: { config: AdmissionConfig; timers: TimerQueue; loopDelay: LoopDelaySource; pendingHandshakes: () => number }) {
    this.#config = o.config;
    this.#loopDelay = o.loopDelay;
    this.#pendingHandshakes = o.pendingHandshakes;
    if (o.config.maxLoopDelayMs > 0) {
      const window = o.timers.timer(() => {
        this.#endWindow();
        window.after(o.config.windowMs);
      });
      window.after(o.config.windowMs);
    }
  }

  get admitting(): boolean {
    return this.#admitting;
  }

  /** A new endpoint's session: throws MS_OVERLOADED (503, retryable) past a budget. */
  admit(): void {
    if (!this.#admitting) {
      this.#refused.loop_delay++;
      throw new MirrorstreamError('MS_OVERLOADED', `the gateway is over its budget: event loop p99 ${Math.round(this.#lastP99Ms)} ms late (admission.maxLoopDelayMs ${this.#config.maxLoopDelayMs}); try another instance, or retry after Retry-After`, { retryable: true, retryAfterMs: this.#config.retryAfterS * 1000 });
    }
    const pending = this.#pendingHandshakes();
    if (this.#config.maxPendingHandshakes > 0 && pending >= this.#config.maxPendingHandshakes) {
      this.#refused.handshakes++;
      // handshakes complete within a second or so: come back soon, not after retryAfterS
      throw new MirrorstreamError('MS_OVERLOADED', `the gateway has ${pending} WebRTC handshakes under way (admission.maxPendingHandshakes); retry after Retry-After`, { retryable: true, retryAfterMs: HANDSHAKES_RETRY_AFTER_MS });
    }
  }

  snapshot(): AdmissionSnapshot {
    return { admitting: this.#admitting, loop_delay_p99_ms: this.#lastP99Ms, pending_handshakes: this.#pendingHandshakes(), refused: { ...this.#refused } };
  }

  stop(): void {
    this.#loopDelay.stop();
  }

  #endWindow(): void {
    const p99 = this.#loopDelay.p99Ms();
    this.#loopDelay.reset();
    this.#lastP99Ms = p99;
    const { maxLoopDelayMs, windowsToClose, windowsToOpen, resumeRatio } = this.#config;
    this.#windowsOver = p99 > maxLoopDelayMs ? this.#windowsOver + 1 : 0;
    this.#windowsUnder = p99 < maxLoopDelayMs * resumeRatio ? this.#windowsUnder + 1 : 0;
    if (this.#admitting && this.#windowsOver >= windowsToClose) this.#admitting = false;
    else if (!this.#admitting && this.#windowsUnder >= windowsToOpen) this.#admitting = true;
  }
}
