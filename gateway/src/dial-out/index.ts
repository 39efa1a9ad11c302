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

/**
 * Which listening endpoints `me` dials, in dialing order. Exactly one instance dials each: the
 * owner of the first stream (by id) that lists the endpoint with a url, so every instance
 * reaches the same answer from the same specs and leases. Order: endpoints that are active
 * somewhere first, then by their best position in a list (the spec's "connect to the highest
 * priority first").
 */
export function dialTargets(streams: Iterable<DialCandidate>, me: string): Map<string, ListenerTarget> {
  const chosen = new Map<string, { streamId: string; owner: string | null; target: ListenerTarget }>();
  const rank = new Map<string, number>();
  for (const s of streams) {
    const active = new Set(s.active);
    s.endpointList.forEach((id, position) => {
      const target = s.listeners?.[id];
      if (!target) return;
      const seen = chosen.get(id);
      if (!seen || s.streamId < seen.streamId) chosen.set(id, { streamId: s.streamId, owner: s.owner, target });
      const r = active.has(id) ? -1 : position;
      rank.set(id, Math.min(rank.get(id) ?? Infinity, r));
    });
  }
  const mine = [...chosen].filter(([, c]) => c.owner === me).sort(([a], [b]) => rank.get(a)! - rank.get(b)! || (a < b ? -1 : 1));
  return new Map(mine.map(([id, c]) => [id, c.target]));
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
    const follow = (stream: Stream): void => {
      stream.on('listChanged', () => this.refresh());
      this.refresh();
    };
    o.registry.on('streamAdded', follow);
    o.registry.on('streamRemoved', () => this.refresh());
    o.registry.on('ownerChanged', () => this.refresh());
  }

  /** Decide again, once, after what is running now (a stream is announced before its record is kept). */
  refresh(): void {
    if (this.#scheduled || this.#closed) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      if (this.#closed) return;
      const r = this.#registry;
      const candidates = [...r.streams].map((s) => ({ streamId: s.id, endpointList: s.endpointList, active: s.active, listeners: r.record(s.id)?.spec.listeners, owner: r.ownerOf(s.id) }));
      this.#dialer.want(dialTargets(candidates, this.#instanceId));
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
