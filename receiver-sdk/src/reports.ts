import type { FrameLink } from './link.js';
import type { Clock, TimerHandle } from './protocol/clock.js';
import { encodeFrame, type ReceiverReportFrame } from './protocol/frames.js';
import { PathRtt } from './path-rtt.js';

/** Where the reports' numbers come from (InboundStreams). */
export interface ReportSource {
  /** RECEIVER_REPORT per stream for the last `seconds`. */
  reports(seconds: number, rttMs: number | null): ReceiverReportFrame[];
}

/**
 * RECEIVER_REPORT per stream on the open link: what arrived, at what rate, the RTT this side
 * sees and the chunks lost in transit, so the gateway can score the path from both ends. A
 * report that is due goes out with the echo of the gateway's next heartbeat (one turn, back to
 * back), so a gateway with thousands of receivers gets them in the batches its heartbeats went
 * out in, not one wake-up each at random times; a timer sends it if no heartbeat came.
 * The gateway may ask for reports less often (HEARTBEAT's `reportMs`: every 5 s by default where
 * no failover decision waits on this endpoint); the interval in force is the slower of that and
 * the receiver's own `reportIntervalMs`.
 */
export class ReceiverReports {
  readonly #clock: Clock;
  /** The receiver's own interval (`reportIntervalMs`; 0: no reports). */
  readonly #ownIntervalMs: number;
  /** The interval in force: the slower of ours and the one the gateway told on this link. */
  #intervalMs: number;
  readonly #source: ReportSource;
  readonly #rtt: PathRtt;
  /** The link reported on: set at WELCOME, cleared when the receiver leaves it. */
  #link: FrameLink | undefined;
  #timer: TimerHandle | undefined;
  #sending = false;
  /** A report went out on the current link. */
  #reported = false;
  #lastReportAt = 0;

  /** `intervalMs` 0 disables reports (the RTT is still measured for whoever asks). */
  constructor(clock: Clock, intervalMs: number, source: ReportSource) {
    this.#clock = clock;
    this.#ownIntervalMs = intervalMs;
    this.#intervalMs = intervalMs;
    this.#source = source;
    this.#rtt = new PathRtt(clock);
  }

  /** The gateway welcomed us on `link`: report on it, a full interval from now. */
  start(link: FrameLink): void {
    // an RTT is the path's: a new link measures its own
    if (link !== this.#link) this.#rtt.reset();
    this.#link = link;
    // a new session: the gateway tells its interval again (or never, if it predates that)
    this.#intervalMs = this.#ownIntervalMs;
    this.#reported = false;
    this.#clock.clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#ownIntervalMs <= 0) return;
    this.#lastReportAt = this.#clock.now();
    this.#timer = this.#clock.setInterval(() => {
      if (this.#clock.now() - this.#lastReportAt >= 1.5 * this.#dueMs) void this.#report();
    }, this.#ownIntervalMs);
  }

  /** The gateway's HEARTBEAT told how often it wants reports: that holds until it tells another. */
  told(reportMs: number): void {
    if (this.#ownIntervalMs > 0) this.#intervalMs = Math.max(this.#ownIntervalMs, reportMs);
  }

  /** The first report on a link goes out at our own interval, so the gateway has one soon after WELCOME. */
  get #dueMs(): number {
    return this.#reported ? this.#intervalMs : this.#ownIntervalMs;
  }

  /** The link is left (or the receiver closed): nothing more goes out on it. */
  stop(): void {
    this.#clock.clearInterval(this.#timer);
    this.#timer = undefined;
    this.#link = undefined;
  }

  /** The echo of our own heartbeat came back. */
  echoed(sentAt: number): void {
    this.#rtt.echoed(sentAt);
  }

  /** A control HEARTBEAT from the gateway came: a report that is (nearly) due goes with its echo. */
  heartbeat(): void {
    if (this.#timer && this.#clock.now() - this.#lastReportAt >= 0.9 * this.#dueMs) void this.#report();
  }

  async #report(): Promise<void> {
    const link = this.#link;
    if (!link || this.#sending) return;
    this.#sending = true;
    try {
      if (!(await this.#rtt.refresh(link, () => link === this.#link))) return;
      const now = this.#clock.now();
      const seconds = Math.max(0.001, (now - this.#lastReportAt) / 1000);
      this.#lastReportAt = now;
      for (const report of this.#source.reports(seconds, this.#rtt.ms)) {
        void link.send(encodeFrame(report), 'control');
        this.#reported = true;
      }
    } finally {
      this.#sending = false;
    }
  }
}
