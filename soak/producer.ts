import { Producer } from '@mirrorstream/producer';
import type { Acked } from './check.js';
import { API_KEY } from './processes.js';

/**
 * The soak's producer: per stream, a batch every `everyMs` through `@mirrorstream/producer`
 * given every instance's URL (its streaming ingest, an idempotency key per batch, sent again on
 * the next instance after a lost connection, GOAWAY or a retryable refusal). What was acked,
 * and when, is the ground truth.
 */
export class SoakProducer {
  readonly acked = new Map<string, Map<number, Acked>>();
  /** Batches the gateway answered with seqs that do not fit the batch (must stay 0). */
  badAnswers = 0;
  /** Batches the client rejected (must stay 0: a rejection means not stored, for a reason retrying cannot help). */
  readonly rejected: string[] = [];
  /** The longest time from a batch's publish to its ack (ms). */
  longestAckMs = 0;
  readonly #client: Producer;
  readonly #pending = new Set<Promise<void>>();
  #stopped = false;
  #loops: Promise<void>[] = [];

  constructor(
    readonly streams: readonly string[],
    urls: readonly string[],
    readonly perBatch: number,
    readonly everyMs: number,
  ) {
    for (const s of streams) this.acked.set(s, new Map());
    this.#client = new Producer({ gatewayUrl: urls, apiKey: API_KEY, backoff: { initialMs: 50, maxMs: 1_000 } });
  }

  /** Batches sent again (same key) after a lost connection or a retryable refusal. */
  get retries(): number {
    return this.#client.stats.retries;
  }

  start(): void {
    this.#loops = this.streams.map((s) => this.#run(s));
  }

  /** Stops publishing and waits (up to 60 s) until every batch is answered. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all(this.#loops);
    const drained = Promise.all([...this.#pending]).then(() => this.#client.close());
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([drained, new Promise<void>((_, reject) => (timer = setTimeout(() => reject(new Error(`${this.#pending.size} batches unanswered 60 s after the producer stopped`)), 60_000)))]).finally(() => clearTimeout(timer));
  }

  async #run(stream: string): Promise<void> {
    const t0 = performance.now();
    for (let n = 0; !this.#stopped; n++) {
      const wait = t0 + n * this.everyMs - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const payloads = Array.from({ length: this.perBatch }, (_, i) => `${stream}/${n}/${i}`);
      const started = performance.now();
      const p = this.#client.publishBatch(stream, payloads.map((payload) => ({ payload }))).then(
        (r) => {
          this.#record(stream, payloads, r.first_seq, r.last_seq);
          this.longestAckMs = Math.max(this.longestAckMs, performance.now() - started);
        },
        (error: { code?: string; message?: string }) => void this.rejected.push(`${stream}/${n}: ${error.code ?? 'uncoded'} ${error.message ?? ''}`),
      );
      this.#pending.add(p);
      void p.finally(() => this.#pending.delete(p));
    }
  }

  #record(stream: string, payloads: string[], first: number, last: number): void {
    if (last - first + 1 !== payloads.length) {
      this.badAnswers++;
      return;
    }
    const at = performance.timeOrigin + performance.now();
    const acked = this.acked.get(stream)!;
    payloads.forEach((payload, i) => acked.set(first + i, { payload, at }));
  }
}
