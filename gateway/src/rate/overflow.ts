/**
 * What to do when a stream produces faster than an endpoint takes it (the oldest
 * unsent chunk is older than `maxBacklogMs`). Pure functions over the backlog; the
 * stream sends what they keep and declares the rest with GAP frames.
 */
export type OverflowPolicyName = 'backpressure' | 'drop-oldest' | 'conflate' | 'decimate' | 'layers';

export interface OverflowPolicy {
  readonly overflow: OverflowPolicyName;
  readonly maxBacklogMs: number;
  /** decimate: keep every n-th chunk of the backlog. */
  readonly decimateN: number;
}

/** What a plan looks at of each retained chunk. */
export interface BacklogEntry {
  readonly timestamp: number;
  readonly key: string | undefined;
  readonly layer: number | undefined;
}

export interface BacklogPlan {
  /** Seqs to send, ascending; everything else in [from, to] is skipped. */
  keep: number[];
  /** GAP reason for the skipped seqs. */
  reason: string;
}

/**
 * Plan the backlog [from, to] (all retained) of one endpoint. `maxLayer` is the
 * endpoint's current layer cap (layers policy). Returns undefined when nothing is
 * skipped (backpressure never skips).
 */
export function planBacklog(
  policy: OverflowPolicy,
  get: (seq: number) => BacklogEntry | undefined,
  from: number,
  to: number,
  now: number,
  maxLayer: number,
): BacklogPlan | undefined {
  const keep: number[] = [];
  switch (policy.overflow) {
    case 'backpressure':
      return undefined;
    case 'drop-oldest': {
      // drop what is older than half the allowed backlog: the endpoint is current again
      const cutoff = now - policy.maxBacklogMs / 2;
      for (let seq = from; seq <= to; seq++) if ((get(seq)?.timestamp ?? 0) >= cutoff || seq === to) keep.push(seq);
      return { keep, reason: 'overflow:drop-oldest' };
    }
    case 'conflate': {
      // newest chunk per key; chunks without a key are never conflated
      const seen = new Set<string>();
      for (let seq = to; seq >= from; seq--) {
        const key = get(seq)?.key;
        if (key === undefined) keep.push(seq);
        else if (!seen.has(key)) {
          seen.add(key);
          keep.push(seq);
        }
      }
      keep.reverse();
      return { keep, reason: 'overflow:conflate' };
    }
    case 'decimate': {
      for (let seq = from; seq <= to; seq++) if (seq % policy.decimateN === 0 || seq === to) keep.push(seq);
      return { keep, reason: 'overflow:decimate' };
    }
    case 'layers': {
      for (let seq = from; seq <= to; seq++) if ((get(seq)?.layer ?? 0) <= maxLayer) keep.push(seq);
      return { keep, reason: 'overflow:layers' };
    }
  }
}

/** Highest layer in the backlog (0 when no chunk carries one). */
export function topLayer(get: (seq: number) => BacklogEntry | undefined, from: number, to: number): number {
  let top = 0;
  for (let seq = from; seq <= to; seq++) top = Math.max(top, get(seq)?.layer ?? 0);
  return top;
}
