import { MirrorstreamError, type Clock } from '@mirrorstream/receiver/protocol';
import type { GatewayConfig } from '../config.js';
import { Endpoint } from '../endpoints/endpoint.js';
import type { Backend } from '../storage/backend.js';
import { idSchema, parseInput } from '../streams/spec.js';
import type { Stream } from '../streams/stream.js';
import type { EndpointView } from '../streams/types.js';

export interface EndpointDirectoryOptions {
  config: GatewayConfig;
  clock: Clock;
  backend: Backend;
  /** The streams that list an endpoint (the registry's index). */
  streamsOf(endpointId: string): readonly Stream[];
}

/** A connection lost here is shared with the other instances this long; after it they judge by silence. */
const SHARE_LOST_MS = 5_000;

/**
 * The gateway's endpoint records: one exists while a stream lists the endpoint or it is
 * connected here. What the streams see of an endpoint comes from here: its record when it is
 * connected to this instance, else what the instance holding it shares (several instances).
 */
export class EndpointDirectory {
  readonly #o: EndpointDirectoryOptions;
  readonly #endpoints = new Map<string, Endpoint>();

  constructor(options: EndpointDirectoryOptions) {
    this.#o = options;
  }

  get all(): IterableIterator<Endpoint> {
    return this.#endpoints.values();
  }

  /** The endpoint record, created on first mention. */
  ensure(id: string): Endpoint {
    let ep = this.#endpoints.get(id);
    if (!ep) this.#endpoints.set(id, (ep = new Endpoint(id, this.#o.config.heartbeat, this.#o.config.health, this.#o.clock.now())));
    return ep;
  }

  /** A known endpoint, or MS_ENDPOINT_NOT_FOUND (never creates one). */
  require(id: string): Endpoint {
    parseInput(idSchema, id, 'endpoint id');
    const ep = this.#endpoints.get(id);
    if (!ep) throw new MirrorstreamError('MS_ENDPOINT_NOT_FOUND', `no endpoint ${id}`);
    return ep;
  }

  /** A known endpoint or undefined. */
  find(id: string): Endpoint | undefined {
    return this.#endpoints.get(id);
  }

  /** Drop an endpoint record nobody refers to (not listed, not connected). */
  forgetIfUnused(endpointId: string): void {
    const ep = this.#endpoints.get(endpointId);
    if (ep && !ep.connection && this.#o.streamsOf(endpointId).length === 0) this.#endpoints.delete(endpointId);
  }

  /** An endpoint as the streams see it: connected here, else as the instance holding it says. */
  view(id: string): EndpointView {
    const local = this.ensure(id);
    if (local.link) return local;
    return this.#o.backend.endpoints?.view(id) ?? local;
  }

  /**
   * With several instances: tell the others how an endpoint connected here is (the scheduler
   * calls it when its health changed; the board sends only changes, and refreshes what it sent).
   */
  share(ep: Endpoint, now: number): void {
    const board = this.#o.backend.endpoints;
    if (!board || (!ep.link && (ep.disconnectedAt === undefined || now - ep.disconnectedAt > SHARE_LOST_MS))) return;
    const streams: Record<string, boolean> = {};
    for (const s of this.#o.streamsOf(ep.id)) streams[s.id] = s.cursor(ep.id)?.health.verdict === 'degraded';
    board.publish(ep.id, { state: ep.state, degraded: ep.degraded, upSince: ep.upSince, disconnectedAt: ep.disconnectedAt, streams, health: ep.health() });
  }
}
