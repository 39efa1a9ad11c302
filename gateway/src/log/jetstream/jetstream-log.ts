import { headers as natsHeaders, type MsgHdrs } from '@nats-io/transport-node';
import { DeliverPolicy, DiscardPolicy, StorageType, type JetStreamClient, type JetStreamManager, type PubAck, type StreamConfig, type StreamInfo } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import type { RetentionConfig } from '../../config.js';
import type { AppendChunk, AppendResult, LogEntry, StreamLog } from '../../streams/stream-log.js';
import { MemoryStreamLog, newEpoch } from '../memory-log.js';
import { apiErrorCode, logUnavailable, STREAM_NOT_FOUND, WRONG_LAST_SEQUENCE } from './errors.js';
import type { NatsNames } from './names.js';

const H_TIMESTAMP = 'Ms-Ts';
const H_KEY = 'Ms-Key';
const H_LAYER = 'Ms-Layer';
/** JetStream stream descriptions say which epoch the data belongs to: `mirrorstream epoch <id>`. */
const EPOCH_PREFIX = 'mirrorstream epoch ';
const NANOS_PER_MS = 1_000_000;

export interface JetStreamContext {
  js: JetStreamClient;
  jsm: JetStreamManager;
  names: NatsNames;
  replicas: number;
  idempotencyWindowMs: number;
  log: Logger;
}

export function logStreamConfig(ctx: JetStreamContext, streamId: string, limits: RetentionConfig, epoch: string): Partial<StreamConfig> & { name: string } {
  return {
    name: ctx.names.logStream(streamId),
    subjects: [ctx.names.logSubject(streamId)],
    description: `${EPOCH_PREFIX}${epoch}`,
    max_msgs: limits.maxChunks,
    max_bytes: limits.maxBytes,
    max_age: limits.maxAgeMs * NANOS_PER_MS,
    discard: DiscardPolicy.Old,
    storage: StorageType.File,
    num_replicas: ctx.replicas,
    // JetStream refuses a duplicate window longer than the stream's max age
    duplicate_window: Math.min(ctx.idempotencyWindowMs, limits.maxAgeMs) * NANOS_PER_MS,
  };
}

/**
 * A stream's log on JetStream: one JetStream stream per mirrorstream stream, so the
 * JetStream sequence is the seq. Appends are published with the stream-level expected
 * last sequence (safe with several writers even on nats-server 2.9) and, for an
 * idempotent publish, a message id; they resolve once JetStream acknowledged them. Reads
 * come from a window in memory with the stream's own limits, filled from JetStream when
 * the log is opened (a restarted gateway replays what JetStream retained) and by appends.
 */
export class JetStreamLog implements StreamLog {
  readonly #ctx: JetStreamContext;
  readonly #window: MemoryStreamLog;
  readonly #name: string;
  readonly #subject: string;
  /** Appends run one at a time: each one's expected sequences follow the previous one's. */
  #tail: Promise<unknown> = Promise.resolve();

  private constructor(ctx: JetStreamContext, window: MemoryStreamLog) {
    this.#ctx = ctx;
    this.#window = window;
    this.#name = ctx.names.logStream(window.streamId);
    this.#subject = ctx.names.logSubject(window.streamId);
  }

  /** Create a new log (the JetStream stream is replaced if one was left behind). */
  static async create(ctx: JetStreamContext, streamId: string, limits: RetentionConfig, epoch: string): Promise<JetStreamLog> {
    try {
      await ctx.jsm.streams.delete(ctx.names.logStream(streamId)).catch((error: unknown) => {
        if (apiErrorCode(error) !== STREAM_NOT_FOUND) throw error;
      });
      await ctx.jsm.streams.add(logStreamConfig(ctx, streamId, limits, epoch));
    } catch (error) {
      throw logUnavailable(`creating the log of ${streamId}`, error);
    }
    return new JetStreamLog(ctx, new MemoryStreamLog(streamId, limits, epoch));
  }

  /**
   * Open a stored stream's log and replay what JetStream retained into the window. The
   * epoch is the data's own (its description). When the data is gone, the log starts
   * over under a new epoch, so receivers are told rather than resumed into a new seq space.
   */
  static async open(ctx: JetStreamContext, streamId: string, limits: RetentionConfig, storedEpoch: string): Promise<JetStreamLog> {
    let info: StreamInfo;
    try {
      info = await ctx.jsm.streams.info(ctx.names.logStream(streamId));
    } catch (error) {
      if (apiErrorCode(error) !== STREAM_NOT_FOUND) throw logUnavailable(`opening the log of ${streamId}`, error);
      ctx.log.warn({ stream: streamId, epoch: storedEpoch }, 'the stream log is gone from JetStream: starting a new epoch');
      return JetStreamLog.create(ctx, streamId, limits, newEpoch());
    }
    const described = info.config.description?.startsWith(EPOCH_PREFIX) ? info.config.description.slice(EPOCH_PREFIX.length) : undefined;
    const epoch = described ?? storedEpoch;
    const { first_seq: first, last_seq: last, messages } = info.state;
    const log = new JetStreamLog(ctx, new MemoryStreamLog(streamId, limits, epoch, messages > 0 ? first : last + 1));
    if (messages > 0) await log.#replay(first, last);
    return log;
  }

