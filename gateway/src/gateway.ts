import { TypedEmitter, type Clock } from '@mirrorstream/receiver/protocol';
import type { Logger } from 'pino';
import { composeGateway } from './compose.js';
import type { GatewayConfig } from './config.js';
import type { GatewayEvents } from './core/events.js';
import type { BatchResult, Ingest, PublishOptions, PublishResult } from './core/ingest.js';
import type { Registry } from './core/registry.js';
import type { Scheduler } from './core/scheduler.js';
import type { TimerQueue } from './core/timers.js';
import type { Sessions } from './sessions/sessions.js';
import type { Signaling } from './signaling/index.js';
import type { AdmissionSnapshot } from './signaling/admission.js';
import type { AckWaiters } from './core/waiters.js';
import type { DialOut } from './dial-out/index.js';
import type { Connection } from './endpoints/connection.js';
import type { GatewayDeps } from './gateway-deps.js';
import type { Backend } from './storage/backend.js';
import type { IssuedToken } from './signaling/tokens.js';
import type { WebRtcSession } from './signaling/webrtc-sessions.js';
import type { AddEndpointInput, ChunkInput, ChunkOptions, PolicyInput, StreamSpecInput } from './streams/spec.js';
import type { Transport } from './transports/transport.js';
import type { TunnelTarget, WebTransportInfo, WebTransportTicket } from './transports/webtransport/server.js';
import type { DialInfo } from './views/schemas.js';
import { endpointHealth, streamHealth, streamInfo, type EndpointHealth, type StreamHealth, type StreamInfo } from './views/snapshots.js';
import { gatewayStatus, type GatewayReadiness, type GatewayStatus } from './views/status.js';

/**
 * The gateway: a facade over the registry (streams, endpoints), ingest, sessions
 * (connections), signaling and the scheduler. Every HTTP route is one call on this
 * object, so in-process users get the same validation and behaviour.
 */
export class Gateway extends TypedEmitter<GatewayEvents> {
  readonly config: GatewayConfig;
  readonly clock: Clock;
  readonly log: Logger;
  readonly #startedAt: number;
  readonly #registry: Registry;
  readonly #waiters: AckWaiters;
  readonly #ingest: Ingest;
  readonly #sessions: Sessions;
  readonly #scheduler: Scheduler;
  readonly #signaling: Signaling;
  readonly #dialOut: DialOut;
  readonly #backend: Backend;
  readonly #timers: TimerQueue;
  #started: Promise<void> | undefined;
  #closing = false;
  #closed: Promise<void> | undefined;
  /** Start-up work /readyz waits for (notReadyUntil). */
  #starting = 0;

  constructor(config: GatewayConfig, deps: GatewayDeps = {}) {
    super();
    this.config = config;
    const parts = composeGateway(config, deps, { events: this, closing: () => this.#closing });
    this.clock = parts.clock;
    this.log = parts.log;
    this.#backend = parts.backend;
    this.#timers = parts.timers;
    this.#registry = parts.registry;
    this.#waiters = parts.waiters;
    this.#ingest = parts.ingest;
    this.#scheduler = parts.scheduler;
    this.#sessions = parts.sessions;
    this.#signaling = parts.signaling;
    this.#dialOut = parts.dialOut;
    this.onListenerError = (err, event) => this.log.error({ err, event }, 'event listener threw');
    this.#startedAt = this.clock.now();
    this.#scheduler.start();
  }

  /**
   * Connect the backend, bring back its streams (JetStream: await before serving; memory: not
   * needed); retryable. With ICE ports configured the WebRTC engine claims them here
   * (MS_ICE_PORT_IN_USE, not retryable, when one is taken).
   */
  start(): Promise<void> {
    this.#started ??= this.#start().catch((error: unknown) => {
      this.#started = undefined;
      throw error;
    });
    return this.#started;
  }

