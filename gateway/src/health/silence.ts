/**
 * Fast silence detection for the endpoints active on a stream. The gateway probes them every
 * `carrierProbeIntervalMs` and the receiver echoes at once, so a live path answers
 * a probe within its round-trip time. The endpoint is *silent* when, since the last frame
 * heard from it, probes went unanswered for longer than the path allows: the first one
 * waited `max(floorMs, rttFactor × RTT p99)`, plus one probe interval for each further probe
 * a lossy path may lose in a row (measured probe loss, so that a false alarm stays below
 * 1 in 10 000 probes; none on a path that loses none). Counting from the probes' send times,
 * not from the last arrival, means a gateway that probes late never blames the endpoint;
 * any frame at all (echo, ack, heartbeat answer, report) proves it alive. On loopback that is
 * tens of ms; on a long or lossy path it scales with the path.
 */
export interface SilenceOptions {
  floorMs: number;
  rttFactor: number;
  probeIntervalMs: number;
}

/** Probes a path with this loss may lose in a row while a false alarm stays below 1e-4 per probe. */
export function lossesInARow(lossRatio: number): number {
  if (!(lossRatio > 0)) return 0;
  if (lossRatio >= 0.5) return 12;
  return Math.min(12, Math.ceil(-4 / Math.log10(lossRatio)) - 1);
}

export class SilenceDetector {
  readonly #o: SilenceOptions;
  /** Send time of the first probe sent since the endpoint was last heard (undefined: none waits). */
  #waitingSince: number | undefined;
  #rttP99Ms: number | undefined;
  #lossRatio = 0;

  constructor(options: SilenceOptions) {
    this.#o = options;
  }

  /** A probe went out at `at`. */
  probeSent(at: number): void {
    this.#waitingSince ??= at;
  }

  /** The gateway itself was stalled for `ms` (its probes went out late or not at all). */
  forgive(ms: number): void {
    if (this.#waitingSince !== undefined) this.#waitingSince += ms;
  }

  /** Any valid frame arrived from the endpoint. */
  heard(): void {
    this.#waitingSince = undefined;
  }

  /** The path as probes measure it: RTT p99 (undefined until measured) and loss ratio. */
  setPath(rttP99Ms: number | undefined, lossRatio: number | undefined): void {
    this.#rttP99Ms = rttP99Ms;
    this.#lossRatio = lossRatio ?? 0;
  }

  /** How long after the first unanswered probe the endpoint counts as silent. */
  get limitMs(): number {
    const wait = Math.max(this.#o.floorMs, this.#o.rttFactor * (this.#rttP99Ms ?? 0));
    return wait + lossesInARow(this.#lossRatio) * this.#o.probeIntervalMs;
  }

  /** When the endpoint turns silent if nothing is heard (undefined: no probe waits). */
  get deadline(): number | undefined {
    return this.#waitingSince === undefined ? undefined : this.#waitingSince + this.limitMs;
  }

  isSilent(now: number): boolean {
    const d = this.deadline;
    return d !== undefined && now > d;
  }

  reset(): void {
    this.#waitingSince = undefined;
    this.#rttP99Ms = undefined;
  }
}

const BUCKET_BASE_MS = 0.1;
const BUCKET_GROWTH = 1.1;
const BUCKETS = 160; // 0.1 ms × 1.1^159 ≈ 390 s: every RTT fits

function bucketOf(ms: number): number {
  if (!(ms > BUCKET_BASE_MS)) return 0;
  return Math.min(BUCKETS - 1, 1 + Math.floor(Math.log(ms / BUCKET_BASE_MS) / Math.log(BUCKET_GROWTH)));
}

/**
 * The RTT distribution of the last `capacity` probe echoes (3 s of an active endpoint's
 * probes by default), in log-spaced buckets: O(1) per sample, O(buckets) per quantile,
 * quantiles within 10 %. Its p99 is the 3rd-longest RTT: one or two hiccups do not set the
 * silence limit, as the max of a 1 s window would; a fresh connection's warm-up is forgotten in 3 s.
 */
export class RttHistogram {
  readonly #ring: Uint8Array;
  /** Counts fit 16 bits: at most `capacity` (300 by default) samples. */
  readonly #counts = new Uint16Array(BUCKETS);
  #next = 0;
  #size = 0;

  constructor(capacity = 300) {
    if (capacity > 0xffff) throw new RangeError('RttHistogram capacity must fit 16 bits');
    this.#ring = new Uint8Array(capacity);
  }

  add(ms: number): void {
    const b = bucketOf(ms);
    const counts = this.#counts;
    if (this.#size === this.#ring.length) {
      const old = this.#ring[this.#next] ?? 0;
      counts[old] = (counts[old] ?? 1) - 1;
    } else this.#size++;
    this.#ring[this.#next] = b;
    counts[b] = (counts[b] ?? 0) + 1;
    this.#next = (this.#next + 1) % this.#ring.length;
  }

  /** Nearest-rank quantile (q in 0..1), as the upper bound of its bucket; undefined when empty. */
  quantile(q: number): number | undefined {
    if (this.#size === 0) return undefined;
    const rank = Math.max(1, Math.ceil(q * this.#size));
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
      seen += this.#counts[b] ?? 0;
      if (seen >= rank) return BUCKET_BASE_MS * BUCKET_GROWTH ** b;
    }
    return undefined;
  }

  clear(): void {
    this.#counts.fill(0);
    this.#next = 0;
    this.#size = 0;
  }
}
