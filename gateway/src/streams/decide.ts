import type { FailbackConfig } from '../config.js';
import type { DemotionReason, FailoverPolicy, Selection } from '../failover/policy.js';
import type { EndpointState } from '../health/failure-detector.js';
import type { Cursor } from './cursor.js';
import type { EndpointView, Hedge, RoleDecision, StreamMode, SwitchReason, SwitchRecord } from './types.js';

export interface DecideInput {
  streamId: string;
  mode: StreamMode;
  /** Endpoints in priority order. */
  order: readonly string[];
  cursors: ReadonlyMap<string, Readonly<Cursor>>;
  active: readonly string[];
  slots: number;
  failback: FailbackConfig;
  reconnectGraceMs: number;
  /** While the stream never had an active endpoint, the end of its startup grace. */
  startupUntil: number;
  policy: FailoverPolicy;
  endpoint(id: string): EndpointView;
  /** Whether the stream ever had an active endpoint (the first promotion is `initial`). */
  hadActive: boolean;
  /** Why the stream last lost an active endpoint without a replacement. */
  lastLoss: SwitchReason | undefined;
  /** Where an endpoint entering the active set starts. */
  startSeq(c: Readonly<Cursor>): number;
  now: number;
  /** An operator changed the list: a better endpoint takes over without the stable wait. */
  immediate: boolean;
  /** The endpoint being removed: it looks disconnected, so it is replaced. */
  removing: string | undefined;
  /** Hedge suspect active endpoints (failover mode only: in mirror mode each has its own cursor). */
  hedge: boolean;
  /** The hedges running now, by hedging standby. */
  hedges: ReadonlyMap<string, Hedge>;
}

/**
 * Run the failover policy over a stream's endpoints and turn its selection into a
 * decision with reasons, start seqs and switch records (undefined when nothing changes),
 * and when to run it again if nothing else changes (the policy's `wakeAt`).
 */
export function decideRoles(input: DecideInput): { decision: RoleDecision | undefined; wakeAt: number | undefined } {
  const sel = select(input);
  return { decision: toDecision(input, sel), wakeAt: sel.wakeAt };
}

function select(input: DecideInput): Selection {
  const { now, removing } = input;
  const candidates = input.order.map((id) => {
    const view = input.endpoint(id);
    const state: EndpointState = id === removing ? 'disconnected' : view.state;
    const streamDegraded = input.cursors.get(id)?.health.verdict === 'degraded' || view.streamDegraded?.(input.streamId) === true;
    return {
      id,
      state,
      degraded: view.degraded || streamDegraded,
      upSince: streamDegraded ? undefined : view.upSince,
      disconnectedAt: id === removing ? undefined : view.disconnectedAt,
      active: input.active.includes(id),
      hedging: input.hedges.get(id)?.for,
    };
  });
  return input.policy.select({
    candidates,
    slots: input.slots,
    now,
    failback: { enabled: input.failback.enabled, stableMs: input.failback.stableMs },
    immediate: input.immediate,
    reconnectGraceMs: input.reconnectGraceMs,
    ...(input.hadActive ? {} : { startupUntil: input.startupUntil }),
    hedge: input.hedge && input.mode === 'failover',
  });
}

function toDecision(input: DecideInput, sel: Selection): RoleDecision | undefined {
  const { now, removing } = input;
  const wasActive = input.active.filter((id) => input.cursors.has(id));
  const hedges = sel.hedges.map((h): Hedge => {
    const running = input.hedges.get(h.by);
    const c = input.cursors.get(h.by);
    if (running?.for === h.for) return running;
    return { for: h.for, by: h.by, fromSeq: c ? Math.max(input.startSeq(c), c.lastAcked + 1) : 1 };
  });
  const sameHedges = hedges.length === input.hedges.size && hedges.every((h) => input.hedges.get(h.by) === h);
  if (sel.promoted.length === 0 && sel.demoted.length === 0 && sameList(sel.active, wasActive) && sameHedges) return undefined;

  const demotionReason = (d: { id: string; reason: DemotionReason }): SwitchReason => (d.id === removing ? 'removed' : d.reason);
  const demotedReason = new Map(sel.demoted.map((d) => [d.id, demotionReason(d)]));
  /** What the switch record says about the endpoint that lost its role. */
  const evidence = (id: string | null, reason: SwitchReason): Pick<SwitchRecord, 'detail' | 'metrics'> => {
    if (id === null) return {};
    const ep = input.endpoint(id).health();
    const cur = input.cursors.get(id)?.health.snapshot();
    const metrics = { ...ep.metrics, ...cur?.metrics };
    return reason === 'degraded' ? { detail: [...ep.reasons, ...(cur?.reasons ?? [])], metrics } : { metrics };
  };
  let hadActive = input.hadActive;
  const promoted: RoleDecision['promoted'][number][] = [];
  for (const p of sel.promoted) {
    const c = input.cursors.get(p.id);
    if (!c) continue;
    // a standby already receiving for the endpoint it replaces keeps going: nothing replayed
    const hedged = input.hedges.get(p.id);
    const cause = p.replaces === undefined ? undefined : demotedReason.get(p.replaces);
    // the silent endpoint was confirmed gone (dead, disconnected, or its path failed): the hedge is committed
    if (hedged && hedged.for === p.replaces && (cause === 'heartbeat-timeout' || cause === 'disconnected' || cause === 'degraded')) {
      const why = evidence(p.replaces, cause);
      const record: SwitchRecord = { from: p.replaces, to: p.id, reason: 'hedge-commit', at: now, from_seq: hedged.fromSeq, ...why, detail: [cause, ...(why.detail ?? [])] };
      promoted.push({ id: p.id, fromSeq: hedged.fromSeq, reason: 'hedge-commit', record });
      hadActive = true;
      continue;
    }
    const fromSeq = hedged?.fromSeq ?? input.startSeq(c);
    let reason: SwitchReason;
    if (p.reason === 'failback') reason = 'failback';
    else if (p.reason === 'operator') reason = 'operator';
    else if (p.replaces !== undefined) reason = demotedReason.get(p.replaces) ?? 'recovered';
    else if (!hadActive) reason = 'initial';
    else reason = input.lastLoss ?? 'recovered';
    hadActive = true;
    const from = p.replaces ?? (input.mode === 'failover' ? (wasActive[0] ?? null) : null);
    promoted.push({ id: p.id, fromSeq, reason, record: { from, to: p.id, reason, at: now, from_seq: fromSeq, ...evidence(from, reason) } });
  }
  const demoted: RoleDecision['demoted'][number][] = [];
  for (const d of sel.demoted) {
    const c = input.cursors.get(d.id);
    if (!c) continue;
    const reason = demotionReason(d);
    const replaced = sel.promoted.some((p) => p.replaces === d.id);
    demoted.push(replaced ? { id: d.id, reason } : { id: d.id, reason, record: { from: d.id, to: null, reason, at: now, from_seq: c.lastAcked + 1, ...evidence(d.id, reason) } });
  }
  return { active: [...sel.active], promoted, demoted, ...(hedges.length > 0 ? { hedges } : {}) };
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
