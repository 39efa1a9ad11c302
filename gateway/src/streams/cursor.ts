import type { HealthConfig } from '../config.js';
import { HealthTracker } from '../health/score.js';
import { Pacer, type PacerOptions } from '../rate/pacer.js';
import { RateWindow } from '../rate/rate-window.js';
import type { BacklogPlan } from '../rate/overflow.js';
import type { Role } from './types.js';

/** No layer cap. */
export const ALL_LAYERS = Number.POSITIVE_INFINITY;
/** Pacing follows delivery over this short window, so a new path ramps in a few RTTs. */
const PACING_WINDOW_MS = 250;

/** Delivery state of one endpoint on one stream. */
export interface Cursor {
  readonly endpointId: string;
  role: Role;
  /** Next seq to send while active. */
  nextSeq: number;
  /** Highest seq sent (or declared lost by GAP) to this endpoint. */
  sentUpTo: number;
  /** Cumulative ack from the endpoint. */
  lastAcked: number;
  /** When the cumulative ack last moved (undefined: never). */
  lastAckAt: number | undefined;
  everActive: boolean;
  chunksSent: number;
  bytesSent: number;
  /**
   * Sent DATA not yet acked, oldest first, flat: seq, sentAt, bytes, seq, sentAt, bytes, ...
   * (ack lag, delivery rate). Flat numbers, not an array per chunk: nothing allocated per send.
   */
  inFlight: number[];
  /** Entry (not number) index of the oldest unacked chunk in `inFlight`. */
  inFlightHead: number;
  /** Bytes of DATA sent and not yet acked (the sum over `inFlight` from its head). */
  inFlightBytes: number;
  /** The shortest time from a send to its ack lately (ms): the path's round trip without queueing. */
  ackRtt: MinOverTime;
  /** Bytes of DATA this endpoint acked (skipped chunks excluded), over the health window. */
  delivered: RateWindow;
  /** The same over a short window: pacing follows it so a new path ramps in a few RTTs. */
  deliveredRecent: RateWindow;
  /** Payload bytes the overflow policy skipped for this endpoint, over the health window. */
  skippedBytes: RateWindow;
  activeSince: number | undefined;
  /** The seq it was first sent when it last became active. */
  activeFromSeq: number;
  /** Stream-level health of this endpoint: ack lag and delivery ratio while active. */
  health: HealthTracker;
  pacer: Pacer;
  wakeScheduled: boolean;
  /** Overflow plan for the current backlog: seqs to send up to `to`, the rest skipped. */
  plan: (BacklogPlan & { idx: number; to: number }) | undefined;
  /** layers policy: highest layer this endpoint gets now. */
  maxLayer: number;
  layerOkSince: number | undefined;
  /** Chunks skipped by the overflow policy, by GAP reason. */
  skipped: Record<string, number>;
}

export function newCursor(endpointId: string, health: HealthConfig, pacing: PacerOptions, now: number): Cursor {
  return {
    endpointId,
    role: 'standby',
    nextSeq: 1,
    sentUpTo: 0,
    lastAcked: 0,
    lastAckAt: undefined,
    everActive: false,
    chunksSent: 0,
    bytesSent: 0,
    inFlight: [],
    inFlightHead: 0,
    inFlightBytes: 0,
    ackRtt: new MinOverTime(ACK_RTT_WINDOW_MS),
    delivered: new RateWindow(health.windowMs),
    deliveredRecent: new RateWindow(PACING_WINDOW_MS),
    skippedBytes: new RateWindow(health.windowMs),
    activeSince: undefined,
    activeFromSeq: 1,
    health: newCursorHealth(health, now),
    pacer: new Pacer(pacing, now),
    wakeScheduled: false,
    plan: undefined,
    maxLayer: ALL_LAYERS,
    layerOkSince: undefined,
    skipped: {},
  };
}

/** A new path is measured afresh. */
export function newCursorHealth(health: HealthConfig, now: number): HealthTracker {
  return new HealthTracker({ degradeAfterMs: health.degradeAfterMs, recoverAfterMs: health.recoverAfterMs }, now);
}

/**
 * Cumulative ack from the endpoint; acks beyond what was sent are clamped. Counts the
 * newly acked bytes as delivered. Returns the new `lastAcked`, or undefined when the ack
 * moved nothing.
 */
