import type { ReceiverReportFrame as ReceiverReport } from '@mirrorstream/receiver/protocol';
import type { HealthConfig, HeartbeatConfig } from '../config.js';
import { PhiAccrualDetector, type EndpointState } from '../health/failure-detector.js';
import { probeSlotsFor, ProbeWindow } from '../health/probes.js';
import { RttHistogram, SilenceDetector } from '../health/silence.js';
import { HealthTracker, type HealthSnapshot, type MetricSample } from '../health/score.js';
import type { EndpointView } from '../streams/types.js';
import type { Connection } from './connection.js';

/** A receiver report counts this long, or 3 report intervals where the receiver was asked for fewer. */
const REPORT_FRESH_MS = 3_000;

/**
 * What the gateway knows about one endpoint across its connections: the current
 * connection, the failure detector fed by heartbeat echoes, the derived state and RTT.
 */
export class Endpoint implements EndpointView {
  readonly id: string;
  readonly #heartbeat: HeartbeatConfig;
  readonly #healthConfig: HealthConfig;
  readonly #probes: ProbeWindow;
  readonly #silence: SilenceDetector;
  /** Probe RTTs over a longer history than the health window: what silence is judged against. */
  readonly #rtts = new RttHistogram();
  /** Time spent suspect before the current spell, and when the current one began. */
  #suspectMsBefore = 0;
  #suspectSince: number | undefined;
  #health: HealthTracker;
  #lastKind: string | undefined;
  /** Receiver-reported RTTs are not used until then (they span a stall of the gateway's own). */
  #reportsIgnoredUntil = 0;
  /** Latest RECEIVER_REPORT per stream and the one before it (for per-interval loss). */
  readonly #reports = new Map<string, { at: number; now: ReceiverReport; before: ReceiverReport | undefined }>();
  /** When the endpoint last became alive *and* healthy: what fail-back's stable period counts from. */
  #goodSince: number | undefined;
  #connection: Connection | undefined;
  #detector: PhiAccrualDetector | undefined;
  #state: EndpointState = 'disconnected';
  #phi = 0;
  rttMs: number | undefined;
  /** Smoothed RTT (RFC 6298 style, alpha 1/8). */
  srttMs: number | undefined;
  lastHeartbeatAt: number | undefined;
  connects = 0;
  /** What the receiver said in HELLO it can dial, in preference order. */
  transports: string[] = [];

  /** On its first-listed transport with another one to go to. */
  get canSwitchTransport(): boolean {
    const kind = this.link?.transport.kind;
    return kind !== undefined && this.transports.length >= 2 && this.transports[0] === kind;
  }
  /** When the last connection closed (undefined while connected). */
  disconnectedAt: number | undefined;
  /** Times the detector moved the endpoint to suspect or dead. */
  heartbeatMisses = 0;

  constructor(id: string, heartbeat: HeartbeatConfig, health: HealthConfig, now: number) {
    this.id = id;
    this.#heartbeat = heartbeat;
    this.#healthConfig = health;
    this.#probes = new ProbeWindow(health.windowMs, probeSlotsFor(health.standbyProbeIntervalMs, health.windowMs));
    this.#silence = new SilenceDetector({ floorMs: health.silenceFloorMs, rttFactor: health.silenceRttFactor, probeIntervalMs: health.carrierProbeIntervalMs });
    this.#health = new HealthTracker({ degradeAfterMs: health.degradeAfterMs, recoverAfterMs: health.recoverAfterMs }, now);
  }

  /** Path health from probes and transport telemetry (degraded = do not route to it if avoidable). */
  get degraded(): boolean {
    return this.#health.verdict === 'degraded';
  }

  health(): HealthSnapshot {
    return this.#health.snapshot();
  }

  /** Store what the receiver measured on its side. */
  report(r: ReceiverReport, at: number): void {
    const prev = this.#reports.get(r.streamId);
    this.#reports.set(r.streamId, { at, now: r, before: prev?.now });
  }

  /** The receiver's latest report for a stream, with its age. */
  lastReport(streamId: string): { at: number; report: ReceiverReport } | undefined {
    const r = this.#reports.get(streamId);
    return r ? { at: r.at, report: r.now } : undefined;
  }

  /** Share of chunks the receiver lost in transit between its last two reports (unreliable streams). */
  receiverLoss(streamId: string): number | undefined {
    const r = this.#reports.get(streamId);
    if (!r?.before) return undefined;
    const lost = r.now.gapCount - r.before.gapCount;
    const got = r.now.receivedChunks - r.before.receivedChunks;
    return lost + got > 0 ? lost / (lost + got) : undefined;
  }

