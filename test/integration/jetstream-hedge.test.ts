import { afterEach, describe, expect, it } from 'vitest';
import { frontierStall } from '../../bench/stats.js';
import { parseConfig } from '../../gateway/src/index.js';
import { api, killAll, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { startNats, type NatsServer } from '../helpers/nats.js';
import { until, withDeadline } from '../helpers/poll.js';
import { monoMs, SchedulingDelay } from '../helpers/sched.js';
import { spawnReceiverWithToken, type ChildReceiver } from '../helpers/webrtc-scenario.js';

/**
 * Hedged delivery with the JetStream log and two gateway instances (the built CLI): the
 * active receiver is connected to the instance that does *not* own the stream, and is
 * stopped (SIGSTOP) for 2 s. Its silence is measured there, shared, decided by the owner,
 * and the hedge runs on the instance the standby is connected to, from the shared log.
 */
interface StreamHealth {
  switches: { from: string | null; to: string | null; reason: string; detail?: string[] }[];
  hedges: { started: number; ended: number; committed: number };
  active: string[];
}

describe('hedged delivery across two instances on JetStream', () => {
  let nats: NatsServer | undefined;
  const rx: ChildReceiver[] = [];
  afterEach(async () => {
    for (const r of rx.splice(0)) r.proc.kill('SIGKILL');
    await killAll();
    await nats?.close();
    nats = undefined;
  });

  it('the active receiver (on the non-owner) is stopped for 2 s: a standby on the owner is hedged and committed; every acked chunk delivered, in order per receiver', async () => {
    nats = await startNats();
    const a = await startGateway(0, ['--nats', nats.url]);
    const b = await startGateway(0, ['--nats', nats.url]);
    const instanceOf = new Map<string, GatewayProcess>();
    for (const g of [a, b]) instanceOf.set(((await api(g.url, 'GET', '/healthz')) as { instance_id: string }).instance_id, g);
    await api(a.url, 'POST', '/v1/streams', { stream_id: 's', endpoint_list: ['e1', 'e2', 'e3'] });
    let ownerId: string | null = null;
    await until(async () => (ownerId = ((await api(a.url, 'GET', '/v1/streams/s')) as { owner: string | null }).owner) !== null, 10_000, 'an owner');
    const owner = instanceOf.get(ownerId ?? '') ?? a;
    const other = owner === a ? b : a;
    // e1 (first priority) on the instance without the lease, the standbys on the owner
    for (const [id, g] of [['e1', other], ['e2', owner], ['e3', owner]] as const) {
      const { token } = (await api(g.url, 'POST', `/v1/endpoints/${id}/token`, {})) as { token: string };
      rx.push(spawnReceiverWithToken(g.url, id, token));
    }
    await Promise.all(rx.map((r) => r.ready));
    await until(async () => ((await api(owner.url, 'GET', '/v1/streams/s')) as { active: string[] }).active.join() === 'e1', 10_000, 'e1 active');

    const acked = new Set<number>();
    let stopAt = 0;
    const sched = SchedulingDelay.start();
    const startMono = monoMs();
    for (let n = 0; n < 300; n++) {
      const t = performance.now();
      const r = (await api(owner.url, 'POST', '/v1/streams/s/chunks', { chunks: Array.from({ length: 5 }, (_, i) => ({ payload: `b${n}-${i}` })) })) as { first_seq: number; last_seq: number };
      for (let seq = r.first_seq; seq <= r.last_seq; seq++) acked.add(seq);
      if (n === 100) {
        rx[0]?.proc.kill('SIGSTOP');
        stopAt = monoMs();
        setTimeout(() => rx[0]?.proc.kill('SIGCONT'), 2_000);
      }
      const wait = t + 10 - performance.now(); // 500 chunks/s
      if (wait > 1) await new Promise((res) => setTimeout(res, wait));
    }
    const union = (): Set<number> => new Set(rx.flatMap((r) => r.chunks.map((c) => c.seq)));
    await until(() => union().size >= acked.size, 15_000, 'every acked chunk delivered', { state: () => `${union().size} of ${acked.size}` });
    sched.stop();
    // the stopped receiver's own report of its stop is the fault, not the machine's delay
    for (const l of rx.slice(1).flatMap((r) => r.lags)) if (l.at >= startMono) sched.note(l.ms, l.at);
    const health = (await api(owner.url, 'GET', '/v1/streams/s/health')) as StreamHealth;
    const stall = frontierStall(Object.fromEntries(rx.map((r) => [r.id, r.chunks])), stopAt);
    // the non-owner finds e1 silent (a carrier probe interval plus the floor), on a tick; then the
    // shared state: its board record, the owner's decision in the control log, the hedge to e2.
    // k: the processes on that path (non-owner, nats-server, owner, nats-server, owner, e2), each may run late
    const { health: h, tickMs } = parseConfig();
    const bound = sched.bound(h.carrierProbeIntervalMs + h.silenceFloorMs + tickMs, 6);
    console.log(`[jetstream hedge] e1 stopped on the non-owner: switches ${health.switches.map((s) => `${s.from}->${s.to}:${s.reason}`).join(', ')}; hedges ${JSON.stringify(health.hedges)}; frontier stall ${stall.toFixed(0)} ms (${bound.text})`);
    expect([...union()].sort((x, y) => x - y)).toEqual([...acked].sort((x, y) => x - y));
    for (const r of rx) {
      const seqs = r.chunks.map((c) => c.seq);
      expect(seqs.every((s, i) => i === 0 || s > (seqs[i - 1] ?? 0)), `${r.id} strictly increasing`).toBe(true);
    }
    expect(health.hedges.started).toBeGreaterThanOrEqual(1);
    expect(health.switches.map((s) => [s.from, s.to, s.reason])).toContainEqual(['e1', 'e2', 'hedge-commit']);
    // the same figure hedging off is ~0.5 s (the heartbeat detector) plus the shared-state hop
    expect(stall).toBeLessThan(bound.ms);
    for (const r of rx) await withDeadline(Promise.resolve(r.proc.kill('SIGKILL')), 1_000, 'kill');
  }, 90_000);
});
