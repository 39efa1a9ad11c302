import { randomBytes, randomUUID } from 'node:crypto';
import { MirrorstreamError, ProtocolError, RealClock, TypedEmitter, type Clock } from '@mirrorstream/receiver';
import { pino, type Logger } from 'pino';
import { parseConfig, type GatewayConfig, type GatewayConfigInput } from './config.js';
import { Connection } from './endpoints/connection.js';
import { Endpoint } from './endpoints/endpoint.js';
import type { EndpointState, FailoverPolicy } from './failover/policy.js';
import { PriorityFailoverPolicy } from './failover/policy.js';
import {
  addEndpointSchema,
  chunkOptionsSchema,
  parseInput,
  reorderSchema,
  streamSpecSchema,
  policySchema,
  type PolicyInput,
  idSchema,
  type AddEndpointInput,
  type ChunkInput,
  type ChunkOptions,
  type StreamSpecInput,
} from './streams/spec.js';
import { Stream, type Role, type SwitchReason, type SwitchRecord } from './streams/stream.js';
import {
  endpointHealth,
  streamHealth,
  streamInfo,
  type EndpointHealth,
  type StreamHealth,
  type StreamInfo,
} from './telemetry/snapshots.js';
import type { Transport } from './transports/transport.js';
import type { OverflowPolicy } from './rate/overflow.js';
import { EndpointTokens, type IssuedToken } from './auth/tokens.js';
import { createWebRtcEngine, looksLikeDataOffer, type WebRtcEngine } from './transports/webrtc/index.js';
import { WebTransportService, type WebTransportInfo, type WebTransportTicket } from './transports/webtransport/server.js';

export interface RoleChangedEvent {
  streamId: string;
  endpointId: string;
  role: Role;
  fromSeq: number;
  reason: SwitchReason;
  at: number;
}
export type SwitchEvent = { streamId: string } & SwitchRecord;
export interface EndpointHealthEvent {
  endpointId: string;
  state: EndpointState;
  previous: EndpointState;
  phi: number;
  at: number;
}
export interface GapEvent {
  streamId: string;
  endpointId: string;
  from: number;
  to: number;
  reason: string;
}

/** One heartbeat echo: the round trip gateway → receiver → gateway on the control channel. */
export interface HeartbeatEvent {
  endpointId: string;
  rttMs: number;
  at: number;
}

export type GatewayEvents = {
  roleChanged: [event: RoleChangedEvent];
  switched: [event: SwitchEvent];
  endpointHealth: [event: EndpointHealthEvent];
  gap: [event: GapEvent];
  heartbeat: [event: HeartbeatEvent];
};

/** Collaborators that are not configuration: injected so tests and embedders can replace them. */
export interface GatewayDeps {
  clock?: Clock;
  logger?: Logger;
  failoverPolicy?: FailoverPolicy;
  /** A WebRTC engine to use instead of the one `config.webrtc.engine` names. */
  webrtcEngine?: WebRtcEngine;
}

export interface WebRtcSession {
  session_id: string;
  endpoint_id: string;
  answer_sdp: string;
}

export interface PublishResult {
  seq: number;
}

export interface BatchResult {
  stream_id: string;
  first_seq: number;
  last_seq: number;
  count: number;
}

export interface GatewayStatus {
  status: 'ok' | 'closing';
  /** Which WebTransport backend runs (null until started or when disabled). */
  webtransport: { backend: WebTransportInfo['backend']; url: string } | null;
  streams: number;
  endpoints: number;
  connected_endpoints: number;
  uptime_s: number;
}

/**
 * The gateway: streams, endpoints and their connections. Every HTTP route is one call
 * on this object, so in-process users get the same validation and behaviour.
 */