  probeSent(nonce: number, at: number): void {
    this.#probes.sent(nonce, at);
    this.#silence.probeSent(at);
  }

  /**
   * A valid frame arrived on the current connection: the endpoint is not silent. Returns
   * true when it was (its state should be re-derived at once: a hedge may end).
   */
  heard(now: number): boolean {
    const wasSilent = this.#state === 'suspect' && this.#silence.isSilent(now);
    this.#silence.heard();
    return wasSilent;
  }

  /** When the endpoint turns silent unless something is heard first (undefined: no probe waits). */
  get silenceDeadline(): number | undefined {
    return this.link ? this.#silence.deadline : undefined;
  }

  /** How long a probe may wait, with nothing heard, before this endpoint counts as silent (while it is active on a stream). */
  get silenceLimitMs(): number {
    return this.#silence.limitMs;
  }

  /** Total time spent suspect (silent, or heartbeats late), up to `now`. */
  suspectMs(now: number): number {
    return this.#suspectMsBefore + (this.#suspectSince === undefined ? 0 : now - this.#suspectSince);
  }

  probeAck(nonce: number, at: number): void {
    const rtt = this.#probes.echoed(nonce, at);
    if (rtt !== undefined) this.#rtts.add(rtt);
  }

  /** When the path was last re-measured. */
  assessedAt = Number.NEGATIVE_INFINITY;

  /** Re-measure the path; returns true when the verdict changed. */
  assess(now: number): boolean {
    if (!this.link) return false;
    this.assessedAt = now;
    const h = this.#healthConfig;
    const median = this.#probes.medianRttMs();
    this.#silence.setPath(this.#rtts.quantile(0.99), this.#probes.lossRatio());
    // a probe is lost when its echo is later than 3 RTTs (at least 300 ms): delay is not loss
    // a slowly probed path keeps at least 10 probes in its window
    this.#probes.settle(now, Math.max(300, 3 * (median ?? this.srttMs ?? 0)), 10 * this.link.probeIntervalMs);
    const samples: Record<string, MetricSample> = {
      rtt_ms:
        median !== undefined
          ? { value: median, threshold: h.maxRttMs, kind: 'max', source: 'gateway.probe.median' }
          : { value: this.srttMs, threshold: h.maxRttMs, kind: 'max', source: 'gateway.heartbeat.srtt' },
      loss_ratio: { value: this.#probes.lossRatio(), threshold: h.maxLossRatio, kind: 'max', source: 'gateway.probe.unreliable-channel' },
    };
    // the receiver's own RTT view (browsers: candidate-pair currentRoundTripTime), if recent
    let receiverRtt: number | undefined;
    const freshMs = this.#reportFreshMs;
    for (const { at, now: r } of this.#reports.values()) {
      if (now - at < freshMs && now >= this.#reportsIgnoredUntil && r.rttMs !== null) receiverRtt = Math.max(receiverRtt ?? 0, r.rttMs);
    }
    samples.receiver_rtt_ms = { value: receiverRtt, threshold: h.maxRttMs, kind: 'max', source: 'receiver.report.rtt' };
    const transportLoss = this.link.transport.lossRate?.();
    if (transportLoss) samples.transport_loss_ratio = { value: transportLoss.value, threshold: h.maxLossRatio, kind: 'max', source: transportLoss.source };
    const changed = this.#health.update(now, samples);
    this.#updateGood(now);
    return changed;
  }

  get state(): EndpointState {
    return this.#state;
  }

  /** Alive and healthy since (fail-back waits for this to be old enough). */
  get upSince(): number | undefined {
    return this.#goodSince;
  }

  get phi(): number {
    return this.#phi;
  }

  get connection(): Connection | undefined {
    return this.#connection;
  }

  get link(): Connection | undefined {
    return this.#connection?.isOpen ? this.#connection : undefined;
  }

  /** A connection finished its handshake; returns the one it replaces, if any. */
  attach(connection: Connection, now: number): Connection | undefined {
    const previous = this.#connection;
    // a different transport is a different path: its health is measured afresh
    if (this.#lastKind !== undefined && this.#lastKind !== connection.transport.kind) {
      this.#health = new HealthTracker({ degradeAfterMs: this.#healthConfig.degradeAfterMs, recoverAfterMs: this.#healthConfig.recoverAfterMs }, now);
    }
    this.#lastKind = connection.transport.kind;
    this.#connection = connection;
    this.#detector = new PhiAccrualDetector({
      expectedIntervalMs: this.#heartbeat.intervalMs,
      minStdDevMs: this.#heartbeat.minStdDevMs,
      acceptablePauseMs: this.#heartbeat.acceptablePauseMs,
      windowSize: this.#heartbeat.windowSize,
    });
    this.#detector.reset(now);
    this.#probes.clear();
    // sized for the rate this connection probes at now (the scheduler resizes it when that changes)
    this.#probes.resize(probeSlotsFor(connection.probeIntervalMs, this.#healthConfig.windowMs));
    this.#silence.reset();
    this.#rtts.clear();
    this.#reports.clear();
    this.disconnectedAt = undefined;
    this.connects++;
    this.#setState('alive', now);
    return previous === connection ? undefined : previous;
  }

