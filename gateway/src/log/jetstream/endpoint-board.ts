import type { Clock } from '@mirrorstream/receiver/protocol';
import type { KV } from '@nats-io/kv';
import type { Logger } from 'pino';
import type { HealthSnapshot } from '../../health/score.js';
import type { EndpointView } from '../../streams/types.js';
import type { EndpointBoard, SharedEndpointState } from '../backend.js';
import { escapeId, unescapeId } from './names.js';

/** A holder republishes at least this often; a record older than STALE_MS is a holder gone. */
const REFRESH_MS = 500;
const STALE_MS = 1_500;

interface Record_ extends SharedEndpointState {
  readonly at: number;
}

/**
 * Endpoint health on a KV bucket: each instance writes `<endpoint>.<instance>` for the
 * endpoints connected to it, when something changed and every REFRESH_MS; the others read
 * it through a watch. A record that is not refreshed (its instance died) counts as the
 * endpoint disconnected from the time it was last heard of.
 */
export class JetStreamEndpointBoard implements EndpointBoard {
  readonly #kv: KV;
  readonly #me: string;
  readonly #clock: Clock;
  readonly #log: Logger;
  /** endpoint -> instance -> record, of the other instances. */
  readonly #others = new Map<string, Map<string, Record_>>();
  /** Told when another instance's record of an endpoint changes its state or verdict. */
  onChange: ((endpointId: string) => void) | undefined;
  /** What we sent last per endpoint, and when. */
  readonly #sent = new Map<string, { json: string; at: number }>();

  constructor(kv: KV, me: string, clock: Clock, log: Logger) {
    this.#kv = kv;
    this.#me = me;
    this.#clock = clock;
    this.#log = log;
  }

  async watch(): Promise<void> {
    const entries = await this.#kv.watch();
    void (async () => {
      for await (const e of entries) {
        const dot = e.key.lastIndexOf('.');
        if (dot < 0) continue;
        const endpointId = unescapeId(e.key.slice(0, dot));
        const instance = unescapeId(e.key.slice(dot + 1));
        if (instance === this.#me) continue;
        const byInstance = this.#others.get(endpointId) ?? new Map<string, Record_>();
        this.#others.set(endpointId, byInstance);
        if (e.operation !== 'PUT') {
          byInstance.delete(instance);
          continue;
        }
        try {
          const record = e.json<Record_>();
          const before = byInstance.get(instance);
          byInstance.set(instance, record);
          if (before?.state !== record.state || before.degraded !== record.degraded) this.onChange?.(endpointId);
        } catch {
          // not ours to read
        }
      }
    })();
  }

  publish(endpointId: string, state: SharedEndpointState): void {
    const now = this.#clock.now();
    const json = JSON.stringify({ ...state, health: { ...state.health, metrics: {} } });
    const last = this.#sent.get(endpointId);
    if (last && last.json === json && now - last.at < REFRESH_MS) return;
    this.#sent.set(endpointId, { json, at: now });
    const record: Record_ = { ...state, at: now };
    this.#kv.put(`${escapeId(endpointId)}.${escapeId(this.#me)}`, JSON.stringify(record)).catch((error: unknown) => {
      this.#sent.delete(endpointId);
      this.#log.warn({ endpointId, err: error }, 'endpoint health not shared; retrying');
    });
  }

  view(endpointId: string): EndpointView | undefined {
    const records = [...(this.#others.get(endpointId)?.values() ?? [])];
    if (records.length === 0) return undefined;
    const now = this.#clock.now();
    const connected = records.filter((r) => r.state !== 'disconnected' && now - r.at < STALE_MS).sort((a, b) => b.at - a.at)[0];
    if (connected) return remoteView(connected);
    // nobody holds it now: disconnected since the latest instance lost it (or went silent)
    const lostAt = Math.max(...records.map((r) => (r.state === 'disconnected' ? (r.disconnectedAt ?? r.at) : r.at)));
    return remoteView({ state: 'disconnected', degraded: false, upSince: undefined, disconnectedAt: lostAt, streams: {}, health: records[0]?.health ?? emptyHealth(), at: lostAt });
  }
}

function remoteView(r: Record_): EndpointView {
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
