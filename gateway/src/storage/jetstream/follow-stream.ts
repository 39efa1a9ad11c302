import { DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JsMsg, type OrderedConsumerOptions } from '@nats-io/jetstream';
import { ENGINE_HEARTBEAT_MS, type OpenFollow } from './follower.js';

/** How long one pull request lasts (a new one is sent as it ends): long, so an idle follower costs a heartbeat per ENGINE_HEARTBEAT_MS and little else. */
const PULL_MS = 15_000;

/** Notifications that say the consumer or its stream is gone: recreate at once, not after a stall. */
const LOST = new Set(['consumer_not_found', 'consumer_deleted', 'stream_not_found', 'no_responders', 'heartbeats_missed']);
/** Notifications only a live server sends. */
const ALIVE = new Set(['heartbeat', 'discard', 'flow_control']);

export interface FollowStreamOptions {
  /** How the first subscription starts when nothing was applied yet (default: from the stream's first entry). */
  first?: Partial<OrderedConsumerOptions>;
  /** Entries a pull asks for. */
  batch: number;
}

/**
 * Subscriptions to one JetStream stream for a Follower: an ordered consumer (ephemeral, R1,
 * on one server of the cluster) started after the last applied stream sequence, pulling with
 * an idle heartbeat so its follower hears a live consumer at least every ENGINE_HEARTBEAT_MS.
 * Entries are JetStream messages at their stream sequence. The consumer of a replaced
 * subscription is deleted (best effort: one on a dead server is gone anyway, one on a live
 * server would otherwise linger for the library's 5 minutes).
 */
export function followStream(js: JetStreamClient, stream: string, options: FollowStreamOptions): OpenFollow<JsMsg> {
  return async (after, sink) => {
    // a copy: nats.js writes the consumer's name prefix into the options it is given
    const start: Partial<OrderedConsumerOptions> =
      after === 0 && options.first ? { ...options.first } : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: after + 1 };
    const consumer = await js.consumers.get(stream, start);
    let messages: ConsumerMessages;
    try {
      // a missing consumer ends the subscription (the follower recreates it from its position)
      // instead of the library recreating it behind the follower's back; a pull lasts PULL_MS,
      // heartbeats come every ENGINE_HEARTBEAT_MS whatever the pull's length
      messages = await consumer.consume({ max_messages: options.batch, expires: PULL_MS, idle_heartbeat: ENGINE_HEARTBEAT_MS, abort_on_missing_resource: true });
    } catch (error) {
      consumer.delete().catch(() => undefined);
      throw error;
    }
    let closed = false;
    void (async () => {
      try {
        for await (const s of messages.status()) {
          if (closed) return;
          if (LOST.has(s.type)) sink.lost(`the consumer reported ${s.type}`);
          else if (ALIVE.has(s.type)) sink.alive();
        }
      } catch {
        // the message loop below reports an end
      }
    })();
    void (async () => {
      try {
        for await (const m of messages) sink.entry(m.seq, m);
        if (!closed) sink.lost('the subscription ended');
      } catch (error) {
        if (!closed) sink.lost(`the subscription failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    })();
    return {
      close() {
        closed = true;
        messages.stop();
        consumer.delete().catch(() => undefined);
      },
    };
  };
}

/** One change of a KV bucket as its stream holds it. */
export interface KvChange {
  readonly key: string;
  readonly operation: 'PUT' | 'DEL' | 'PURGE';
  /** The entry's revision: its stream sequence. */
  readonly revision: number;
  readonly value: string;
}

/**
 * Subscriptions to a KV bucket's changes through its stream (`KV_<bucket>`), so KV watches are
 * supervised like every other follower. `current`: the first subscription brings each key's
 * current value, then changes (a watch of everything); without it, only what comes after the
 * position the follower starts at.
 */
export function followBucket(js: JetStreamClient, bucket: string, current: boolean): OpenFollow<JsMsg> {
  const first: Partial<OrderedConsumerOptions> | undefined = current ? { deliver_policy: DeliverPolicy.LastPerSubject, filter_subjects: `$KV.${bucket}.>` } : undefined;
  return followStream(js, `KV_${bucket}`, first ? { batch: 256, first } : { batch: 256 });
}

/** The change a KV stream message carries (undefined: not a key of `bucket`). */
export function kvChange(bucket: string, m: JsMsg): KvChange | undefined {
  const prefix = `$KV.${bucket}.`;
  if (!m.subject.startsWith(prefix)) return undefined;
  const op = m.headers?.get('KV-Operation');
  const operation = op === 'DEL' || op === 'PURGE' ? op : 'PUT';
  return { key: m.subject.slice(prefix.length), operation, revision: m.seq, value: operation === 'PUT' ? m.string() : '' };
}