export class Gateway extends TypedEmitter<GatewayEvents> {
  readonly config: GatewayConfig;
  readonly clock: Clock;
  readonly log: Logger;
  readonly #policy: FailoverPolicy;
  readonly #streams = new Map<string, Stream>();
  readonly #endpoints = new Map<string, Endpoint>();
  readonly #connections = new Set<Connection>();
  readonly #startedAt: number;
  #tick: ReturnType<Clock['setInterval']> | undefined;
  #lastAgeSweep = 0;
  #closing = false;
  #closed: Promise<void> | undefined;
  readonly #drainWaiters = new Set<() => void>();
  /** Connections already asked to switch transport (asked once, closed on a microtask). */
  readonly #switching = new WeakSet<Connection>();
  readonly #tokens: EndpointTokens;
  #webrtc: Promise<WebRtcEngine> | undefined;
  #webtransport: Promise<WebTransportService> | undefined;
  #webtransportInfo: WebTransportInfo | undefined;
  /** Signaling sessions by id: the transport (once up) and its endpoint. */
  readonly #sessions = new Map<string, { endpointId: string; transport: Transport | undefined; closed: boolean }>();

  constructor(config: GatewayConfig, deps: GatewayDeps = {}) {
    super();
    this.config = config;
    this.clock = deps.clock ?? new RealClock();
    this.log = (deps.logger ?? pino({ level: config.logLevel })).child({ module: 'gateway' });
    this.#policy = deps.failoverPolicy ?? new PriorityFailoverPolicy();
    if (deps.webrtcEngine) this.#webrtc = Promise.resolve(deps.webrtcEngine);
    this.#tokens = new EndpointTokens(config.tokens.secret ?? randomBytes(32).toString('base64url'), config.tokens.ttlS, this.clock);
    this.onListenerError = (err, event) => this.log.error({ err, event }, 'event listener threw');
    this.#startedAt = this.clock.now();
    this.#tick = this.clock.setInterval(() => this.#onTick(), config.tickMs);
  }

  // ---- streams ---------------------------------------------------------------