  /** The connection closed; returns whether it was the current one. */
  detach(connection: Connection, now: number): boolean {
    if (this.#connection !== connection) return false;
    this.#connection = undefined;
    this.#detector = undefined;
    this.disconnectedAt = now;
    this.#phi = 0;
    this.#setState('disconnected', now);
    return true;
  }

  /**
   * When the phi detector would next change the state if no heartbeat comes: alive → suspect,
   * suspect → dead (undefined: dead or not connected; a heartbeat is what changes it then).
   */
  get livenessDeadline(): number | undefined {
    const phi = this.#state === 'alive' ? this.#heartbeat.phiSuspect : this.#state === 'suspect' ? this.#heartbeat.phiDead : undefined;
    const at = phi === undefined ? undefined : this.#detector?.timeAtPhi(phi);
    // a millisecond past the crossing, so the check there sees it crossed
    return at === undefined ? undefined : at + 1;
  }

  /** Probes now go out every `intervalMs` (the scheduler's choice): the probe window is sized for that rate. */
  probeRateChanged(intervalMs: number): void {
    this.#probes.resize(probeSlotsFor(intervalMs, this.#healthConfig.windowMs));
  }

  /** Heartbeats now come every `intervalMs` (the scheduler's choice): liveness is judged against that rate from now on. */
  heartbeatRateChanged(intervalMs: number, now: number): void {
    this.#detector?.rebase(intervalMs, now);
  }

  heartbeatAck(rttMs: number, now: number): void {
    this.#detector?.heartbeat(now);
    this.lastHeartbeatAt = now;
    this.rttMs = rttMs;
    this.srttMs = this.srttMs === undefined ? rttMs : this.srttMs + (rttMs - this.srttMs) / 8;
  }

  /**
   * The gateway's own event loop was blocked for `ms` until `now`: that is not the endpoint's
   * silence, and what the receiver measured across it (its RTT to us) measured us, not the path.
   */
  forgive(ms: number, now: number): void {
    this.#detector?.forgive(ms);
    this.#silence.forgive(ms);
    this.#reportsIgnoredUntil = now + this.#reportFreshMs;
  }

  get #reportFreshMs(): number {
    return Math.max(REPORT_FRESH_MS, 3 * (this.link?.reportIntervalMs ?? 0));
  }

  /**
   * Re-derive the state from phi and, for an endpoint active on a stream (`watchSilence`),
   * from probe silence; returns the previous state if it changed. A standby is judged by its
   * heartbeats only: a lossy standby path must not keep restarting its fail-back stable period,
   * nor a busy hedging standby make the hedge hop.
   */
  check(now: number, watchSilence: boolean): EndpointState | undefined {
    if (!this.#detector) return undefined;
    this.#phi = this.#detector.phi(now);
    const next: EndpointState =
      this.#phi >= this.#heartbeat.phiDead
        ? 'dead'
        : this.#phi >= this.#heartbeat.phiSuspect || (watchSilence && this.#silence.isSilent(now))
          ? 'suspect'
          : 'alive';
    if (next === this.#state) return undefined;
    const previous = this.#state;
    if (next !== 'alive') this.heartbeatMisses++;
    this.#setState(next, now);
    return previous;
  }

  #setState(state: EndpointState, now: number): void {
    if (this.#suspectSince !== undefined && state !== 'suspect') {
      this.#suspectMsBefore += now - this.#suspectSince;
      this.#suspectSince = undefined;
    } else if (state === 'suspect') this.#suspectSince ??= now;
    this.#state = state;
    this.#updateGood(now);
  }

  #updateGood(now: number): void {
    const good = this.#state === 'alive' && !this.degraded;
    if (!good) this.#goodSince = undefined;
    else this.#goodSince ??= now;
  }
}
