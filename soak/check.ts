/**
 * The soak's verdict on one stream, from what the producer had acked and what every
 * receiver life delivered. Pure, so its own unit test can feed it known histories.
 */

/** One chunk the gateway acked to the producer: its payload and when the ack arrived (wall-clock ms). */
export interface Acked {
  payload: string;
  at: number;
}

/** One chunk one receiver life delivered to its application. */
export interface Delivery {
  endpoint: string;
  /** Which process of that endpoint (0, 1, … after each respawn). */
  life: number;
  seq: number;
  payload: string;
  at: number;
}

export interface StreamVerdict {
  acked: number;
  /** Acked, never delivered by any receiver. */
  lost: number[];
  /** Delivered at a seq that was never acked (stored but the ack was lost: allowed, reported). */
  unackedDelivered: number;
  /** A seq not above the previous one within one receiver life. */
  duplicatesPerLife: number;
  /** A delivered payload that differs from the one acked at that seq. */
  corrupted: number;
  /** One payload delivered at two seqs (a retried batch appended twice). */
  payloadAtTwoSeqs: number;
  /** Delivered again by another life or endpoint (at-least-once across the list: allowed, reported). */
  redelivered: number;
  /**
   * The longest time the delivered frontier (every acked seq up to it delivered somewhere)
   * stood still while an acked chunk waited beyond it.
   */
  longestFrontierStallMs: number;
  /** The five longest stalls: when each began (wall-clock ms), how long, and the seq it waited for. */
  longestStalls: { from: number; ms: number; seq: number }[];
  /** Ack → first delivery anywhere, over acked chunks (0 when delivered before the ack arrived). */
  delayMs: { p50: number; p99: number; max: number };
}

export function judgeStream(acked: ReadonlyMap<number, Acked>, deliveries: readonly Delivery[]): StreamVerdict {
  const first = new Map<number, number>();
  const payloadSeq = new Map<string, number>();
  const lastInLife = new Map<string, number>();
  let duplicatesPerLife = 0;
  let corrupted = 0;
  let payloadAtTwoSeqs = 0;
  let redelivered = 0;
  let unackedDelivered = 0;
  for (const d of deliveries) {
    const life = `${d.endpoint}#${d.life}`;
    const previous = lastInLife.get(life);
    if (previous !== undefined && d.seq <= previous) duplicatesPerLife++;
    else lastInLife.set(life, d.seq);
    const a = acked.get(d.seq);
    if (a && a.payload !== d.payload) corrupted++;
    const seqOfPayload = payloadSeq.get(d.payload);
    if (seqOfPayload === undefined) payloadSeq.set(d.payload, d.seq);
    else if (seqOfPayload !== d.seq) payloadAtTwoSeqs++;
    const seen = first.get(d.seq);
    if (seen === undefined) {
      first.set(d.seq, d.at);
      if (!a) unackedDelivered++;
    } else {
      redelivered++;
      if (d.at < seen) first.set(d.seq, d.at);
    }
  }
  const seqs = [...acked.keys()].sort((x, y) => x - y);
  const lost = seqs.filter((s) => !first.has(s));
  const stalls = frontierStalls(seqs, acked, first);
  const delays = seqs.filter((s) => first.has(s)).map((s) => Math.max(0, first.get(s)! - acked.get(s)!.at));
  return {
    acked: seqs.length,
    lost,
    unackedDelivered,
    duplicatesPerLife,
    corrupted,
    payloadAtTwoSeqs,
    redelivered,
    longestFrontierStallMs: stalls[0]?.ms ?? 0,
    longestStalls: stalls,
    delayMs: { p50: quantile(delays, 0.5), p99: quantile(delays, 0.99), max: delays.length ? Math.max(...delays) : 0 },
  };
}

/**
 * Walk first deliveries in time order; each advance of the frontier ends a stall that began
 * when the chunk it waited for was acked (or at the previous advance). The five longest.
 */
function frontierStalls(seqs: readonly number[], acked: ReadonlyMap<number, Acked>, first: ReadonlyMap<number, number>): { from: number; ms: number; seq: number }[] {
  const delivered = new Set<number>();
  const order = [...first].filter(([s]) => acked.has(s)).sort((a, b) => a[1] - b[1]);
  let k = 0;
  let lastAdvance = -Infinity;
  const stalls: { from: number; ms: number; seq: number }[] = [];
  for (const [seq, at] of order) {
    delivered.add(seq);
    const waitingFor = seqs[k];
    if (waitingFor === undefined || !delivered.has(waitingFor)) continue;
    const from = Math.max(lastAdvance, acked.get(waitingFor)!.at);
    if (at > from) {
      stalls.push({ from: Math.round(from), ms: Math.round(at - from), seq: waitingFor });
      stalls.sort((a, b) => b.ms - a.ms);
      if (stalls.length > 5) stalls.pop();
    }
    while (k < seqs.length && delivered.has(seqs[k]!)) k++;
    lastAdvance = at;
  }
  return stalls;
}

function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! * 10) / 10;
}