  async #start(): Promise<void> {
    if (this.config.webrtc.icePort !== undefined) await this.#signaling.webrtc.start();
    await this.#backend.start();
    await this.#registry.start();
  }

  // Changes: the promise settles once the change is stored, and rejects on invalid input as on
  // a storage error (with the memory backend the change is applied before the call returns).

  async createStream(input: StreamSpecInput): Promise<StreamInfo> {
    return this.#info((await this.#registry.createStream(input)).id);
  }

  listStreams(): StreamInfo[] {
    return [...this.#registry.streams].map((s) => this.#info(s.id));
  }

  getStream(streamId: string): StreamInfo {
    return this.#info(streamId);
  }

  /** Its endpoints get END, its retained chunks are dropped. */
  async deleteStream(streamId: string): Promise<void> {
    await this.#registry.deleteStream(streamId);
  }

  async addEndpoint(streamId: string, input: AddEndpointInput): Promise<StreamInfo> {
    return this.#info((await this.#registry.addEndpoint(streamId, input)).id);
  }

  async removeEndpoint(streamId: string, endpointId: string): Promise<StreamInfo> {
    return this.#info((await this.#registry.removeEndpoint(streamId, endpointId)).id);
  }

  /** The list must hold exactly the stream's current endpoints. */
  async reorderEndpoints(streamId: string, endpointList: readonly string[]): Promise<StreamInfo> {
    return this.#info((await this.#registry.reorderEndpoints(streamId, endpointList)).id);
  }

  async setPolicy(streamId: string, input: PolicyInput): Promise<StreamInfo> {
    return this.#info((await this.#registry.setPolicy(streamId, input)).id);
  }

  /** Append one chunk; resolves with its seq once it is in the stream's log. */
  publish(streamId: string, payload: Uint8Array | string, options: ChunkOptions & PublishOptions = {}): Promise<PublishResult> {
    return this.#ingest.publish(streamId, payload, options);
  }

  /** Append chunks atomically (all validated before any is sequenced); see Ingest for backpressure. */
  publishBatch(streamId: string, chunks: readonly ChunkInput[], options: PublishOptions = {}): Promise<BatchResult> {
    return this.#ingest.publishBatch(streamId, chunks, options);
  }

  streamHealth(streamId: string): StreamHealth {
    return streamHealth(this.#registry.requireStream(streamId), (id) => this.#registry.endpoints.ensure(id), this.clock.now());
  }

  listEndpoints(): EndpointHealth[] {
    return [...this.#registry.endpoints.all].map((ep) => this.endpointHealth(ep.id));
  }

  endpointHealth(endpointId: string): EndpointHealth {
    const ep = this.#registry.endpoints.require(endpointId);
    return endpointHealth(ep, this.#registry.streamsOf(ep.id), this.config.heartbeat.intervalMs, this.clock.now(), this.#dialInfo(ep.id));
  }

  status(): GatewayStatus {
    const r = this.#registry;
    return gatewayStatus({ closing: this.#closing, instanceId: this.#backend.instanceId, webtransport: this.#signaling.webtransport.info, streams: r.streamCount, endpoints: r.endpoints.all, uptimeMs: this.clock.now() - this.#startedAt, followers: this.#backend.followers });
  }

  /** Ready for new receivers and publishers: started, not draining, and the stream log can store (see GatewayReadiness). */
  async readiness(): Promise<GatewayReadiness> {
    const available = this.#closing || (await this.#backend.available());
    // following the shared views (specs, cursors, the endpoint board) counts in /healthz and the
    // metrics; readiness is about the data: a stream's log and its control
    const stale = (this.#backend.followers?.stale ?? []).filter((name) => name.startsWith('log:') || name.startsWith('control:'));
    // draining may have begun while the log answered
    const status = this.#closing ? 'draining' : this.#starting > 0 ? 'starting' : !available ? 'log_unavailable' : stale.length > 0 ? 'not_following' : !this.#signaling.admission.admitting ? 'overloaded' : 'ready';
    return { ready: status === 'ready', status, instance_id: this.#backend.instanceId, ...(status === 'not_following' ? { stale: [...stale] } : {}) };
  }

  /** Admission control now: whether new endpoints are admitted, the loop delay, handshakes under way, refusals (signaling/admission.ts). */
  admission(): AdmissionSnapshot {
    return this.#signaling.admission.snapshot();
  }

  /** `/readyz` answers 503 `starting` until `work` settles (the CLI's warm-up). */
  notReadyUntil(work: Promise<unknown>): void {
    this.#starting++;
    void work.then(
      () => this.#starting--,
      () => this.#starting--,
    );
  }

  /** Issue a token that admits exactly `endpointId` to signaling. */
  issueToken(endpointId: string, options: { ttl_s?: number } = {}): Promise<IssuedToken> {
    return this.#signaling.tokens.issue(endpointId, options.ttl_s);
  }

  /** Throws MS_UNAUTHORIZED unless the token admits this endpoint. */
  verifyEndpointToken(endpointId: string, token: string | undefined): Promise<void> {
    return this.#signaling.tokens.verify(token, endpointId);
  }

  /** WHEP-style WebRTC signaling: answer the receiver's SDP offer (token checked first). */
  openWebRtcSession(endpointId: string, token: string | undefined, offerSdp: string): Promise<WebRtcSession> {
    return this.#signaling.webrtc.open(endpointId, token, offerSdp);
  }

  /** Start the WebTransport listener (also started by the first WebTransport signaling request). */
  startWebTransport(): Promise<WebTransportInfo> {
    return this.#signaling.webtransport.start();
  }

  /** Where the HTTP port relays a browser tunnel request (`/v1/wt?ticket=…`) with a live ticket. */
  webTransportTunnelTarget(path: string): Promise<TunnelTarget> {
    return this.#signaling.webtransport.tunnelTarget(path);
  }

  /** WebTransport signaling: a single-use session URL (and cert hash) for a token holder. */
  openWebTransportSession(endpointId: string, token: string | undefined): Promise<WebTransportTicket> {
    return this.#signaling.webtransport.open(endpointId, token);
  }

  /** Give back a WebTransport ticket the receiver could not use. */
  cancelWebTransportTicket(endpointId: string, token: string | undefined, ticket: string): Promise<void> {
    return this.#signaling.webtransport.cancel(endpointId, token, ticket);
  }

  /** A browser tunnel relay for `path` ended: a ticket no session took is given back. */
  webTransportRelayEnded(path: string): void {
    this.#signaling.webtransport.relayEnded(path);
  }

  /** End a signaling session (WHEP DELETE). */
  closeSession(endpointId: string, token: string | undefined, sessionId: string): Promise<void> {
    return this.#signaling.webrtc.close(endpointId, token, sessionId);
  }

  /** Take a receiver connection whose endpoint id the caller has authenticated; HELLO must name it. */
  accept(transport: Transport, auth: { endpointId: string; sessionId?: string }): Connection {
    return this.#sessions.accept(transport, auth);
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
    this.emit('closing');
    // no new dials: the listeners' connections get GOAWAY with the others, and another instance dials them
    this.#dialOut.stop();
    const drained = (): boolean => [...this.#registry.streams].every((s) => s.drained);
    await this.#waiters.until(drained, this.config.drainTimeoutMs, () => void this.log.warn('drain timed out; closing with unacked chunks'));
    this.#scheduler.stop();
    // an in-memory stream ends with the process (END); a stored one goes on at another gateway.
    // GOAWAY, behind the last DATA and END, sends the receivers on now (with a stored log they
    // resume from what they acked) and lets the close wait until they have everything
    if (this.#backend.kind === 'memory') for (const s of this.#registry.streams) s.end('gateway closing');
    await this.#sessions.goawayAll('gateway draining');
    this.#sessions.closeAll('gateway closing');
    await this.#signaling.close('gateway closing');
    this.#timers.close();
    await this.#backend.close();
    this.log.info('gateway closed');
  }

  #info(streamId: string): StreamInfo {
    const r = this.#registry;
    return streamInfo(r.requireStream(streamId), (id) => r.endpoints.view(id), r.ownerOf(streamId), (id) => this.#dialInfo(id));
  }

  /** A listening endpoint's dialing as this instance knows it (null: the endpoint dials in). */
  #dialInfo(endpointId: string): DialInfo | null {
    const assigned = this.#dialOut.assignment(endpointId);
    if (!assigned) return null;
    const here = this.#dialOut.status(endpointId);
    const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());
    // the owner as this instance knows it now (DialOut decides on owner changes it is told of)
    if (!here) return { url: assigned.target.url, state: 'elsewhere', dialed_by: this.#registry.ownerOf(assigned.streamId), since: null, next_attempt_at: null, failures: 0, last_error: null };
    return {
      url: assigned.target.url,
      state: here.state,
      dialed_by: this.#backend.instanceId,
      since: iso(here.since),
      next_attempt_at: iso(here.nextAttemptAt),
      failures: here.failures,
      last_error: here.lastError ? { code: here.lastError.code, message: here.lastError.message, at: new Date(here.lastError.at).toISOString() } : null,
    };
  }
}