export function applyAck(c: Cursor, seq: number, now: number): number | undefined {
  const acked = Math.min(seq, c.sentUpTo);
  if (acked <= c.lastAcked) return undefined;
  c.lastAcked = acked;
  c.lastAckAt = now;
  let bytes = 0;
  let newestSentAt: number | undefined;
  const f = c.inFlight;
  while (c.inFlightHead * IN_FLIGHT_STRIDE < f.length && (f[c.inFlightHead * IN_FLIGHT_STRIDE] ?? Infinity) <= acked) {
    newestSentAt = f[c.inFlightHead * IN_FLIGHT_STRIDE + 1];
    bytes += f[c.inFlightHead * IN_FLIGHT_STRIDE + 2] ?? 0;
    c.inFlightHead++;
  }
  c.inFlightBytes = Math.max(0, c.inFlightBytes - bytes);
  if (newestSentAt !== undefined) c.ackRtt.add(now, now - newestSentAt);
  if (bytes > 0) {
    c.delivered.add(now, bytes);
    c.deliveredRecent.add(now, bytes);
  }
  // everything acked (the usual case at low rates): start over in the same array; else
  // compact now and then instead of shifting the array on every ack
  if (c.inFlightHead * IN_FLIGHT_STRIDE === f.length) clearInFlight(c);
  else if (c.inFlightHead > 1024 && c.inFlightHead * IN_FLIGHT_STRIDE * 2 > f.length) {
    f.splice(0, c.inFlightHead * IN_FLIGHT_STRIDE);
    c.inFlightHead = 0;
  }
  return acked;
}

const IN_FLIGHT_STRIDE = 3;

/** DATA `seq` of `bytes` went out at `at`. */
export function recordSent(c: Cursor, seq: number, at: number, bytes: number): void {
  c.inFlight.push(seq, at, bytes);
  c.inFlightBytes += bytes;
}

/** When the oldest unacked DATA went out (undefined: none in flight). */
export function oldestUnackedAt(c: Cursor): number | undefined {
  return c.inFlightHead * IN_FLIGHT_STRIDE < c.inFlight.length ? c.inFlight[c.inFlightHead * IN_FLIGHT_STRIDE + 1] : undefined;
}

/** Forget what was in flight (the cursor starts or stops being active). */
export function clearInFlight(c: Cursor): void {
  c.inFlight.length = 0;
  c.inFlightHead = 0;
  c.inFlightBytes = 0;
}

/** Send-to-ack times count toward the round trip for this long. */
const ACK_RTT_WINDOW_MS = 10_000;

/** The smallest sample of the last `windowMs` (at least; two halves, so memory stays constant). */
export class MinOverTime {
  readonly #halfMs: number;
  #current = Infinity;
  #previous = Infinity;
  #since: number | undefined;

  constructor(windowMs: number) {
    this.#halfMs = windowMs / 2;
  }

  add(now: number, value: number): void {
    this.#roll(now);
    this.#current = Math.min(this.#current, value);
  }

  /** Infinity before any sample. */
  min(now: number): number {
    this.#roll(now);
    return Math.min(this.#current, this.#previous);
  }

  #roll(now: number): void {
    this.#since ??= now;
    if (now - this.#since < this.#halfMs) return;
    this.#previous = now - this.#since < 2 * this.#halfMs ? this.#current : Infinity;
    this.#current = Infinity;
    this.#since = now;
  }
}

/**
 * Stream-level health of one endpoint, from what only the stream sees: how far behind its
 * acks the active endpoint is, whether it delivers what the producer offers, and on an
 * unreliable stream what the receiver says it lost. Standbys get no samples, so their
 * verdict recovers after `recoverAfterMs`. Returns true when the verdict changed.
 */
export function assessCursor(
  c: Cursor,
  at: { now: number; active: boolean; inputRate: number; receiverLoss: number | undefined; skipping: boolean },
  h: HealthConfig,
): boolean {
  const { now, active, inputRate } = at;
  const oldest = oldestUnackedAt(c);
  const warmedUp = active && c.activeSince !== undefined && now - c.activeSince >= h.windowMs;
  return c.health.update(now, {
    ack_lag_ms: { value: active ? (oldest === undefined ? 0 : now - oldest) : undefined, threshold: h.maxAckLagMs, kind: 'max', source: 'gateway.ack.oldest-unacked' },
    // what the overflow policy skipped on purpose counts as taken; and a stream whose policy
    // skips is not judged on it at all: an endpoint that cannot take everything is the policy's
    // to handle (a layered stream carried at a lower layer is adapting, not failing), and the
    // onset of a rate cap, before the first skip, would read as a breach
    delivery_ratio: {
      value: warmedUp && inputRate > 0 ? (c.delivered.rate(now) + c.skippedBytes.rate(now)) / inputRate : undefined,
      threshold: at.skipping ? 0 : h.minDeliveryRatio,
      kind: 'min',
      source: 'gateway.ack.(delivered+policy-skipped)-bytes/input-bytes',
    },
    receiver_loss_ratio: {
      value: active ? at.receiverLoss : undefined,
      threshold: h.maxLossRatio,
      kind: 'max',
      source: 'receiver.report.gapCount',
    },
  });
}