  get streamId(): string {
    return this.#window.streamId;
  }
  get epoch(): string {
    return this.#window.epoch;
  }
  get limits(): Readonly<RetentionConfig> {
    return this.#window.limits;
  }
  get firstSeq(): number {
    return this.#window.firstSeq;
  }
  get lastSeq(): number {
    return this.#window.lastSeq;
  }
  get size(): number {
    return this.#window.size;
  }
  get bytes(): number {
    return this.#window.bytes;
  }
  get evicted(): number {
    return this.#window.evicted;
  }

  get(seq: number): LogEntry | undefined {
    return this.#window.get(seq);
  }

  frame(seq: number): Uint8Array | undefined {
    return this.#window.frame(seq);
  }

  evictExpired(now: number): void {
    this.#window.evictExpired(now);
  }

  appendBatch(chunks: readonly AppendChunk[], timestamp: number): Promise<AppendResult> {
    const run = this.#tail.then(() => this.#append(chunks, timestamp));
    this.#tail = run.catch(() => undefined);
    return run;
  }

  /** Drop the data (the stream was deleted). */
  async destroy(): Promise<void> {
    await this.#ctx.jsm.streams.delete(this.#name).catch((error: unknown) => {
      if (apiErrorCode(error) !== STREAM_NOT_FOUND) throw logUnavailable(`deleting the log of ${this.streamId}`, error);
    });
  }

  async #append(chunks: readonly AppendChunk[], timestamp: number, resynced = false): Promise<AppendResult> {
    const base = this.#window.lastSeq;
    const acks: PubAck[] = [];
    let failure: unknown;
    if (chunks.some((c) => c.msgId !== undefined)) {
      // a retried batch may be partly stored already: one at a time, so a duplicate does not
      // break the expected sequence of the ones after it
      let expected = base;
      for (const c of chunks) {
        try {
          const ack = await this.#publish(c, timestamp, expected);
          if (!ack.duplicate) expected = ack.seq;
          acks.push(ack);
        } catch (error) {
          failure = error;
          break;
        }
      }
    } else {
      const results = await Promise.allSettled(chunks.map((c, i) => this.#publish(c, timestamp, base + i)));
      for (const r of results) {
        if (r.status === 'rejected') {
          failure = r.reason;
          break;
        }
        acks.push(r.value);
      }
    }
    // what JetStream stored is durable: receivers get it even when the rest failed
    const seqs: number[] = [];
    for (const [i, ack] of acks.entries()) {
      seqs.push(ack.seq);
      const c = chunks[i];
      if (c && !ack.duplicate) this.#window.appendAt(ack.seq, c.payload, timestamp, c.key, c.layer);
    }
    if (failure !== undefined) {
      if (!resynced && acks.length === 0 && apiErrorCode(failure) === WRONG_LAST_SEQUENCE) {
        // JetStream holds more than the window (an ack lost in a timeout): catch up, retry once
        await this.#catchUp();
        return this.#append(chunks, timestamp, true);
      }
      throw logUnavailable(`publishing to ${this.streamId} (${acks.length} of ${chunks.length} chunks stored)`, failure);
    }
    return { firstSeq: seqs[0] ?? base + 1, lastSeq: seqs[seqs.length - 1] ?? base };
  }

  #publish(c: AppendChunk, timestamp: number, expectedLast: number): Promise<PubAck> {
    const h: MsgHdrs = natsHeaders();
    h.set(H_TIMESTAMP, String(timestamp));
    if (c.key !== undefined) h.set(H_KEY, encodeURIComponent(c.key));
    if (c.layer !== undefined) h.set(H_LAYER, String(c.layer));
    return this.#ctx.js.publish(this.#subject, c.payload, {
      headers: h,
      expect: { lastSequence: expectedLast },
      ...(c.msgId === undefined ? {} : { msgID: c.msgId }),
    });
  }

  /** Load what JetStream has past the window (stored, but its ack never reached us). */
  async #catchUp(): Promise<void> {
    const info = await this.#ctx.jsm.streams.info(this.#name);
    if (info.state.last_seq > this.#window.lastSeq) await this.#replay(Math.max(this.#window.lastSeq + 1, info.state.first_seq), info.state.last_seq);
  }

  /** Replay `from..to` from JetStream into the window (an ordered consumer, in batches). */
  async #replay(from: number, to: number): Promise<void> {
    const consumer = await this.#ctx.js.consumers.get(this.#name, { opt_start_seq: from, deliver_policy: DeliverPolicy.StartSequence });
    let next = from;
    while (next <= to) {
      const batch = await consumer.fetch({ max_messages: Math.min(1_000, to - next + 1), expires: 2_000 });
      let got = 0;
      for await (const m of batch) {
        got++;
        if (m.seq > to) break;
        const h = m.headers;
        const ts = Number(h?.get(H_TIMESTAMP)) || m.info.timestampNanos / NANOS_PER_MS;
        const key = h?.has(H_KEY) ? decodeURIComponent(h.get(H_KEY)) : undefined;
        const layer = h?.has(H_LAYER) ? Number(h.get(H_LAYER)) : undefined;
        this.#window.appendAt(m.seq, m.data, ts, key, layer);
        next = m.seq + 1;
      }
      if (got === 0) break; // trimmed meanwhile: the window starts where JetStream does
    }
  }
}
