import type { Registry } from '../core/registry.js';
import type { Stream } from '../streams/stream.js';
import type { Dialer, DialStatus } from './dialer.js';
import type { ListenerTarget } from './offer-client.js';

/** What the dial-out decision needs of one stream. */
export interface DialCandidate {
  streamId: string;
  /** Endpoint ids in priority order. */
  endpointList: readonly string[];
  active: ReadonlySet<string> | readonly string[];
  listeners: Readonly<Record<string, ListenerTarget>> | undefined;
  /** The instance deciding its roles (null: none right now). */
  owner: string | null;
}

/** Who dials one listening endpoint, and where. */
export interface DialAssignment {
  target: ListenerTarget;
  /** The stream whose owner dials (the first by id that lists the endpoint with a url). */
  streamId: string;
  /** That owner (null: the stream has none right now, so nobody dials). */
  owner: string | null;
  /** Dialing order: -1 when active somewhere, else the endpoint's best position in a list. */
  rank: number;
}

/**
 * Exactly one instance dials each listening endpoint: the owner of the first stream (by id)
 * that lists it with a url, so every instance reaches the same answer from the same specs and
 * leases.
 */
export function assignDialers(streams: Iterable<DialCandidate>): Map<string, DialAssignment> {
  const chosen = new Map<string, DialAssignment>();
  for (const s of streams) {
    const active = new Set(s.active);
    s.endpointList.forEach((id, position) => {
      const target = s.listeners?.[id];
      if (!target) return;
      const seen = chosen.get(id);
      const rank = Math.min(seen?.rank ?? Infinity, active.has(id) ? -1 : position);
      if (!seen || s.streamId < seen.streamId) chosen.set(id, { target, streamId: s.streamId, owner: s.owner, rank });
      else seen.rank = rank;
    });
  }
  return chosen;
}

/**
 * Which listening endpoints `me` dials, in dialing order: endpoints that are active somewhere
 * first, then by their best position in a list (the spec's "connect to the highest priority
 * first").
 */
export function dialTargets(assignments: ReadonlyMap<string, DialAssignment>, me: string): Map<string, ListenerTarget> {
  const mine = [...assignments].filter(([, a]) => a.owner === me).sort(([a, x], [b, y]) => x.rank - y.rank || (a < b ? -1 : 1));
  return new Map(mine.map(([id, a]) => [id, a.target]));
}

/**
 * The gateway's side of listening endpoints: follows the registry (streams added and removed,
 * lists changed, leases moving between instances) and tells the Dialer which endpoints this
 * instance dials now.
 */
export class DialOut {
  readonly #registry: Registry;
  readonly #dialer: Dialer;
  readonly #instanceId: string;
  /** Streams changed since the last decision. */
  readonly #changed = new Set<Stream>();
  /** Streams with listening endpoints: the only ones a decision reads. */
  readonly #listening = new Map<string, Stream>();
  #assignments = new Map<string, DialAssignment>();
  #scheduled = false;
  #closed = false;

  /**
   * Every input of the decision comes with an event: a stream added or removed, its list
   * changed (a listener's url changes only by removing and adding it: MS_ENDPOINT_CONFLICT
   * otherwise), its lease moving.
   */
  constructor(o: { registry: Registry; dialer: Dialer; instanceId: string }) {
    this.#registry = o.registry;
    this.#dialer = o.dialer;
    this.#instanceId = o.instanceId;
    o.registry.on('streamAdded', (stream) => {
      stream.on('listChanged', () => this.#refresh(stream));
      this.#refresh(stream);
    });
    o.registry.on('streamRemoved', (stream) => this.#refresh(stream));
    o.registry.on('ownerChanged', (stream) => this.#refresh(stream));
  }

  /** Who dials a listening endpoint, as of the last decision (undefined: no stream lists it with a url). */
  assignment(endpointId: string): DialAssignment | undefined {
    return this.#assignments.get(endpointId);
  }

  /**
   * Decide again, once, after what is running now (a stream is announced before its record is
   * kept); a decision reads only the streams with listening endpoints.
   */
  #refresh(stream: Stream): void {
    this.#changed.add(stream);
    if (this.#scheduled || this.#closed) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      if (this.#closed) return;
      const r = this.#registry;
      for (const s of this.#changed) {
        const listens = r.findStream(s.id) === s && Object.keys(r.record(s.id)?.spec.listeners ?? {}).length > 0;
        if (listens) this.#listening.set(s.id, s);
        else if (this.#listening.get(s.id) === s) this.#listening.delete(s.id);
      }
      this.#changed.clear();
      const candidates = [...this.#listening.values()].map((s) => ({ streamId: s.id, endpointList: s.endpointList, active: s.active, listeners: r.record(s.id)?.spec.listeners, owner: r.ownerOf(s.id) }));
      this.#assignments = assignDialers(candidates);
      this.#dialer.want(dialTargets(this.#assignments, this.#instanceId));
    });
  }

  /** An endpoint was judged dead: a listening one this instance dials is dialed again. */
  endpointDead(endpointId: string): void {
    this.#dialer.endpointDead(endpointId);
  }

  /** This instance's dial of a listening endpoint (undefined: another instance dials it, or nobody). */
  status(endpointId: string): DialStatus | undefined {
    return this.#dialer.status(endpointId);
  }

  /** Stop dialing (a closing gateway): the connections stay with the sessions, which close them. */
  stop(): void {
    this.#closed = true;
    this.#dialer.stop();
  }
}
