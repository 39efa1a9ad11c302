import type { Clock, TimerHandle } from '@mirrorstream/receiver/protocol';
import type { KV } from '@nats-io/kv';
import type { Logger } from 'pino';
import { parseCursor } from './records.js';

/** Cursor writes are batched: at most one KV put per cursor per this long. */
const FLUSH_MS = 200;
/** A cursor write that failed is tried again this long after. */
const RETRY_MS = 1_000;

/**
 * Cursors (last acked seq per stream and endpoint) on a KV bucket, key `<stream>.<endpoint>`.
 * Acks come fast; the bucket gets the newest value of each cursor at most every FLUSH_MS, never
 * a value below what it (or, as far as it saw, another instance) wrote. A write that fails (NATS away) is retried on a timer of its
 * own: a cursor only matters to resume, and HELLO carries it too, but it must get there.
 */
export class CursorStore {
  readonly #kv: Pick<KV, 'put' | 'get' | 'keys'>;
  readonly #clock: Clock;
  readonly #log: Logger;
  /** Cursors acked since the last flush, and what was last written per cursor. */
  readonly #dirty = new Map<string, number>();
  readonly #written = new Map<string, number>();
  #timer: TimerHandle | undefined;
  #flushing: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(kv: Pick<KV, 'put' | 'get' | 'keys'>, clock: Clock, log: Logger) {
    this.#kv = kv;
    this.#clock = clock;
    this.#log = log;
  }

  save(key: string, seq: number): void {
    if (seq <= (this.#dirty.get(key) ?? this.#written.get(key) ?? 0)) return;
    this.#dirty.set(key, seq);
    this.#schedule(FLUSH_MS);
  }

  /** Another instance stored `seq` for this cursor: never write a lower one over it. */
  observe(key: string, seq: number): void {
    if (seq > (this.#written.get(key) ?? 0)) this.#written.set(key, seq);
    if ((this.#dirty.get(key) ?? Infinity) <= seq) this.#dirty.delete(key);
  }

  /** The stored cursors under `prefix` (`<stream>.`), by the rest of their key. */
  async load(prefix: string): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for await (const key of await this.#kv.keys(`${prefix}>`)) {
      const entry = await this.#kv.get(key);
      const seq = entry?.operation === 'PUT' ? parseCursor(entry.string()) : undefined;
      if (seq === undefined) continue;
      out.set(key.slice(prefix.length), seq);
      this.#written.set(key, Math.max(seq, this.#written.get(key) ?? 0));
    }
    return out;
  }

  /** Write what is pending, then stop (the gateway closes). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#flushing;
    await this.#flush();
  }

  #schedule(ms: number): void {
    if (this.#closed) return;
    this.#timer ??= this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.#flushing = this.#flushing.then(() => this.#flush());
    }, ms);
  }

  async #flush(): Promise<void> {
    if (this.#dirty.size === 0) return;
    // what another instance stored meanwhile may already be ahead (a retry comes a second late)
    const batch = [...this.#dirty].filter(([key, seq]) => seq > (this.#written.get(key) ?? 0));
    this.#dirty.clear();
    await Promise.all(
      batch.map(async ([key, seq]) => {
        try {
          await this.#kv.put(key, String(seq));
          this.#written.set(key, Math.max(seq, this.#written.get(key) ?? 0));
        } catch (error) {
          if (seq > (this.#dirty.get(key) ?? 0)) this.#dirty.set(key, seq);
          this.#log.warn({ key, err: error }, 'cursor not stored; retrying');
        }
      }),
    );
    if (this.#dirty.size > 0) this.#schedule(RETRY_MS);
  }
}
