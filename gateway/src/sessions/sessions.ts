import { randomUUID } from 'node:crypto';
import { ProtocolError, type Clock } from '@mirrorstream/receiver/protocol';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config.js';
import { emitEndpointHealth, type EventSink } from '../core/events.js';
import { assertOpen, type Closing } from '../core/lifecycle.js';
import type { Registry } from '../core/registry.js';
import type { Scheduler } from '../core/scheduler.js';
import type { TimerQueue } from '../core/timers.js';
import type { AckWaiters } from '../core/waiters.js';
import { Connection } from '../endpoints/connection.js';
import type { Endpoint } from '../endpoints/endpoint.js';
import { idSchema, parseInput } from '../streams/spec.js';
import type { Transport } from '../transports/transport.js';
import { transportSwitchReasons } from './transport-switch.js';

export interface SessionsOptions {
  config: GatewayConfig;
  clock: Clock;
  log: Logger;
  registry: Registry;
  events: EventSink;
  waiters: AckWaiters;
  closing: Closing;
  /** Heartbeats and probes run on the gateway's one timer queue. */
  timers: TimerQueue;
  /** Time-driven health (the scheduler): rates, deadlines, and re-judging an endpoint heard again. */
  health: Pick<Scheduler, 'probeDue' | 'recheck' | 'heartbeat' | 'endpointConnected' | 'endpointDisconnected'>;
}

/**
 * Receiver connections and what their frames mean to the rest of the gateway: HELLO
 * attaches the connection to its endpoint and resumes its streams, ACKs move cursors,
 * heartbeats and probes feed the endpoint's health, a close detaches it.
 */
export class Sessions {
  readonly #o: SessionsOptions;
  readonly #connections = new Set<Connection>();
  /** One child logger for every connection (its lines name the endpoint): not one per connection. */
  readonly #connectionLog: Logger;

  constructor(options: SessionsOptions) {
    this.#o = options;
    this.#connectionLog = options.log.child({ module: 'connection' });
  }

  /**
   * Take a receiver connection whose endpoint id the caller (signaling) has already
   * authenticated. The receiver's HELLO must name the same endpoint.
   */
  accept(transport: Transport, auth: { endpointId: string; sessionId?: string }): Connection {
    assertOpen(this.#o.closing);
    const { config, clock, log, registry, events } = this.#o;
    const endpointId = parseInput(idSchema, auth.endpointId, 'endpoint id');
    const conn = new Connection({
      transport,
      endpointId,
      clock,
      timers: this.#o.timers,
      log: this.#connectionLog,
      maxFrameBytes: config.maxFrameBytes,
      heartbeatIntervalMs: config.heartbeat.intervalMs,
      maxHeartbeatIntervalMs: config.heartbeat.standbyIntervalMs,
      probeIntervalMs: config.health.probeIntervalMs,
      reportIntervalMs: config.health.reportIntervalMs,
      helloTimeoutMs: config.helloTimeoutMs,
      sessionId: auth.sessionId ?? randomUUID(),
    });
    this.#connections.add(conn);
    conn.on('hello', (hello) => {
      const now = clock.now();
      const ep = registry.endpoints.ensure(endpointId);
      const previous = ep.state;
      ep.transports = hello.transports ?? [];
      const replaced = ep.attach(conn, now);
      replaced?.close('replaced by a newer connection');
      conn.welcome();
      log.info({ endpointId, kind: transport.kind, session: conn.sessionId }, 'endpoint connected');
      const streams = registry.streamsOf(endpointId);
      for (const s of streams) {
        const seq = hello.resume[s.id];
        s.endpointConnected(endpointId, seq === undefined ? undefined : { seq, epoch: hello.epochs[s.id] }, now);
      }
      emitEndpointHealth(events, ep, previous, now);
      for (const s of streams) s.evaluate(now);
      this.#o.health.endpointConnected(ep);
    });
    conn.on('ack', (ack) => {
      registry.findStream(ack.streamId)?.ack(endpointId, ack.seq);
      this.#o.waiters.notify();
    });
    conn.on('heartbeatAck', (rttMs, at) => {
      const ep = registry.endpoints.find(endpointId);
      if (ep?.connection === conn) {
        ep.heartbeatAck(rttMs, at);
        this.#o.health.heartbeat(ep);
      }
      events.emit('heartbeat', { endpointId, rttMs, at });
    });
    conn.on('report', (report) => registry.endpoints.find(endpointId)?.report(report, clock.now()));
    conn.on('heard', (at) => {
      const ep = registry.endpoints.find(endpointId);
      if (ep?.connection === conn && ep.heard(at)) this.#o.health.recheck(ep);
    });
    conn.on('probe', (nonce, at) => {
      const ep = registry.endpoints.find(endpointId);
      if (ep?.connection !== conn) return;
      if (nonce !== undefined) ep.probeSent(nonce, at);
      this.#o.health.probeDue(ep, nonce !== undefined);
    });
    conn.on('probeAck', (nonce, at) => registry.endpoints.find(endpointId)?.probeAck(nonce, at));
    conn.on('drain', () => {
      for (const s of registry.streamsOf(endpointId)) s.pump(endpointId);
    });
    conn.on('close', (reason) => {
      this.#connections.delete(conn);
      const ep = registry.endpoints.find(endpointId);
      const now = clock.now();
      if (!ep) return;
      const previous = ep.state;
      if (!ep.detach(conn, now)) return;
      log.info({ endpointId, reason }, 'endpoint disconnected');
      emitEndpointHealth(events, ep, previous, now);
      for (const s of registry.streamsOf(endpointId)) s.evaluate(now);
      this.#o.health.endpointDisconnected(ep);
      registry.endpoints.forgetIfUnused(endpointId);
    });
    return conn;
  }

  /**
   * Apply the transport-pair rule to these endpoints (the tick passes those whose health, or
   * a stream's verdict on them, changed): the receiver gets ERROR MS_TRANSPORT_DEGRADED and
   * the connection closes (its streams re-evaluate with the endpoint disconnected, within its
   * reconnect grace). The tick calls it after endpoint and stream health were assessed and
   * before streams re-run their policy.
   */
  reviewTransports(endpoints: Iterable<Endpoint>): void {
    const { registry, log } = this.#o;
    for (const ep of [...endpoints]) {
      const conn = ep.link;
      if (!conn) continue;
      const reasons = transportSwitchReasons(ep, (id) => registry.streamsOf(id));
      if (!reasons) continue;
      const next = ep.transports[1];
      log.warn({ endpointId: ep.id, from: conn.transport.kind, to: next, reasons }, 'preferred transport degraded: asking the endpoint to switch');
      conn.fail(new ProtocolError('MS_TRANSPORT_DEGRADED', `${conn.transport.kind} path is degraded (${reasons.join(', ')}); reconnect over ${next}`));
    }
  }

  closeAll(reason: string): void {
    for (const c of [...this.#connections]) c.close(reason);
  }

  /** Tell every receiver to move to another gateway (GOAWAY); resolves once their transports closed, at most ERROR_LINGER_MS later. */
  async goawayAll(reason: string): Promise<void> {
    await Promise.all([...this.#connections].map((c) => c.goaway(reason)));
  }
}
