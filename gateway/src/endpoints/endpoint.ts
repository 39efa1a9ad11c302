import type { HeartbeatConfig } from '../config.js';
import type { EndpointState } from '../failover/policy.js';
import { PhiAccrualDetector } from '../health/failure-detector.js';
import type { EndpointView } from '../streams/stream.js';
import type { Connection } from './connection.js';

/**
 * What the gateway knows about one endpoint across its connections: the current
 * connection, the failure detector fed by heartbeat echoes, the derived state and RTT.
 */
export class Endpoint implements EndpointView {
  readonly id: string;
  readonly #heartbeat: HeartbeatConfig;
  #connection: Connection | undefined;
  #detector: PhiAccrualDetector | undefined;
  #state: EndpointState = 'disconnected';
  #upSince: number | undefined;
  #phi = 0;
  rttMs: number | undefined;
  /** Smoothed RTT (RFC 6298 style, alpha 1/8). */
  srttMs: number | undefined;
  lastHeartbeatAt: number | undefined;
  connects = 0;
  /** Times the detector moved the endpoint to suspect or dead. */
  heartbeatMisses = 0;

  constructor(id: string, heartbeat: HeartbeatConfig) {
    this.id = id;
    this.#heartbeat = heartbeat;
  }

  get state(): EndpointState {
    return this.#state;
  }

  get upSince(): number | undefined {
    return this.#upSince;
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
    this.#connection = connection;
    this.#detector = new PhiAccrualDetector({
      expectedIntervalMs: this.#heartbeat.intervalMs,
      minStdDevMs: this.#heartbeat.minStdDevMs,
      acceptablePauseMs: this.#heartbeat.acceptablePauseMs,
      windowSize: this.#heartbeat.windowSize,
    });
    this.#detector.reset(now);
    this.connects++;
    this.#setState('alive', now);
    return previous === connection ? undefined : previous;
  }

  /** The connection closed; returns whether it was the current one. */
  detach(connection: Connection, now: number): boolean {
    if (this.#connection !== connection) return false;
    this.#connection = undefined;
    this.#detector = undefined;
    this.#phi = 0;
    this.#setState('disconnected', now);
    return true;
  }

  heartbeatAck(rttMs: number, now: number): void {
    this.#detector?.heartbeat(now);
    this.lastHeartbeatAt = now;
    this.rttMs = rttMs;
    this.srttMs = this.srttMs === undefined ? rttMs : this.srttMs + (rttMs - this.srttMs) / 8;
  }

  /** Re-derive the state from phi; returns the previous state if it changed. */
  check(now: number): EndpointState | undefined {
    if (!this.#detector) return undefined;
    this.#phi = this.#detector.phi(now);
    const next: EndpointState =
      this.#phi >= this.#heartbeat.phiDead ? 'dead' : this.#phi >= this.#heartbeat.phiSuspect ? 'suspect' : 'alive';
    if (next === this.#state) return undefined;
    const previous = this.#state;
    if (next !== 'alive') this.heartbeatMisses++;
    this.#setState(next, now);
    return previous;
  }

  #setState(state: EndpointState, now: number): void {
    if (state === 'alive' && this.#state !== 'alive') this.#upSince = now;
    if (state !== 'alive') this.#upSince = undefined;
    this.#state = state;
  }
}
