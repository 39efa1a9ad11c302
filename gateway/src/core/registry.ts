import { isValidId, MirrorstreamError, type Clock } from '@mirrorstream/receiver/protocol';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config.js';
import { Endpoint } from '../endpoints/endpoint.js';
import type { FailoverPolicy } from '../failover/policy.js';
import type { OverflowPolicy } from '../rate/overflow.js';
import {
  addEndpointSchema,
  idSchema,
  parseInput,
  policySchema,
  reorderSchema,
  streamSpecSchema,
  type AddEndpointInput,
  type PolicyInput,
  type StreamSpecInput,
} from '../streams/spec.js';
import { Stream } from '../streams/stream.js';
import type { StreamLogFactory } from '../streams/stream-log.js';
import type { EventSink } from './events.js';
import { assertOpen, type Closing } from './lifecycle.js';

export interface RegistryOptions {
  config: GatewayConfig;
  clock: Clock;
  log: Logger;
  policy: FailoverPolicy;
  logs: StreamLogFactory;
  events: EventSink;
  closing: Closing;
}

/**
 * The streams and endpoints of a gateway, and their CRUD. An endpoint record exists while
 * a stream lists it or it is connected; streams reach endpoints only through it.
 */
export class Registry {
  readonly #o: RegistryOptions;
  readonly #streams = new Map<string, Stream>();
  readonly #endpoints = new Map<string, Endpoint>();

  constructor(options: RegistryOptions) {
    this.#o = options;
  }

  get streams(): IterableIterator<Stream> {
    return this.#streams.values();
  }

  get endpoints(): IterableIterator<Endpoint> {
    return this.#endpoints.values();
  }

  get streamCount(): number {
    return this.#streams.size;
  }

