import type { Clock, TimerHandle } from '@mirrorstream/receiver/protocol';
import type { KV } from '@nats-io/kv';
import type { Logger } from 'pino';
import type { HealthSnapshot } from '../../health/score.js';
import type { EndpointView } from '../../streams/types.js';
import type { EndpointBoard, SharedEndpointState } from '../backend.js';
import type { KvChange } from './follow-stream.js';
import type { Presence } from './presence.js';
import { escapeId, unescapeId } from './names.js';
import { parseBoardRecord, type BoardRecord } from './records.js';

/**
 * A holder re-sends its records this often (they live in a bucket with a TTL). Whether the
 * holder is alive comes from presence; only where presence cannot tell yet (this instance
 * just started) does a record older than STALE_MS count as its holder gone.
 */
const REFRESH_MS = 10_000;
export const STALE_MS = 2 * REFRESH_MS;
/** How often the board looks for records to re-send (a failed put is retried then) and stale ones. */
const TICK_MS = 250;
/** A connection lost here is told for this long, then the others judge by silence. */
const TELL_LOSS_MS = 5_000;
/**
 * Another instance's record not heard of for this long is dropped here: the bucket's TTL has
 * removed it by then (no watch event says so), and an instance that restarts leaves its old
 * records behind under its old id.
 */
export const FORGET_RECORD_MS = 60_000;

/**
 * Endpoint health on a KV bucket: each instance writes `<endpoint>.<instance>` for the
 * endpoints connected to it, when something changed (the scheduler publishes then) and every
 * REFRESH_MS (the board's own timer re-sends what it last published); the others take it in
 * from the backend's supervised follower of the bucket (a record that does not parse is
 * skipped). A record whose instance is gone (presence: within a few hundred ms of a crash)
 * counts as the endpoint disconnected from the time that instance was last heard, and the
 * board says so at once.
 */
export class JetStreamEndpointBoard implements EndpointBoard {
  readonly #kv: Pick<KV, 'put'>;
  readonly #me: string;
  readonly #clock: Clock;
  readonly #log: Logger;
  /** endpoint -> instance -> record, of the other instances. */
  readonly #others = new Map<string, Map<string, BoardRecord>>();
  /** Told when another instance's record of an endpoint changes its state or verdict. */
  onChange: ((endpointId: string) => void) | undefined;
  /** What we sent last per endpoint, and when. */
  readonly #sent = new Map<string, { json: string; at: number; state: SharedEndpointState }>();
  /** Endpoints whose newest connected record elsewhere went stale, told once. */
  readonly #staleTold = new Set<string>();
  readonly #timer: TimerHandle;
  readonly #presence: Presence | undefined;

  constructor(kv: Pick<KV, 'put'>, me: string, clock: Clock, log: Logger, presence?: Presence) {
    this.#kv = kv;
    this.#me = me;
    this.#clock = clock;
    this.#log = log;
    this.#presence = presence;
    this.#timer = clock.setInterval(() => this.#refresh(), TICK_MS);
    // an instance gone (or back): its endpoints changed state here, decide now
    presence?.onChange((instance) => {
      for (const [endpointId, byInstance] of this.#others) if (byInstance.has(instance)) this.onChange?.(endpointId);
    });
  }

  /** A record that says its endpoint is connected, from an instance that is alive. */
  #live(instance: string, r: BoardRecord, now: number): boolean {
    if (r.state === 'disconnected') return false;
    const state = this.#presence?.state(instance) ?? 'unknown';
    return state === 'unknown' ? now - r.at < STALE_MS : state === 'alive';
  }

  close(): void {
    this.#clock.clearInterval(this.#timer);
  }

