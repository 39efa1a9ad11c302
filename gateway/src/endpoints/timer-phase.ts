/** When a connection's heartbeats and probes come due: each at its own phase of the interval. */

/**
 * When a heartbeat or probe sent at `from` is next due: about `intervalMs` later, at the
 * connection's own `phase` of the interval (a fraction in [0, 1), fixed per connection: see
 * phaseOf), the occurrence nearest to `from + intervalMs`; once on it, exactly an interval apart.
 *
 * Intervals of 100 ms and more use 20 phases only, a grid of a twentieth of the interval, so
 * the sends of the connections that share a slot go out together in one turn of the timer
 * queue: measured with 1 000 WebRTC endpoints, sends spread one by one cost the gateway twice
 * the CPU, because every packet woke the engine's threads (and on loopback the receivers') once
 * each, and each wake-up visits every connection in the engine. A twentieth keeps each batch
 * short (its sends block the event loop while they go out).
 *
 * The phase is the connection's own, not the time it last ran: after a stall every timer due
 * runs in one turn with one `now`, and rescheduled from that they ran together ever after (a
 * late turn merged the slots it caught up on too: batches only grew). In the fan-out bench one
 * 2 s stall took 400 endpoints' heartbeat RTT p50 from 6 to 98 ms, and it stayed there.
 */
export function nextDue(from: number, intervalMs: number, phase: number): number {
  const target = from + intervalMs;
  const offset = intervalMs < 100 ? phase * intervalMs : Math.floor(phase * 20) * (intervalMs / 20);
  const past = (((target - offset) % intervalMs) + intervalMs) % intervalMs;
  return past <= intervalMs / 2 ? target - past : target - past + intervalMs;
}

/** A connection's phase of its timers' intervals, from its endpoint id (FNV-1a, then murmur3's finalizer: ids like fan0..fan199 alone fill 9 of 20 slots): spread over endpoints, the same on every run. */
export function phaseOf(endpointId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < endpointId.length; i++) h = Math.imul(h ^ endpointId.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 2 ** 32;
}
