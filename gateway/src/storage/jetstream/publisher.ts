import type { Clock, TimerHandle } from '@mirrorstream/receiver/protocol';
import { createInbox, MsgHdrsImpl, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/transport-node';

/** One message to store: its payload and headers (as JetStream keeps them). */
export interface PublishMessage {
  readonly payload: Uint8Array;
  readonly headers: MsgHdrs | undefined;
}

/** What JetStream answered for one message: stored at `seq` (or already stored there: `duplicate`), or why not. */
export type PublishOutcome = { readonly seq: number; readonly duplicate: boolean; readonly error?: undefined } | { readonly error: Error; readonly seq?: undefined; readonly duplicate?: undefined };

/** JetStream's message id header: a message with an id it stored within the stream's duplicate window is not stored again. */
export const MSG_ID = 'Nats-Msg-Id';

/**
 * Headers shared by many messages (a batch's chunks with the same timestamp): encoded once,
 * on the first publish, not once per message. Set them before the first publish.
 */
export class FrozenHeaders extends MsgHdrsImpl {
  #encoded: Uint8Array | undefined;
  override encode(): Uint8Array {
    return (this.#encoded ??= super.encode());
  }
}

/** Unacked publishes per NATS connection, across every stream of the gateway; more wait in line. */
export const MAX_IN_FLIGHT = 1_024;

/**
 * JetStream publishes of every stream log on one NATS connection, pipelined and bounded:
 * - each message is a plain publish with a reply subject `<inbox>.<n>` on one wildcard
 *   subscription of the publisher's own, where JetStream acks it with its stream sequence (the
 *   client's `js.publish` is a request with its own timer, two stack-capturing errors and a
 *   promise race per message: a quarter of the gateway's CPU at feed rates);
 * - what is published during one turn of the event loop (the batches of every request read in
 *   it) goes out after it, together: one socket write instead of one per request;
 * - at most MAX_IN_FLIGHT are unacked at a time; the rest wait in one FIFO line and go out as
 *   acks come in. Messages leave in the order `publish` was called, a batch's in its own
 *   order and never interleaved with another's, so a batch takes consecutive stream sequences
 *   unless another writer (another gateway instance) publishes to the same stream meanwhile;
 * - every publish answers within the connection's request timeout (counted from the call, so
 *   also while it waits in line): a message not acked by then is an error (its fate is
 *   unknown: it may still be stored, which a retry with the same message ids makes harmless);
 * - while the connection is down, nothing is sent (what was in flight fails at once);
 * - the connection closing fails whatever is open.
 * A batch resolves once every message of it has an outcome; it never rejects.
 */
export class JetStreamPublisher {
  readonly #nc: NatsConnection;
  readonly #clock: Clock;
  readonly #timeoutMs: number;
  readonly #maxInFlight: number;
  readonly #inbox: string;
  readonly #sub: Subscription;
  /** In flight by id (ids rise with sending, so the oldest come first); a batch's ids are consecutive. */
  readonly #inFlight = new Map<number, Batch>();
  /** Batches (or their rest) waiting for room, oldest first. */
  readonly #line: Batch[] = [];
  #nextId = 1;
  #timer: TimerHandle | undefined;
  #scheduled = false;
  #closed: Error | undefined;
  /** Disconnected, the client not back yet: publishes wait in line. */
  #offline = false;

  constructor(nc: NatsConnection, clock: Clock, options: { timeoutMs: number; maxInFlight?: number }) {
    this.#nc = nc;
    this.#clock = clock;
    this.#timeoutMs = options.timeoutMs;
    this.#maxInFlight = options.maxInFlight ?? MAX_IN_FLIGHT;
    this.#inbox = `${createInbox()}.`;
    this.#sub = nc.subscribe(`${this.#inbox}*`, { callback: (error, msg) => (error ? this.#failAll(error) : this.#ack(msg)) });
    void nc.closed().then((error) => this.#failAll(error ?? new Error('the NATS connection closed')));
    void this.#watchConnection(nc);
  }

  /**
   * What was in flight when the connection dropped went to a server that may be gone: nobody
   * will ack it. Fail it at once (its fate is unknown, as after a timeout: a retry with the same
   * message ids stores nothing twice) rather than at the deadline. Until the client is back,
   * nothing is sent: nats.js empties its outbound buffer when it dials again, so a publish
   * handed to it meanwhile would be dropped unseen and answered only by the deadline (a producer
   * stalled 5 s after a NATS node died, here); it waits in line and goes out on the reconnect.
   */
  async #watchConnection(nc: NatsConnection): Promise<void> {
    try {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect') {
          this.#offline = true;
          const error = new Error('the NATS connection dropped with the chunk in flight: it may not be stored');
          for (const [id, batch] of this.#inFlight) this.#settle(batch, id - batch.firstId, { error });
          this.#inFlight.clear();
        } else if (s.type === 'reconnect') {
          this.#offline = false;
          this.#drain();
        }
      }
    } catch {
      // the iterator ends with the connection; closed() fails the rest
    }
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Closed with its connection (or its subscription failed): it answers every publish with that error. */
  get closed(): boolean {
    return this.#closed !== undefined;
  }

  /** Publish `messages` to `subject` in order; resolves with one outcome per message. */
  publish(subject: string, messages: readonly PublishMessage[]): Promise<PublishOutcome[]> {
    return new Promise((resolve) => {
      const batch: Batch = { subject, messages, outcomes: new Array<PublishOutcome>(messages.length), next: 0, firstId: 0, open: messages.length, deadline: this.#clock.now() + this.#timeoutMs, resolve };
      if (this.#closed) {
        this.#failRest(batch, this.#closed);
        return;
      }
      if (messages.length === 0) {
        resolve([]);
        return;
      }
      // sent after this turn of the event loop, with whatever else was published in it
      this.#line.push(batch);
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => {
          this.#scheduled = false;
          this.#drain();
        });
      }
      this.#timer ??= this.#clock.setInterval(() => this.#expire(), Math.max(10, Math.min(1_000, this.#timeoutMs / 4)));
    });
  }

  /** Send what fits of `batch`; true when all of it went out. */
  #send(batch: Batch): boolean {
    if (this.#offline) return false;
    const room = this.#maxInFlight - this.#inFlight.size;
    if (room <= 0) return false;
    const end = Math.min(batch.messages.length, batch.next + room);
    // the ids of a batch are consecutive: nothing else is sent between its parts (FIFO)
    if (batch.next === 0) batch.firstId = this.#nextId;
    for (let i = batch.next; i < end; i++) {
      const m = batch.messages[i] as PublishMessage;
      const id = this.#nextId++;
      batch.next = i + 1;
      try {
        this.#nc.publish(batch.subject, m.payload, { reply: `${this.#inbox}${id}`, ...(m.headers ? { headers: m.headers } : {}) });
        this.#inFlight.set(id, batch);
      } catch (error) {
        // the client refused it at once (closed, too large): this message failed, the rest go on
        this.#settle(batch, i, { error: asError(error) });
      }
    }
    return batch.next === batch.messages.length;
  }

  /** Send from the line while there is room. */
  #drain(): void {
    while (this.#line.length > 0) {
      const head = this.#line[0] as Batch;
      if (!this.#send(head)) return;
      this.#line.shift();
    }
  }

  #ack(msg: Msg): void {
    const id = Number(msg.subject.slice(this.#inbox.length));
    const batch = this.#inFlight.get(id);
    if (!batch) return; // expired meanwhile
    this.#inFlight.delete(id);
    this.#settle(batch, id - batch.firstId, parseAck(msg));
    this.#drain();
  }

  #settle(batch: Batch, index: number, outcome: PublishOutcome): void {
    if (batch.outcomes[index] !== undefined) return;
    batch.outcomes[index] = outcome;
    if (--batch.open === 0) batch.resolve(batch.outcomes);
  }

  /** Fail every message past its deadline: in flight (oldest first), then in line. */
  #expire(): void {
    const now = this.#clock.now();
    for (const [id, batch] of this.#inFlight) {
      if (batch.deadline > now) break;
      this.#inFlight.delete(id);
      this.#settle(batch, id - batch.firstId, { error: new Error(`no ack from JetStream within ${this.#timeoutMs} ms`) });
    }
    while (this.#line.length > 0 && (this.#line[0] as Batch).deadline <= now) {
      const why = this.#offline ? 'the NATS connection was down' : `${this.#maxInFlight} publishes waited for their acks`;
      this.#failRest(this.#line.shift() as Batch, new Error(`not sent within ${this.#timeoutMs} ms: ${why}`));
    }
    this.#drain();
    if (this.#inFlight.size === 0 && this.#line.length === 0 && this.#timer) {
      this.#clock.clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  #failRest(batch: Batch, error: Error): void {
    for (let i = batch.next; i < batch.messages.length; i++) this.#settle(batch, i, { error });
    batch.next = batch.messages.length;
  }

  #failAll(cause: unknown): void {
    const error = asError(cause);
    this.#closed ??= error;
    for (const [id, batch] of this.#inFlight) this.#settle(batch, id - batch.firstId, { error });
    this.#inFlight.clear();
    for (const batch of this.#line.splice(0)) this.#failRest(batch, error);
    this.#clock.clearInterval(this.#timer);
    this.#timer = undefined;
    if (!this.#sub.isClosed()) this.#sub.unsubscribe();
  }
}

interface Batch {
  readonly subject: string;
  readonly messages: readonly PublishMessage[];
  readonly outcomes: PublishOutcome[];
  /** The next message to send. */
  next: number;
  /** The id of message 0 (ids of a batch are consecutive). */
  firstId: number;
  /** Messages without an outcome yet. */
  open: number;
  readonly deadline: number;
  readonly resolve: (outcomes: PublishOutcome[]) => void;
}

/** A JetStream publish ack: `{stream, seq, duplicate?}`, `{error: {code, err_code, description}}`, or a 503 status (no responders). */
export function parseAck(msg: Msg): PublishOutcome {
  const fast = fastAck(msg.data);
  if (fast) return fast;
  if (msg.data.length === 0) {
    const status = msg.headers?.code;
    return { error: status === 503 ? new Error('no responders: JetStream has no leader for the stream (or the stream is gone)') : new Error(`empty ack (status ${status ?? 'none'})`) };
  }
  let ack: { seq?: unknown; duplicate?: unknown; error?: { code?: unknown; err_code?: unknown; description?: unknown } };
  try {
    ack = msg.json();
  } catch (error) {
    return { error: new Error('an ack that is not JSON', { cause: error }) };
  }
  if (ack.error) {
    const e = new Error(`JetStream refused the message: ${String(ack.error.description ?? ack.error.code)}`) as Error & { code?: unknown };
    e.code = ack.error.err_code;
    return { error: e };
  }
  if (typeof ack.seq !== 'number') return { error: new Error('an ack without a sequence') };
  return { seq: ack.seq, duplicate: ack.duplicate === true };
}

const SEQ = [0x22, 0x73, 0x65, 0x71, 0x22, 0x3a]; // "seq":
const DUPLICATE = new TextEncoder().encode('"duplicate":true');

/**
 * The common ack without decoding it: `{"stream":"…","seq":N}` (maybe `,"duplicate":true`,
 * `"domain"`). Anything else (an error, no seq where expected) is left to the full parse.
 */
function fastAck(data: Uint8Array): PublishOutcome | undefined {
  if (data.length === 0 || data.length > 512 || data[0] !== 0x7b || data[2] !== 0x73) return undefined; // {"s…
  const at = indexOf(data, SEQ, 0);
  if (at < 0) return undefined;
  let seq = 0;
  let i = at + SEQ.length;
  const from = i;
  for (; i < data.length; i++) {
    const d = (data[i] as number) - 0x30;
    if (d < 0 || d > 9) break;
    seq = seq * 10 + d;
  }
  if (i === from || i - from > 15 || (data[i] !== 0x2c && data[i] !== 0x7d)) return undefined;
  return { seq, duplicate: indexOf(data, DUPLICATE, i) >= 0 };
}

function indexOf(data: Uint8Array, needle: ArrayLike<number>, from: number): number {
  outer: for (let i = from; i <= data.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) if (data[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
