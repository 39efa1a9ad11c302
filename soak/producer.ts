import type { Acked } from './check.js';
import { API_KEY } from './processes.js';

/**
 * The soak's producer: per stream, a batch every `everyMs` over the HTTP API with an
 * Idempotency-Key, retried on the next instance until acked (bounded), as a producer
 * in front of several instances would. What was acked, and when, is the ground truth.
 */
export class Producer {
  readonly acked = new Map<string, Map<number, Acked>>();
  retries = 0;
  /** Batches the gateway answered with seqs that do not fit the batch (must stay 0). */
  badAnswers = 0;
  /** The longest time from a batch's first attempt to its ack (ms). */
  longestAckMs = 0;
  #stopped = false;
  #loops: Promise<void>[] = [];

  constructor(
    readonly streams: readonly string[],
    readonly urls: () => string[],
    readonly perBatch: number,
    readonly everyMs: number,
  ) {
    for (const s of streams) this.acked.set(s, new Map());
  }

  start(): void {
    this.#loops = this.streams.map((s) => this.#run(s));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all(this.#loops);
  }

  async #run(stream: string): Promise<void> {
    const t0 = performance.now();
    for (let n = 0; !this.#stopped; n++) {
      const wait = t0 + n * this.everyMs - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const payloads = Array.from({ length: this.perBatch }, (_, i) => `${stream}/${n}/${i}`);
      await this.#post(stream, payloads, `${stream}-${n}`);
    }
  }

  async #post(stream: string, payloads: string[], key: string): Promise<void> {
    const started = performance.now();
    const body = JSON.stringify({ chunks: payloads.map((payload) => ({ payload })) });
    for (let attempt = 0; ; attempt++) {
      const urls = this.urls();
      const url = urls[attempt % Math.max(1, urls.length)];
      try {
        if (!url) throw new Error('no instance up');
        const res = await fetch(`${url}/v1/streams/${stream}/chunks`, {
          method: 'POST',
          headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json', 'idempotency-key': key },
          body,
          signal: AbortSignal.timeout(10_000),
        });
        const text = await res.text();
        if (res.status === 201 || res.status === 200) {
          this.#record(stream, payloads, JSON.parse(text) as { first_seq?: unknown; last_seq?: unknown });
          this.longestAckMs = Math.max(this.longestAckMs, performance.now() - started);
          return;
        }
        if (res.status !== 503 && res.status !== 429) throw new Error(`POST chunks ${res.status}: ${text}`);
      } catch (error) {
        if (performance.now() - started > 60_000) throw error;
      }
      this.retries++;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  #record(stream: string, payloads: string[], answer: { first_seq?: unknown; last_seq?: unknown }): void {
    const { first_seq: first, last_seq: last } = answer;
    if (typeof first !== 'number' || typeof last !== 'number' || last - first + 1 !== payloads.length) {
      this.badAnswers++;
      return;
    }
    const at = performance.timeOrigin + performance.now();
    const acked = this.acked.get(stream)!;
    payloads.forEach((payload, i) => acked.set(first + i, { payload, at }));
  }
}