  createStream(input: StreamSpecInput): StreamInfo {
    this.#assertOpen();
    const spec = parseInput(streamSpecSchema, input, 'stream spec');
    if (this.#streams.has(spec.stream_id)) {
      throw new MirrorstreamError('MS_STREAM_EXISTS', `stream ${spec.stream_id} already exists`);
    }
    const now = this.clock.now();
    const r = this.config.retention;
    const stream = new Stream({
      id: spec.stream_id,
      mode: spec.mode,
      reliability: spec.reliability,
      mirrorK: spec.mirror_k,
      endpointList: spec.endpoint_list,
      retention: {
        maxChunks: spec.retention?.max_chunks ?? r.maxChunks,
        maxBytes: spec.retention?.max_bytes ?? r.maxBytes,
        maxAgeMs: spec.retention?.max_age_ms ?? r.maxAgeMs,
      },
      failback: {
        enabled: spec.failback?.enabled ?? this.config.failback.enabled,
        stableMs: spec.failback?.stable_ms ?? this.config.failback.stableMs,
      },
      sendHighWaterBytes: this.config.sendHighWaterBytes,
      switchHistory: this.config.switchHistory,
      policy: this.#policy,
      health: this.config.health,
      clock: () => this.clock.now(),
      overflow: toOverflow(spec.policy ?? policySchema.parse({})),
      reconnectGraceMs: this.config.failover.reconnectGraceMs,
      pacing: { minBytesPerSec: this.config.rate.minPaceBytesPerSec, gain: this.config.rate.paceGain, burstMs: this.config.rate.paceBurstMs },
      hooks: {
        wake: (ms, fn) => void this.clock.setTimeout(fn, ms),
        switchTransport: (id, reasons) => this.#switchTransport(this.#endpoint(id), reasons),
        endpoint: (id) => this.#endpoint(id),
        roleChanged: (e) => this.emit('roleChanged', e),
        switched: (e) => {
          this.log.info({ stream: e.streamId, from: e.from, to: e.to, reason: e.reason, fromSeq: e.from_seq }, 'switch');
          this.emit('switched', e);
        },
        gap: (e) => this.emit('gap', e),
      },
    });
    this.#streams.set(stream.id, stream);
    for (const id of spec.endpoint_list) this.#endpoint(id);
    for (const id of spec.endpoint_list) {
      if (this.#endpoint(id).link) stream.endpointConnected(id, undefined, now);
    }
    stream.evaluate(now);
    this.log.info({ stream: stream.id, mode: stream.mode, endpoints: spec.endpoint_list }, 'stream created');
    return this.getStream(stream.id);
  }

  listStreams(): StreamInfo[] {
    return [...this.#streams.values()].map((s) => streamInfo(s, (id) => this.#endpoint(id)));
  }

  getStream(streamId: string): StreamInfo {
    return streamInfo(this.#stream(streamId), (id) => this.#endpoint(id));
  }

  /** Delete a stream: its endpoints get END, its retained chunks are dropped. */
  deleteStream(streamId: string): void {
    const stream = this.#stream(streamId);
    stream.end('deleted');
    this.#streams.delete(streamId);
    for (const id of stream.endpointList) this.#forgetIfUnused(id);
    this.log.info({ stream: streamId }, 'stream deleted');
  }

  addEndpoint(streamId: string, input: AddEndpointInput): StreamInfo {
    const stream = this.#stream(streamId);
    const { endpoint_id, priority } = parseInput(addEndpointSchema, input, 'endpoint');
    if (stream.cursor(endpoint_id)) {
      throw new MirrorstreamError('MS_ENDPOINT_EXISTS', `${endpoint_id} is already on stream ${streamId}`);
    }
    this.#endpoint(endpoint_id);
    stream.addEndpoint(endpoint_id, priority, this.clock.now());
    return this.getStream(streamId);
  }

  removeEndpoint(streamId: string, endpointId: string): StreamInfo {
    const stream = this.#stream(streamId);
    if (!stream.cursor(endpointId)) {
      throw new MirrorstreamError('MS_ENDPOINT_NOT_FOUND', `${endpointId} is not on stream ${streamId}`);
    }
    stream.removeEndpoint(endpointId, this.clock.now());
    this.#forgetIfUnused(endpointId);
    return this.getStream(streamId);
  }

  /** Reorder priorities; the list must hold exactly the stream's current endpoints. */
  reorderEndpoints(streamId: string, endpointList: readonly string[]): StreamInfo {
    const stream = this.#stream(streamId);
    const { endpoint_list } = parseInput(reorderSchema, { endpoint_list: endpointList }, 'endpoint list');
    const current = new Set(stream.endpointList);
    if (endpoint_list.length !== current.size || !endpoint_list.every((id) => current.has(id))) {
      throw new MirrorstreamError(
        'MS_ENDPOINT_LIST_INVALID',
        'a reorder must list exactly the current endpoints; use POST/DELETE .../endpoints to add or remove',
      );
    }
    stream.reorder(endpoint_list, this.clock.now());
    return this.getStream(streamId);
  }

  /** Change a stream's overflow policy while it runs. */
  setPolicy(streamId: string, input: PolicyInput): StreamInfo {
    const stream = this.#stream(streamId);
    stream.setOverflow(toOverflow(parseInput(policySchema, input, 'policy')));
    this.log.info({ stream: streamId, policy: stream.overflow }, 'overflow policy changed');
    return this.getStream(streamId);
  }

  // ---- data ------------------------------------------------------------------

  /** Append one chunk; resolves with its seq once it is in the stream's log. */
  async publish(
    streamId: string,
    payload: Uint8Array | string,
    options: ChunkOptions & { waitMs?: number } = {},
  ): Promise<PublishResult> {
    const { waitMs, ...chunk } = options;
    const result = await this.publishBatch(streamId, [{ payload: toBytes(payload), ...chunk }], { waitMs });
    return { seq: result.first_seq };
  }

  /**
   * Append chunks atomically: all are validated before any is sequenced. On a
   * `backpressure` stream this waits while a slow endpoint holds it back (at most
   * `waitMs`, default forever; then MS_BACKPRESSURE).
   */
  async publishBatch(streamId: string, chunks: readonly ChunkInput[], options: { waitMs?: number | undefined } = {}): Promise<BatchResult> {
    this.#assertOpen();
    const stream = this.#stream(streamId);
    if (chunks.length === 0) throw new MirrorstreamError('MS_BAD_REQUEST', 'a batch needs at least one chunk');
    for (const [i, c] of chunks.entries()) {
      if (!(c.payload instanceof Uint8Array)) throw new MirrorstreamError('MS_BAD_REQUEST', `chunk ${i}: payload must be bytes`);
      if (c.payload.byteLength > this.config.maxChunkBytes) {
        throw new MirrorstreamError('MS_PAYLOAD_TOO_LARGE', `chunk ${i}: ${c.payload.byteLength} bytes > maxChunkBytes ${this.config.maxChunkBytes}`);
      }
      parseInput(chunkOptionsSchema, { key: c.key, layer: c.layer }, `chunk ${i} options`);
    }
    if (stream.overflow.overflow === 'backpressure' && stream.overloaded(this.clock.now())) {
      await this.#waitUntil(() => !stream.overloaded(this.clock.now()) || this.#closing || !this.#streams.has(streamId), options.waitMs);
      this.#assertOpen();
      if (!this.#streams.has(streamId)) throw new MirrorstreamError('MS_STREAM_NOT_FOUND', `stream ${streamId} was deleted`);
    }
    const now = this.clock.now();
    let first = 0;
    let last = 0;
    for (const c of chunks) {
      last = stream.append(c.payload, now, c.key, c.layer);
      if (first === 0) first = last;
    }
    return { stream_id: streamId, first_seq: first, last_seq: last, count: chunks.length };
  }

  // ---- health ----------------------------------------------------------------

  streamHealth(streamId: string): StreamHealth {
    return streamHealth(this.#stream(streamId), (id) => this.#endpoint(id), this.clock.now());
  }

  listEndpoints(): EndpointHealth[] {
    return [...this.#endpoints.values()].map((ep) => this.#endpointHealth(ep));
  }

  endpointHealth(endpointId: string): EndpointHealth {
    parseInput(idSchema, endpointId, 'endpoint id');
    const ep = this.#endpoints.get(endpointId);
    if (!ep) throw new MirrorstreamError('MS_ENDPOINT_NOT_FOUND', `no endpoint ${endpointId}`);
    return this.#endpointHealth(ep);
  }

  status(): GatewayStatus {
    let connected = 0;
    for (const ep of this.#endpoints.values()) if (ep.link) connected++;
    const wt = this.#webtransportInfo;
    return {
      status: this.#closing ? 'closing' : 'ok',
      webtransport: wt ? { backend: wt.backend, url: wt.url } : null,
      streams: this.#streams.size,
      endpoints: this.#endpoints.size,
      connected_endpoints: connected,
      uptime_s: Math.round((this.clock.now() - this.#startedAt) / 1000),
    };
  }

  // ---- signaling -------------------------------------------------------------

  /** Issue a token that admits exactly `endpointId` to signaling. */
  issueToken(endpointId: string, options: { ttl_s?: number } = {}): Promise<IssuedToken> {
    parseInput(idSchema, endpointId, 'endpoint id');
    const ttl = options.ttl_s;
    if (ttl !== undefined && (!Number.isInteger(ttl) || ttl < 1 || ttl > 30 * 24 * 3600)) {
      throw new MirrorstreamError('MS_BAD_REQUEST', 'ttl_s must be an integer between 1 and 2592000');
    }
    return this.#tokens.issue(endpointId, ttl);
  }

  /** Throws MS_UNAUTHORIZED unless the token admits this endpoint. */
  verifyEndpointToken(endpointId: string, token: string | undefined): Promise<void> {
    return this.#tokens.verify(token, endpointId);
  }

  /**
   * WHEP-style WebRTC signaling: answer the receiver's SDP offer. The token is checked
   * before the engine sees anything; the connection joins once the data channels open.
   */
  async openWebRtcSession(endpointId: string, token: string | undefined, offerSdp: string): Promise<WebRtcSession> {
    this.#assertOpen();
    parseInput(idSchema, endpointId, 'endpoint id');
    await this.#tokens.verify(token, endpointId);
    if (!looksLikeDataOffer(offerSdp)) {
      throw new MirrorstreamError('MS_BAD_REQUEST', 'body must be an SDP offer (v=0 ...) with an m=application SCTP section, at most 64 KiB');
    }
    this.#webrtc ??= createWebRtcEngine(this.config.webrtc);
    const engine = await this.#webrtc;
    let offer;
    try {
      offer = await engine.answer(offerSdp);
    } catch (error) {
      throw new MirrorstreamError('MS_BAD_REQUEST', `the WebRTC engine rejected the offer: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    const sessionId = randomUUID();
    const session = { endpointId, transport: undefined as Transport | undefined, closed: false };
    this.#sessions.set(sessionId, session);
    offer.transport.then(
      (transport) => {
        if (session.closed || this.#closing) {
          transport.close(session.closed ? 'session deleted' : 'gateway closing');
          return;
        }
        session.transport = transport;
        void transport.closed.then(() => this.#sessions.delete(sessionId));
        this.accept(transport, { endpointId, sessionId });
      },
      (error: unknown) => {
        this.#sessions.delete(sessionId);
        this.log.warn({ endpointId, err: error }, 'WebRTC session did not come up');
      },
    );
    this.log.info({ endpointId, session: sessionId, engine: engine.name }, 'WebRTC offer answered');
    return { session_id: sessionId, endpoint_id: endpointId, answer_sdp: offer.answerSdp };
  }

  /**
   * Start the WebTransport listener (also started by the first WebTransport signaling
   * request). Resolves with its backend, URL and certificate hash.
   */
  startWebTransport(): Promise<WebTransportInfo> {
    this.#assertOpen();
    if (!this.config.webtransport.enabled) throw new MirrorstreamError('MS_NOT_FOUND', 'WebTransport is disabled in this gateway');
    this.#webtransport ??= WebTransportService.start({
      config: this.config.webtransport,
      host: this.config.host,
      maxFrameBytes: this.config.maxFrameBytes,
      log: this.log.child({ module: 'webtransport' }),
      onSession: (transport, endpointId) => {
        if (this.#closing) transport.close('gateway closing');
        else this.accept(transport, { endpointId });
      },
    }).then((service) => {
      this.#webtransportInfo = service.info;
      this.log.info(
        { backend: service.info.backend, url: service.info.url, certificateSha256: service.info.certificate_sha256, selfSigned: service.info.self_signed },
        service.info.backend === 'http3'
          ? 'WebTransport backend: HTTP/3 (quiche) with HTTP/2 beside it'
          : 'WebTransport backend: HTTP/2 (optional @fails-components/webtransport-transport-http3-quiche is not installed); browsers use the WebSocket tunnel',
      );
      return service;
    });
    return this.#webtransport.then((s) => s.info);
  }

  /** WebTransport signaling: a single-use session URL (and cert hash) for a token holder. */
  async openWebTransportSession(endpointId: string, token: string | undefined): Promise<WebTransportTicket> {
    this.#assertOpen();
    parseInput(idSchema, endpointId, 'endpoint id');
    await this.#tokens.verify(token, endpointId);
    await this.startWebTransport();
    const service = await this.#webtransport;
    if (!service) throw new MirrorstreamError('MS_INTERNAL', 'WebTransport did not start');
    return service.ticket(endpointId, Date.now());
  }

  /** End a signaling session (WHEP DELETE). */
  async closeSession(endpointId: string, token: string | undefined, sessionId: string): Promise<void> {
    await this.#tokens.verify(token, endpointId);
    const session = this.#sessions.get(sessionId);
    if (!session || session.endpointId !== endpointId) throw new MirrorstreamError('MS_SESSION_NOT_FOUND', `no session ${sessionId.slice(0, 64)} for ${endpointId}`);
    session.closed = true;
    this.#sessions.delete(sessionId);
    session.transport?.close('session deleted');
  }

  // ---- connections -----------------------------------------------------------

  /**
   * Take a receiver connection whose endpoint id the caller (signaling) has already
   * authenticated. The receiver's HELLO must name the same endpoint.
   */
  accept(transport: Transport, auth: { endpointId: string; sessionId?: string }): Connection {
    this.#assertOpen();
    const endpointId = parseInput(idSchema, auth.endpointId, 'endpoint id');
    const conn = new Connection({
      transport,
      endpointId,
      clock: this.clock,
      log: this.log.child({ module: 'connection', endpointId }),
      maxFrameBytes: this.config.maxFrameBytes,
      heartbeatIntervalMs: this.config.heartbeat.intervalMs,
      probeIntervalMs: this.config.health.probeIntervalMs,
      helloTimeoutMs: this.config.helloTimeoutMs,
      sessionId: auth.sessionId ?? randomUUID(),
    });
    this.#connections.add(conn);
    conn.on('hello', (hello) => {
      const now = this.clock.now();
      const ep = this.#endpoint(endpointId);
      const previous = ep.state;
      ep.transports = hello.transports ?? [];
      const replaced = ep.attach(conn, now);
      replaced?.close('replaced by a newer connection');
      conn.welcome();
      this.log.info({ endpointId, kind: transport.kind, session: conn.sessionId }, 'endpoint connected');
      for (const s of this.#streamsOf(endpointId)) s.endpointConnected(endpointId, hello.resume[s.id], now);
      this.#emitHealth(ep, previous, now);
      for (const s of this.#streamsOf(endpointId)) s.evaluate(now);
    });
    conn.on('ack', (ack) => {
      this.#streams.get(ack.streamId)?.ack(endpointId, ack.seq);
      if (this.#drainWaiters.size > 0) for (const w of [...this.#drainWaiters]) w();
    });
    conn.on('heartbeatAck', (rttMs, at) => {
      this.#endpoints.get(endpointId)?.heartbeatAck(rttMs, at);
      this.emit('heartbeat', { endpointId, rttMs, at });
    });
    conn.on('report', (report) => this.#endpoints.get(endpointId)?.report(report, this.clock.now()));
    conn.on('probeSent', (nonce, at) => this.#endpoints.get(endpointId)?.probeSent(nonce, at));
    conn.on('probeAck', (nonce, at) => this.#endpoints.get(endpointId)?.probeAck(nonce, at));
    conn.on('drain', () => {
      for (const s of this.#streamsOf(endpointId)) s.pump(endpointId);
    });
    conn.on('close', (reason) => {
      this.#connections.delete(conn);
      const ep = this.#endpoints.get(endpointId);
      const now = this.clock.now();
      if (!ep) return;
      const previous = ep.state;
      if (!ep.detach(conn, now)) return;
      this.log.info({ endpointId, reason }, 'endpoint disconnected');
      this.#emitHealth(ep, previous, now);
      for (const s of this.#streamsOf(endpointId)) s.evaluate(now);
      this.#forgetIfUnused(endpointId);
    });
    return conn;
  }

  /**
   * Stop taking data, wait (up to `drainTimeoutMs`) until active endpoints acked
   * everything, send END and close every connection. Idempotent.
   */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    this.#closing = true;
    await this.#waitDrained(this.config.drainTimeoutMs);
    this.clock.clearInterval(this.#tick);
    for (const s of this.#streams.values()) s.end('gateway closing');
    for (const c of [...this.#connections]) c.close('gateway closing');
    for (const session of this.#sessions.values()) {
      session.closed = true;
      session.transport?.close('gateway closing');
    }
    this.#sessions.clear();
    if (this.#webtransport) (await this.#webtransport.catch(() => undefined))?.stop();
    this.log.info('gateway closed');
  }

  /** Resolve once `cond` holds (checked on acks and ticks); reject with MS_BACKPRESSURE after `timeoutMs`. */
  #waitUntil(cond: () => boolean, timeoutMs: number | undefined): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!cond()) return;
        this.#drainWaiters.delete(check);
        this.clock.clearTimeout(timer);
        resolve();
      };
      const timer =
        timeoutMs === undefined
          ? undefined
          : this.clock.setTimeout(() => {
              this.#drainWaiters.delete(check);
              reject(new MirrorstreamError('MS_BACKPRESSURE', `stream is backpressured for more than ${timeoutMs} ms`, { retryable: true }));
            }, timeoutMs);
      this.#drainWaiters.add(check);
    });
  }

  #waitDrained(timeoutMs: number): Promise<void> {
    const drained = (): boolean => [...this.#streams.values()].every((s) => s.drained);
    if (drained()) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.#drainWaiters.delete(check);
        this.clock.clearTimeout(timer);
        resolve();
      };
      const check = (): void => {
        if (drained()) done();
      };
      const timer = this.clock.setTimeout(() => {
        this.log.warn('drain timed out; closing with unacked chunks');
        done();
      }, timeoutMs);
      this.#drainWaiters.add(check);
    });
  }

  #onTick(): void {
    const now = this.clock.now();
    for (const ep of this.#endpoints.values()) {
      const previous = ep.check(now);
      if (previous !== undefined) {
        this.log.warn({ endpointId: ep.id, state: ep.state, previous, phi: ep.phi }, 'endpoint health changed');
        this.#emitHealth(ep, previous, now);
      }
      if (ep.assess(now)) {
        const h = ep.health();
        this.log.warn({ endpointId: ep.id, verdict: h.verdict, reasons: h.reasons, score: h.score }, 'endpoint path health changed');
        if (ep.degraded) this.#switchTransport(ep, ep.health().reasons);
      }
    }
    for (const s of this.#streams.values()) s.evaluate(now);
    if (now - this.#lastAgeSweep >= 1000) {
      this.#lastAgeSweep = now;
      for (const s of this.#streams.values()) s.log.evictExpired(now);
    }
    if (this.#drainWaiters.size > 0) for (const w of [...this.#drainWaiters]) w();
  }

  /**
   * Transport pair: an endpoint whose preferred transport degraded, and that said in HELLO
   * it has another, is asked to reconnect over the next one (ERROR MS_TRANSPORT_DEGRADED;
   * the SDK rotates). Only ever away from the first-listed transport, so it cannot ping-pong.
   */
  #switchTransport(ep: Endpoint, reasons: string[]): void {
    const conn = ep.link;
    if (!conn || !ep.canSwitchTransport || this.#switching.has(conn)) return;
    this.#switching.add(conn);
    this.log.warn({ endpointId: ep.id, from: conn.transport.kind, to: ep.transports[1], reasons }, 'preferred transport degraded: asking the endpoint to switch');
    // closed on a microtask: this is called from inside a stream's evaluation, and a close
    // re-evaluates every stream of the endpoint
    queueMicrotask(() =>
      conn.fail(new ProtocolError('MS_TRANSPORT_DEGRADED', `${conn.transport.kind} path is degraded (${reasons.join(', ')}); reconnect over ${ep.transports[1]}`)),
    );
  }

  #emitHealth(ep: Endpoint, previous: EndpointState, at: number): void {
    if (previous === ep.state) return;
    this.emit('endpointHealth', { endpointId: ep.id, state: ep.state, previous, phi: ep.phi, at });
  }

  #endpointHealth(ep: Endpoint): EndpointHealth {
    return endpointHealth(ep, this.#streamsOf(ep.id), this.config.heartbeat.intervalMs, this.clock.now());
  }

  #stream(streamId: string): Stream {
    const s = this.#streams.get(streamId);
    if (!s) throw new MirrorstreamError('MS_STREAM_NOT_FOUND', `no stream ${JSON.stringify(streamId).slice(0, 140)}`);
    return s;
  }

  /** The endpoint record, created on first mention. */
  #endpoint(id: string): Endpoint {
    let ep = this.#endpoints.get(id);
    if (!ep) this.#endpoints.set(id, (ep = new Endpoint(id, this.config.heartbeat, this.config.health, this.clock.now())));
    return ep;
  }

  #streamsOf(endpointId: string): Stream[] {
    return [...this.#streams.values()].filter((s) => s.cursor(endpointId) !== undefined);
  }

  /** Drop an endpoint record nobody refers to (not listed, not connected). */
  #forgetIfUnused(endpointId: string): void {
    const ep = this.#endpoints.get(endpointId);
    if (ep && !ep.connection && this.#streamsOf(endpointId).length === 0) this.#endpoints.delete(endpointId);
  }

  #assertOpen(): void {
    if (this.#closing) throw new MirrorstreamError('MS_GATEWAY_CLOSED', 'the gateway is closing', { retryable: false });
  }
}

export type GatewayOptions = GatewayConfigInput & GatewayDeps;

/** Build a gateway from a config (validated, frozen) plus optional collaborators. */
export function createGateway(options: GatewayOptions = {}): Gateway {
  const { clock, logger, failoverPolicy, webrtcEngine, ...config } = options;
  return new Gateway(parseConfig(config), { clock, logger, failoverPolicy, webrtcEngine });
}

function toOverflow(p: { overflow: OverflowPolicy['overflow']; max_backlog_ms: number; decimate_n: number }): OverflowPolicy {
  return { overflow: p.overflow, maxBacklogMs: p.max_backlog_ms, decimateN: p.decimate_n };
}

function toBytes(payload: Uint8Array | string): Uint8Array {
  return typeof payload === 'string' ? new TextEncoder().encode(payload) : payload;
}
