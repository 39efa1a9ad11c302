import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks';
import { machineShare, machineTicks } from '../../bench/stats.js';

/**
 * Real-clock bounds that hold on a loaded machine. A test on real processes and sockets cannot
 * move to the manual clock; what it times is a chain of steps, each of which a busy machine can
 * delay by about as long as it delays an event loop. So such a bound is
 * `nominal + k × measured delay`: `nominal` from the config under test, `k` the number of
 * scheduling hops in the chain, and the delay what this process's event loop (and, reported by
 * them, the child processes') actually saw over the run. Broken behaviour (no switch, or one
 * that takes many times the nominal on an idle machine) still fails it; a busy machine does
 * not. The figures go beside the result in the test's log line.
 */

/** Milliseconds on CLOCK_MONOTONIC (`process.hrtime`): one basis shared by every process on a Linux machine. */
export function monoMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export class SchedulingDelay {
  readonly #histogram: IntervalHistogram;
  readonly #noted: { at: number; ms: number }[] = [];
  readonly #ticks = machineTicks();
  readonly #since = performance.now();

  private constructor() {
    this.#histogram = monitorEventLoopDelay({ resolution: 10 });
    this.#histogram.enable();
  }

  /** Start measuring this process's event loop delay. */
  static start(): SchedulingDelay {
    return new SchedulingDelay();
  }

  /** A delay measured elsewhere (a child process's own event loop), at `atMono` (monoMs). */
  note(ms: number, atMono = monoMs()): void {
    this.#noted.push({ at: atMono, ms });
  }

  /** The worst delay in ms: this process's since start, and what was noted at or after `fromMono`. */
  worstMs(fromMono = -Infinity): number {
    const own = this.#histogram.max / 1e6;
    return Math.max(own, ...this.#noted.filter((n) => n.at >= fromMono).map((n) => n.ms));
  }

  /** `nominalMs + k × worstMs(fromMono)`, and a line that says how it was made. */
  bound(nominalMs: number, k: number, fromMono?: number): { ms: number; text: string } {
    const worst = this.worstMs(fromMono);
    const ms = nominalMs + k * worst;
    return { ms, text: `bound ${Math.round(ms)} ms = ${nominalMs} + ${k} × ${worst.toFixed(1)} ms measured scheduling delay (${this.describe()})` };
  }

  /** This process's delay percentiles and the machine's CPU use since start. */
  describe(): string {
    const h = this.#histogram;
    const share = machineShare(this.#ticks, machineTicks());
    const secs = ((performance.now() - this.#since) / 1000).toFixed(0);
    const children = this.#noted.length === 0 ? '' : `, children max ${Math.max(...this.#noted.map((n) => n.ms)).toFixed(1)} ms`;
    return `event loop p50 ${(h.percentile(50) / 1e6).toFixed(1)} / p99 ${(h.percentile(99) / 1e6).toFixed(1)} / max ${(h.max / 1e6).toFixed(1)} ms${children}; machine ${share.busyPct.toFixed(0)} % busy, ${share.stealPct.toFixed(0)} % stolen over ${secs} s`;
  }

  stop(): void {
    this.#histogram.disable();
  }
}
