import type { Endpoint } from '../endpoints/endpoint.js';
import type { Stream } from '../streams/stream.js';

/**
 * The transport-pair rule, the one place it is decided. An endpoint that said in HELLO it
 * can use more than one transport, and is on its first-listed one, is asked to reconnect
 * over the next (the SDK rotates) while that path fails it (asked once: the connection closes):
 * - its path is degraded (probes, transport telemetry), whatever its role;
 * - it is active on a stream and its heartbeats died, or that stream sees it degraded
 *   (ack lag, delivery ratio, receiver-reported loss).
 * Only ever away from the first-listed transport, so it cannot ping-pong. The tick applies
 * it after health was assessed and before streams re-run their policy; the connection then
 * closes, and `failover.reconnectGraceMs` keeps an active endpoint's role while it comes
 * back over the other transport, before the stream fails over. Returns why, or undefined
 * when nothing is to be done.
 */
export function transportSwitchReasons(ep: Endpoint, streamsOf: (endpointId: string) => readonly Stream[]): string[] | undefined {
  if (!ep.canSwitchTransport) return undefined;
  if (ep.degraded) return [...ep.health().reasons];
  const active = streamsOf(ep.id).filter((s) => s.active.includes(ep.id));
  if (active.length === 0) return undefined;
  if (ep.state === 'dead') return ['heartbeat-timeout'];
  const reasons = active.flatMap((s) => {
    const health = s.cursor(ep.id)?.health;
    return health?.verdict === 'degraded' ? [...health.reasons] : [];
  });
  return reasons.length > 0 ? reasons : undefined;
}
