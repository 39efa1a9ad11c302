import { RealClock, type Clock } from '@mirrorstream/receiver/protocol';
import { pino, type Logger } from 'pino';
import type { GatewayConfig } from './config.js';
import type { EventSink } from './core/events.js';
import { Ingest } from './core/ingest.js';
import type { Closing } from './core/lifecycle.js';
import { Registry } from './core/registry.js';
import { Scheduler } from './core/scheduler.js';
import { TimerQueue } from './core/timers.js';
import { AckWaiters } from './core/waiters.js';
import { DialAllowList } from './dial-out/allow.js';
import { Dialer } from './dial-out/dialer.js';
import { DialOut } from './dial-out/index.js';
import { webrtcDialer } from './dial-out/webrtc-dial.js';
import { PriorityFailoverPolicy } from './failover/policy.js';
import type { GatewayDeps } from './gateway-deps.js';
import type { Backend } from './storage/backend.js';
import { createBackend } from './storage/index.js';
import { Sessions } from './sessions/sessions.js';
import { Signaling } from './signaling/index.js';

/** The working parts of a gateway; the Gateway class is a facade over them. */
export interface GatewayParts {
  readonly clock: Clock;
  readonly log: Logger;
  readonly backend: Backend;
  /** Every piece of timed work (ticks, liveness, connections' timers): closed last, when the gateway has closed. */
  readonly timers: TimerQueue;
  readonly registry: Registry;
  readonly waiters: AckWaiters;
  readonly ingest: Ingest;
  readonly scheduler: Scheduler;
  readonly sessions: Sessions;
  readonly signaling: Signaling;
  readonly dialOut: DialOut;
}

/**
 * Build a gateway's parts in dependency order, each from the ones before it: the registry
 * (streams, endpoints) knows nothing of who times it; the scheduler follows the registry's
 * streams by their events; sessions report endpoint health to the scheduler, which asks them
 * back for the transport-pair rule by an event; signaling hands accepted transports to the sessions,
 * and so does the dial-out, for the listening endpoints this instance dials.
 */
export function composeGateway(config: GatewayConfig, deps: GatewayDeps, gateway: { events: EventSink; closing: Closing }): GatewayParts {
  const { events, closing } = gateway;
  const clock = deps.clock ?? new RealClock();
  const log = (deps.logger ?? pino({ level: config.logLevel })).child({ module: 'gateway' });
  const backend = deps.backend ?? createBackend(config, clock, log);
  const timers = new TimerQueue(clock, (err) => log.error({ err }, 'timed work failed'));
  const allow = new DialAllowList(config.dialOut.allow);
  const registry = new Registry({
    config,
    clock,
    log,
    policy: deps.failoverPolicy ?? new PriorityFailoverPolicy(),
    backend,
    events,
    closing,
    checkListeners: async (listeners) => {
      for (const { url } of Object.values(listeners)) await allow.check(new URL(url));
    },
  });
  const waiters = new AckWaiters(clock);
  const ingest = new Ingest({ config, clock, registry, waiters, closing });
  const { health, heartbeat } = config;
  const scheduler = new Scheduler({
    tickMs: config.tickMs,
    clock,
    timers,
    log,
    registry,
    events,
    waiters,
    probeIntervals: { normalMs: health.probeIntervalMs, carrierMs: health.carrierProbeIntervalMs, standbyMs: health.standbyProbeIntervalMs },
    heartbeatIntervals: { normalMs: heartbeat.intervalMs, standbyMs: heartbeat.standbyIntervalMs },
    reportIntervals: { normalMs: health.reportIntervalMs, standbyMs: health.standbyReportIntervalMs },
    closeDeadAfterMs: heartbeat.closeDeadAfterMs,
  });
  const sessions = new Sessions({ config, clock, timers, log, registry, events, waiters, closing, health: scheduler });
  scheduler.on('reviewTransports', (endpoints) => sessions.reviewTransports(endpoints));
  const signaling = new Signaling({ config, clock, timers, log, engine: deps.webrtcEngine, accept: (t, auth) => void sessions.accept(t, auth), closing, ...(deps.loopDelay ? { loopDelay: deps.loopDelay } : {}) });
  const dialer = new Dialer({
    clock,
    log: log.child({ module: 'dial-out' }),
    backoff: { initialMs: config.dialOut.backoffInitialMs, maxMs: config.dialOut.backoffMaxMs },
    connect: admitted(signaling, webrtcDialer({ config: config.dialOut, allow, engine: () => signaling.webrtc.start() })),
    accept: (t, auth) => void sessions.accept(t, auth),
  });
  const dialOut = new DialOut({ registry, dialer, instanceId: backend.instanceId });
  scheduler.on('endpointDead', (id) => dialOut.endpointDead(id));
  return { clock, log, backend, timers, registry, waiters, ingest, scheduler, sessions, signaling, dialOut };
}

/** Dialing out (WebRTC) takes a new endpoint in like an offer does: past the admission budget it is refused (MS_OVERLOADED), and the dialer backs off. */
function admitted<A extends unknown[], T>(signaling: Signaling, connect: (...args: A) => Promise<T>): (...args: A) => Promise<T> {
  return async (...args) => {
    signaling.admission.admit('webrtc');
    return connect(...args);
  };
}
