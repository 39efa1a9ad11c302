import type { z } from 'zod';
import type { Endpoint } from '../endpoints/endpoint.js';
import type { WebTransportInfo } from '../transports/webtransport/server.js';
import type { engineFollowingSchema, gatewayReadinessSchema, gatewayStatusSchema } from './schemas.js';

/** `GET /healthz` (alive: 200 while the process serves, draining too) and `Gateway.status()`. */
export type GatewayStatus = z.output<typeof gatewayStatusSchema>;

/** A shared engine (JetStream): its subscriptions not following now, and how many were recreated since start. */
export type EngineFollowing = z.output<typeof engineFollowingSchema>;

export function gatewayStatus(s: {
  closing: boolean;
  instanceId: string;
  webtransport: WebTransportInfo | undefined;
  streams: number;
  endpoints: Iterable<Endpoint>;
  uptimeMs: number;
  followers: { readonly stale: readonly string[]; readonly restarts: number } | undefined;
}): GatewayStatus {
  let endpoints = 0;
  let connected = 0;
  for (const ep of s.endpoints) {
    endpoints++;
    if (ep.link) connected++;
  }
  const wt = s.webtransport;
  return {
    status: s.closing ? 'draining' : 'ok',
    instance_id: s.instanceId,
    webtransport: wt ? { backend: wt.backend, url: wt.url } : null,
    streams: s.streams,
    endpoints,
    connected_endpoints: connected,
    uptime_s: Math.round(s.uptimeMs / 1000),
    ...(s.followers ? { engine: { stale_followers: [...s.followers.stale], subscription_restarts: s.followers.restarts } } : {}),
  };
}

/**
 * `GET /readyz`: whether a load balancer should send new receivers and publishers here.
 * `starting`: the CLI's warm-up session is still running; `draining`: the gateway is shutting
 * down (SIGTERM); `log_unavailable`: its stream log cannot store what comes in (NATS down, no
 * JetStream leader, not started yet); `not_following`: its subscription to a stream's log or
 * control is being recreated, so what it delivers or decides for that stream may be stale
 * (`stale` names them; every stale follower, shared views too, is in `/healthz`'s `engine`);
 * `overloaded`: past its admission budget (signaling/admission.ts), it refuses new endpoints
 * and serves the ones it has.
 */
export type GatewayReadiness = z.output<typeof gatewayReadinessSchema>;