  /** Re-send our records that are due, and tell of records elsewhere that went stale. */
  #refresh(): void {
    const now = this.#clock.now();
    for (const [endpointId, last] of this.#sent) {
      const { state } = last;
      if (state.state === 'disconnected' && now - (state.disconnectedAt ?? 0) > TELL_LOSS_MS) this.#sent.delete(endpointId);
      else if (now - last.at >= REFRESH_MS) this.#put(endpointId, state, last.json, now);
    }
    for (const [endpointId, byInstance] of this.#others) {
      for (const [instance, r] of byInstance) if (now - r.at > FORGET_RECORD_MS) byInstance.delete(instance);
      if (byInstance.size === 0) {
        this.#others.delete(endpointId);
        this.#staleTold.delete(endpointId);
        continue;
      }
      const live = [...byInstance].some(([instance, r]) => this.#live(instance, r, now));
      if (live) this.#staleTold.delete(endpointId);
      else if (!this.#staleTold.has(endpointId) && [...byInstance.values()].some((r) => r.state !== 'disconnected')) {
        this.#staleTold.add(endpointId);
        this.onChange?.(endpointId);
      }
    }
  }

  /** One change of the bucket, from the backend's follower of it (every instance's records: current values, then changes). */
  take(e: KvChange): void {
    const dot = e.key.lastIndexOf('.');
    if (dot < 0) return;
    const endpointId = unescapeId(e.key.slice(0, dot));
    const instance = unescapeId(e.key.slice(dot + 1));
    if (instance === this.#me) return;
    const byInstance = this.#others.get(endpointId) ?? new Map<string, BoardRecord>();
    this.#others.set(endpointId, byInstance);
    if (e.operation !== 'PUT') {
      byInstance.delete(instance);
      return;
    }
    const record = parseBoardRecord(e.value);
    if (!record) {
      this.#log.warn({ key: e.key }, 'endpoint board record is not valid: skipped');
      return;
    }
    const before = byInstance.get(instance);
    byInstance.set(instance, record);
    if (before?.state !== record.state || before.degraded !== record.degraded) this.onChange?.(endpointId);
  }

  publish(endpointId: string, state: SharedEndpointState): void {
    const now = this.#clock.now();
    const json = JSON.stringify({ ...state, health: { ...state.health, metrics: {} } });
    const last = this.#sent.get(endpointId);
    if (last && last.json === json && now - last.at < REFRESH_MS) return;
    this.#put(endpointId, state, json, now);
  }

  #put(endpointId: string, state: SharedEndpointState, json: string, now: number): void {
    this.#sent.set(endpointId, { json, at: now, state });
    const record: BoardRecord = { ...state, at: now };
    this.#kv.put(`${escapeId(endpointId)}.${escapeId(this.#me)}`, JSON.stringify(record)).catch((error: unknown) => {
      // the next refresh sends it again
      const sent = this.#sent.get(endpointId);
      if (sent?.json === json) sent.at = 0;
      this.#log.warn({ endpointId, err: error }, 'endpoint health not shared; retrying');
    });
  }

  view(endpointId: string): EndpointView | undefined {
    const byInstance = this.#others.get(endpointId);
    if (!byInstance || byInstance.size === 0) return undefined;
    const now = this.#clock.now();
    let connected: BoardRecord | undefined;
    let lostAt = 0;
    for (const [instance, r] of byInstance) {
      if (this.#live(instance, r, now)) {
        if (!connected || r.at > connected.at) connected = r;
        continue;
      }
      // nobody holds it now: disconnected since the latest instance lost it (or was last heard)
      const lost = r.state === 'disconnected' ? (r.disconnectedAt ?? r.at) : Math.min(this.#presence?.lastHeard(instance) ?? r.at, now);
      lostAt = Math.max(lostAt, lost);
    }
    if (connected) return remoteView(connected);
    const health = byInstance.values().next().value?.health ?? emptyHealth();
    return remoteView({ state: 'disconnected', degraded: false, upSince: undefined, disconnectedAt: lostAt, streams: {}, health, at: lostAt });
  }
}

function remoteView(r: BoardRecord): EndpointView {
  return {
    state: r.state,
    degraded: r.degraded,
    disconnectedAt: r.disconnectedAt,
    upSince: r.upSince,
    link: undefined,
    receiverLoss: () => undefined,
    streamDegraded: (streamId) => r.streams[streamId] === true,
    health: () => r.health,
  };
}

function emptyHealth(): HealthSnapshot {
  return { verdict: 'healthy', score: 1, since: 0, reasons: [], metrics: {} };
}
