/**
 * Which endpoints of a stream receive it. Pure: no clock, no socket, no stream; the
 * stream feeds it the endpoints' health and applies the result. Failover mode is the
 * one-slot case of mirror mode.
 */
import type { EndpointState } from '../health/failure-detector.js';

export interface SelectionCandidate {
  readonly id: string;
  readonly state: EndpointState;
  /** The path is degraded (health score verdict): avoid it while a healthy one exists. */
  readonly degraded: boolean;
  /** Since when the endpoint has been alive and healthy (undefined when it is not). */
  readonly upSince: number | undefined;
  /** When its connection closed (disconnected endpoints only). */
  readonly disconnectedAt?: number | undefined;
  readonly active: boolean;
  /** The active endpoint this one is hedging for now, if any. */
  readonly hedging?: string | undefined;
}

export interface SelectionInput {
  /** Endpoints in priority order (index 0 first). */
  readonly candidates: readonly SelectionCandidate[];
  /** How many endpoints receive at once (1 in failover mode). */
  readonly slots: number;
  readonly now: number;
  readonly failback: { readonly enabled: boolean; readonly stableMs: number };
  /** An operator changed the list: a better endpoint takes over without the stable wait. */
  readonly immediate: boolean;
  /** A disconnected active endpoint keeps its slot this long, to come back on another transport. */
  readonly reconnectGraceMs?: number;
  /** The stream is new and has had no active endpoint yet: until then only the first `slots` candidates may take a slot. */
  readonly startupUntil?: number;
  /** Hedge: a suspect active endpoint (or one in its reconnect grace) gets a healthy standby beside it. */
  readonly hedge?: boolean;
}

export type DemotionReason = 'heartbeat-timeout' | 'disconnected' | 'degraded' | 'failback' | 'operator';
export type PromotionReason = 'fill' | 'failback' | 'operator';

export interface Selection {
  /** The new active set, in priority order. */
  readonly active: readonly string[];
  readonly promoted: readonly { id: string; reason: PromotionReason; replaces: string | undefined }[];
  readonly demoted: readonly { id: string; reason: DemotionReason }[];
  /** Standbys that also receive the stream, each beside a suspect active endpoint (`for`). */
  readonly hedges: readonly { for: string; by: string }[];
  /**
   * The earliest time at which the selection may change with no candidate changing (a grace
   * or stable period ends); undefined: only a change of the candidates can change it. The
   * gateway re-runs the policy on every change and at this time, not on a timer of its own.
   */
  readonly wakeAt?: number | undefined;
}

export interface FailoverPolicy {
  select(input: SelectionInput): Selection;
}

/**
 * Highest priority wins, with hysteresis: an active endpoint stays while it is merely
 * `suspect`; a newcomer must be `alive` and not degraded; a degraded active endpoint is
 * replaced only when a healthy one is available (a degraded path beats none); a
 * recovered higher-priority endpoint takes a slot back only after `failback.stableMs`
 * of being alive and healthy (or at once for operator changes). With `hedge`, each active
 * endpoint that is suspect (or disconnected within its grace) gets the best healthy standby
 * beside it, the one already hedging for it first; when it is then replaced, that standby
 * is normally the one promoted (it is the best healthy outsider).
 */
export class PriorityFailoverPolicy implements FailoverPolicy {
  select(input: SelectionInput): Selection {
    const { candidates, slots, now, failback, immediate } = input;
    const grace = input.reconnectGraceMs ?? 0;
    const inGrace = (c: SelectionCandidate): boolean =>
      c.state === 'disconnected' && grace > 0 && c.disconnectedAt !== undefined && now - c.disconnectedAt < grace;
    const rank = new Map(candidates.map((c, i) => [c.id, i]));
    const byRank = (a: SelectionCandidate, b: SelectionCandidate): number => (rank.get(a.id) ?? 0) - (rank.get(b.id) ?? 0);
    const good = (c: SelectionCandidate): boolean => c.state === 'alive' && !c.degraded;
    const demoted: { id: string; reason: DemotionReason }[] = [];
    const promoted: { id: string; reason: PromotionReason; replaces: string | undefined }[] = [];
    let wakeAt: number | undefined;
    const wake = (at: number): void => void (at > now && (wakeAt === undefined || at < wakeAt) && (wakeAt = at));
    for (const c of candidates) if (c.active && inGrace(c) && c.disconnectedAt !== undefined) wake(c.disconnectedAt + grace);

    let set: SelectionCandidate[] = [];
    for (const c of candidates) {
      if (!c.active) continue;
      if (c.state === 'alive' || c.state === 'suspect' || inGrace(c)) set.push(c);
      else demoted.push({ id: c.id, reason: c.state === 'dead' ? 'heartbeat-timeout' : 'disconnected' });
    }
    // a degraded member goes only if a healthy outsider can take its place
    let spare = candidates.filter((c) => !c.active && good(c)).length;
    for (const m of [...set].reverse()) {
      // one in its reconnect grace is coming back on a new path: judge that path, not the old
      if (!m.degraded || m.state === 'disconnected' || spare === 0) continue;
      set = set.filter((x) => x !== m);
      demoted.push({ id: m.id, reason: 'degraded' });
      spare--;
    }
    // more active than slots (e.g. mirror_k lowered): keep the best
    while (set.length > slots) {
      const dropped = set.pop();
      if (dropped) demoted.push({ id: dropped.id, reason: 'operator' });
    }

    const lost = demoted.map((d) => d.id);
    const fill = (c: SelectionCandidate): void => {
      set.push(c);
      promoted.push({ id: c.id, reason: 'fill', replaces: lost.shift() });
      set.sort(byRank);
    };
    const waiting = input.startupUntil !== undefined && now < input.startupUntil && set.length === 0;
    if (waiting && input.startupUntil !== undefined) wake(input.startupUntil);
    for (const c of candidates) {
      if (!good(c) || set.includes(c)) continue;
      // a new stream gives its first choices a moment to connect before settling for less
      if (waiting && (rank.get(c.id) ?? 0) >= slots) continue;
      if (set.length < slots) {
        fill(c);
        continue;
      }
      const lowest = set[set.length - 1];
      if (!lowest || (rank.get(c.id) ?? 0) > (rank.get(lowest.id) ?? 0)) continue;
      const stable = failback.enabled && c.upSince !== undefined && now - c.upSince >= failback.stableMs;
      if (!immediate && !stable) {
        if (failback.enabled && c.upSince !== undefined) wake(c.upSince + failback.stableMs);
        continue;
      }
      const reason = immediate ? 'operator' : 'failback';
      set.pop();
      demoted.push({ id: lowest.id, reason });
      set.push(c);
      promoted.push({ id: c.id, reason, replaces: lowest.id });
      set.sort(byRank);
    }
    // nobody healthy: a degraded but alive endpoint is better than none
    if (set.length === 0 && !waiting) {
      const fallback = candidates.find((c) => c.state === 'alive' && !demoted.some((d) => d.id === c.id && d.reason === 'degraded'));
      if (fallback) fill(fallback);
    }
    const hedges: { for: string; by: string }[] = [];
    if (input.hedge) {
      const taken = new Set(set.map((c) => c.id));
      for (const m of set) {
        if (m.state !== 'suspect' && !inGrace(m)) continue;
        const by = candidates.find((c) => c.hedging === m.id && good(c) && !taken.has(c.id)) ?? candidates.find((c) => good(c) && !taken.has(c.id));
        if (!by) continue;
        taken.add(by.id);
        hedges.push({ for: m.id, by: by.id });
      }
    }
    return { active: set.map((c) => c.id), promoted, demoted, hedges, wakeAt };
  }
}