  createStream(input: StreamSpecInput): Stream {
    assertOpen(this.#o.closing);
    const spec = parseInput(streamSpecSchema, input, 'stream spec');
    if (this.#streams.has(spec.stream_id)) {
      throw new MirrorstreamError('MS_STREAM_EXISTS', `stream ${spec.stream_id} already exists`);
    }
    const { config, clock, events, log } = this.#o;
    const now = clock.now();
    const r = config.retention;
    const streamLog = this.#o.logs(spec.stream_id, {
      maxChunks: spec.retention?.max_chunks ?? r.maxChunks,
      maxBytes: spec.retention?.max_bytes ?? r.maxBytes,
      maxAgeMs: spec.retention?.max_age_ms ?? r.maxAgeMs,
    });
    // a StreamLog plug-in's epoch travels in ROLE and RESET, where receivers check it
    if (!isValidId(streamLog.epoch)) throw new MirrorstreamError('MS_CONFIG_INVALID', `the stream log gave stream ${spec.stream_id} an invalid epoch id`);
    const stream = new Stream({
      id: spec.stream_id,
      mode: spec.mode,
      reliability: spec.reliability,
      mirrorK: spec.mirror_k,
      endpointList: spec.endpoint_list,
      log: streamLog,
      failback: {
        enabled: spec.failback?.enabled ?? config.failback.enabled,
        stableMs: spec.failback?.stable_ms ?? config.failback.stableMs,
      },
      sendHighWaterBytes: config.sendHighWaterBytes,
      switchHistory: config.switchHistory,
      policy: this.#o.policy,
      health: config.health,
      clock: () => clock.now(),
      overflow: toOverflow(spec.policy ?? policySchema.parse({})),
      reconnectGraceMs: config.failover.reconnectGraceMs,
      pacing: { minBytesPerSec: config.rate.minPaceBytesPerSec, gain: config.rate.paceGain, burstMs: config.rate.paceBurstMs },
      hooks: {
        wake: (ms, fn) => void clock.setTimeout(fn, ms),
        endpoint: (id) => this.ensureEndpoint(id),
        roleChanged: (e) => events.emit('roleChanged', e),
        switched: (e) => {
          log.info({ stream: e.streamId, from: e.from, to: e.to, reason: e.reason, fromSeq: e.from_seq }, 'switch');
          events.emit('switched', e);
        },
        gap: (e) => events.emit('gap', e),
      },
    });
    this.#streams.set(stream.id, stream);
    for (const id of spec.endpoint_list) this.ensureEndpoint(id);
    for (const id of spec.endpoint_list) {
      if (this.ensureEndpoint(id).link) stream.endpointConnected(id, undefined, now);
    }
    stream.evaluate(now);
    log.info({ stream: stream.id, mode: stream.mode, epoch: stream.epoch, endpoints: spec.endpoint_list }, 'stream created');
    return stream;
  }

  /** Delete a stream: its endpoints get END, its retained chunks are dropped. */
  deleteStream(streamId: string): void {
    const stream = this.requireStream(streamId);
    stream.end('deleted');
    this.#streams.delete(streamId);
    for (const id of stream.endpointList) this.forgetIfUnused(id);
    this.#o.log.info({ stream: streamId }, 'stream deleted');
  }

  addEndpoint(streamId: string, input: AddEndpointInput): Stream {
    const stream = this.requireStream(streamId);
    const { endpoint_id, priority } = parseInput(addEndpointSchema, input, 'endpoint');
    if (stream.cursor(endpoint_id)) {
      throw new MirrorstreamError('MS_ENDPOINT_EXISTS', `${endpoint_id} is already on stream ${streamId}`);
    }
    this.ensureEndpoint(endpoint_id);
    stream.addEndpoint(endpoint_id, priority, this.#o.clock.now());
    return stream;
  }

  removeEndpoint(streamId: string, endpointId: string): Stream {
    const stream = this.requireStream(streamId);
    if (!stream.cursor(endpointId)) {
      throw new MirrorstreamError('MS_ENDPOINT_NOT_FOUND', `${endpointId} is not on stream ${streamId}`);
    }
    stream.removeEndpoint(endpointId, this.#o.clock.now());
    this.forgetIfUnused(endpointId);
    return stream;
  }

  /** Reorder priorities; the list must hold exactly the stream's current endpoints. */
  reorderEndpoints(streamId: string, endpointList: readonly string[]): Stream {
    const stream = this.requireStream(streamId);
    const { endpoint_list } = parseInput(reorderSchema, { endpoint_list: endpointList }, 'endpoint list');
    const current = new Set(stream.endpointList);
    if (endpoint_list.length !== current.size || !endpoint_list.every((id) => current.has(id))) {
      throw new MirrorstreamError(
        'MS_ENDPOINT_LIST_INVALID',
        'a reorder must list exactly the current endpoints; use POST/DELETE .../endpoints to add or remove',
      );
    }
    stream.reorder(endpoint_list, this.#o.clock.now());
    return stream;
  }

  /** Change a stream's overflow policy while it runs. */
  setPolicy(streamId: string, input: PolicyInput): Stream {
    const stream = this.requireStream(streamId);
    stream.setOverflow(toOverflow(parseInput(policySchema, input, 'policy')));
    this.#o.log.info({ stream: streamId, policy: stream.overflow }, 'overflow policy changed');
    return stream;
  }

  /** The stream, or MS_STREAM_NOT_FOUND. */
  requireStream(streamId: string): Stream {
    const s = this.#streams.get(streamId);
    if (!s) throw new MirrorstreamError('MS_STREAM_NOT_FOUND', `no stream ${JSON.stringify(streamId).slice(0, 140)}`);
    return s;
  }

  /** The stream under this id now, if any. */
  findStream(streamId: string): Stream | undefined {
    return this.#streams.get(streamId);
  }

  /** The endpoint record, created on first mention. */
  ensureEndpoint(id: string): Endpoint {
    let ep = this.#endpoints.get(id);
    if (!ep) this.#endpoints.set(id, (ep = new Endpoint(id, this.#o.config.heartbeat, this.#o.config.health, this.#o.clock.now())));
    return ep;
  }

  /** A known endpoint, or MS_ENDPOINT_NOT_FOUND (never creates one). */
  requireEndpoint(id: string): Endpoint {
    parseInput(idSchema, id, 'endpoint id');
    const ep = this.#endpoints.get(id);
    if (!ep) throw new MirrorstreamError('MS_ENDPOINT_NOT_FOUND', `no endpoint ${id}`);
    return ep;
  }

  /** A known endpoint or undefined. */
  findEndpoint(id: string): Endpoint | undefined {
    return this.#endpoints.get(id);
  }

  streamsOf(endpointId: string): Stream[] {
    return [...this.#streams.values()].filter((s) => s.cursor(endpointId) !== undefined);
  }

  /** Drop an endpoint record nobody refers to (not listed, not connected). */
  forgetIfUnused(endpointId: string): void {
    const ep = this.#endpoints.get(endpointId);
    if (ep && !ep.connection && this.streamsOf(endpointId).length === 0) this.#endpoints.delete(endpointId);
  }
}

function toOverflow(p: { overflow: OverflowPolicy['overflow']; max_backlog_ms: number; decimate_n: number }): OverflowPolicy {
  return { overflow: p.overflow, maxBacklogMs: p.max_backlog_ms, decimateN: p.decimate_n };
}
