import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../gateway/src/index.js';
import { api, kill, killAll, startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { deliveryProblems, longestSilence, Producer, ReceiverSet, STREAM } from '../helpers/ha-scenario.js';
import { LISTENER_TOKEN } from '../helpers/webrtc-scenario.js';
import { freePort, startNats, type NatsServer } from '../helpers/nats.js';
import { until, withDeadline } from '../helpers/poll.js';
import { SchedulingDelay } from '../helpers/sched.js';

/** The instances run with the defaults (the CLI gets no timing flags here). */
const CONFIG = parseConfig();
/** ha-scenario's Producer: a batch every 20 ms; a failed one posted again to the other instance 50 ms later. */
const PRODUCER_BATCH_MS = 20;
const PRODUCER_RETRY_MS = 50;
/** Processes a chunk (or its ack) crosses: producer, gateway, nats-server, gateway, receiver; each may run late. */
const HOPS = 5;

/**
 * Two gateway instances (the built CLI, child processes) on one nats-server; one failover
 * stream over three receivers (Node SDK, WebRTC). A producer posts 500 chunks/s (10 every
 * 20 ms) with an Idempotency-Key, and retries a failed batch on the other instance. One
 * instance is SIGKILLed mid-stream; the union of what the receivers delivered must be
 * exactly the seqs acked to the producer, each receiver's seqs strictly increasing, and
 * no payload at two seqs (a retry appended nothing twice). The producer, the receivers and
 * the delivery checks are test/helpers/ha-scenario.ts's (the 3-node HA scenario uses them too).
 */
describe('two gateway instances on one NATS', () => {
  let nats: NatsServer | undefined;
  let rxs = new ReceiverSet();
  afterEach(async () => {
    await rxs.closeAll();
    rxs = new ReceiverSet();
    await killAll();
    await nats?.close();
    nats = undefined;
  });

  /** Both instances up, the stream created, and the instance holding its lease known. */
  async function twoInstances(): Promise<{ owner: GatewayProcess; other: GatewayProcess; ids: Map<GatewayProcess, string> }> {
    nats = await startNats();
    const a = await startGateway(0, ['--nats', nats.url]);
    const b = await startGateway(0, ['--nats', nats.url]);
    const ids = new Map<GatewayProcess, string>();
    for (const g of [a, b]) ids.set(g, ((await api(g.url, 'GET', '/healthz')) as { instance_id: string }).instance_id);
    await api(a.url, 'POST', '/v1/streams', STREAM);
    let owner: string | null = null;
    await until(
      async () => {
        const seen = await Promise.all([a, b].map(async (g) => ((await api(g.url, 'GET', '/v1/streams/s').catch(() => ({ owner: null }))) as { owner: string | null }).owner));
        owner = seen[0] === seen[1] ? (seen[0] ?? null) : null;
        return owner !== null;
      },
      10_000,
      'both instances name the same owner',
    );
    return owner === ids.get(a) ? { owner: a, other: b, ids } : { owner: b, other: a, ids };
  }

  async function activeOn(g: GatewayProcess): Promise<string[]> {
    return ((await api(g.url, 'GET', '/v1/streams/s')) as { active: string[] }).active;
  }

  /** Every acked seq delivered (and nothing else), strictly increasing per receiver, no payload twice. */
  function checkDelivery(producer: Producer): void {
    expect(deliveryProblems(producer.acked, rxs.deliveries, rxs.perReceiver)).toEqual([]);
  }

  for (const holder of ['owner', 'other'] as const) {
    it(`SIGKILL the instance holding the active connection (${holder === 'owner' ? 'and the lease' : 'not the lease'}): the other fails over, the receivers get every acked chunk`, async () => {
      const pair = await twoInstances();
      const a = holder === 'owner' ? pair.owner : pair.other;
      const b = holder === 'owner' ? pair.other : pair.owner;
      const { deliveries } = rxs;
      // e1 (first priority) only knows A, so when A dies the stream must move on to e2 or e3 on B
      await rxs.connect('e1', [a.url]);
      await rxs.connect('e2', [b.url, a.url]);
      await rxs.connect('e3', [b.url, a.url]);
      await until(async () => (await activeOn(a)).join() === 'e1' && (await activeOn(b)).join() === 'e1', 10_000, 'e1 active on both instances');

      const producer = new Producer([a.url, b.url]);
      producer.start();
      await until(() => producer.acked.size >= 500, 10_000, '500 chunks acked before the kill');
      await until(() => deliveries.length >= 400, 10_000, 'e1 delivering');
      const sched = SchedulingDelay.start();
      const killedAt = performance.now();
      const ackedBeforeKill = producer.acked.size;
      await kill(a);
      await until(async () => ['e2', 'e3'].includes((await activeOn(b))[0] ?? ''), 15_000, 'B made e2 or e3 active');
      const promotedAt = performance.now();
      await until(() => producer.acked.size >= ackedBeforeKill + 1000, 20_000, '1000 more chunks acked after the kill');
      await producer.stop();
      await until(() => new Set(deliveries.map((d) => d.seq)).size >= producer.acked.size, 15_000, 'every acked chunk delivered');

      sched.stop();
      checkDelivery(producer);
      // the batch in flight on the killed instance fails at once (its socket is reset): posted
      // again to the other after the producer's pause, one batch late at most
      const producerStall = producer.stallAfter(killedAt);
      const stallBound = sched.bound(PRODUCER_RETRY_MS + 2 * PRODUCER_BATCH_MS, HOPS);
      console.log(
        `[multi-instance, killed active holder${holder === 'owner' ? ' + owner' : ''}] ${producer.acked.size} chunks acked (${ackedBeforeKill} before the kill), ` +
          `all delivered once per receiver in order; kill → ${(await activeOn(b)).join()} active on B ${Math.round(promotedAt - killedAt)} ms; ` +
          `longest delivery interruption ${Math.round(longestSilence(deliveries, killedAt))} ms; producer stall ${Math.round(producerStall)} ms (${stallBound.text}), ${producer.retries} retries`,
      );
      expect(producer.retries).toBeGreaterThanOrEqual(1);
      expect(producerStall).toBeLessThan(stallBound.ms);
    }, 90_000);
  }

  it('SIGKILL the owner while the other instance holds the active connection: delivery goes on, the other takes the lease and decides', async () => {
    const { owner, other, ids } = await twoInstances();
    const { deliveries, perReceiver } = rxs;
    const e1 = await rxs.connect('e1', [other.url]);
    await rxs.connect('e2', [owner.url, other.url]);
    await rxs.connect('e3', [owner.url, other.url]);
    await until(async () => (await activeOn(other)).join() === 'e1', 10_000, 'e1 active');

    const producer = new Producer([other.url]);
    producer.start();
    await until(() => deliveries.length >= 500, 10_000, 'e1 delivering');
    const sched = SchedulingDelay.start();
    const killedAt = performance.now();
    await kill(owner);
    const otherId = ids.get(other);
    await until(async () => ((await api(other.url, 'GET', '/v1/streams/s')) as { owner: string | null }).owner === otherId, 15_000, 'the other instance took the lease');
    const takeover = performance.now() - killedAt;
    const e1Count = (): number => perReceiver.get('e1')!.length;
    const e1AtTakeover = e1Count();
    await until(() => e1Count() >= e1AtTakeover + 250, 10_000, 'e1 still delivering');
    const silence = longestSilence(deliveries, killedAt);
    sched.stop();
    // the new owner decides: e1 goes away, e2 (reconnected to the other instance) takes over
    const closedAt = performance.now();
    e1.close();
    await until(async () => (await activeOn(other)).join() === 'e2', 15_000, 'the new owner failed over to e2');
    const failover = performance.now() - closedAt;
    await until(() => perReceiver.get('e2')!.length >= 100, 10_000, 'e2 delivering');
    await producer.stop();
    await until(() => new Set(deliveries.map((d) => d.seq)).size >= producer.acked.size, 15_000, 'every acked chunk delivered');

    checkDelivery(producer);
    // e1's instance and the producer's are alive: delivery waits on nothing the dead owner did,
    // only on the batch cadence (an owner needed for delivery would stall it for presence.goneMs and more)
    const silenceBound = sched.bound(2 * PRODUCER_BATCH_MS, HOPS);
    console.log(
      `[multi-instance, killed owner] ${producer.acked.size} chunks acked, all delivered; longest delivery interruption after the kill ${Math.round(silence)} ms (${silenceBound.text}); ` +
        `lease taken over ${Math.round(takeover)} ms after the kill (leaseMs ${CONFIG.log.nats.leaseMs}); then e1 closed → e2 active ${Math.round(failover)} ms`,
    );
    expect(silence).toBeLessThan(silenceBound.ms);
  }, 90_000);

  it('listening receivers: only the owner dials them; SIGKILL it and the other instance dials them, every acked chunk delivered', async () => {
    nats = await startNats();
    const a = await startGateway(0, ['--nats', nats.url]);
    const b = await startGateway(0, ['--nats', nats.url]);
    const ids = new Map<GatewayProcess, string>();
    for (const g of [a, b]) ids.set(g, ((await api(g.url, 'GET', '/healthz')) as { instance_id: string }).instance_id);
    const { deliveries, perReceiver } = rxs;
    const entries = [];
    for (const id of ['e1', 'e2', 'e3']) entries.push({ endpoint_id: id, url: await rxs.listen(id), token: LISTENER_TOKEN });
    await api(a.url, 'POST', '/v1/streams', { ...STREAM, endpoint_list: entries });
    type Info = { owner: string | null; active: string[]; endpoint_list: { endpoint_id: string; dial: { state: string; dialed_by: string | null } }[] };
    const info = async (g: GatewayProcess): Promise<Info> => (await api(g.url, 'GET', '/v1/streams/s')) as Info;
    // the other instance may not have adopted the stream yet (404 meanwhile)
    const activeHere = async (g: GatewayProcess): Promise<string> => (await info(g).catch(() => undefined))?.active.join() ?? 'not there yet';
    await until(async () => (await activeHere(a)) === 'e1' && (await activeHere(b)) === 'e1', 15_000, 'e1 active on both instances');
    const owner = (await info(a)).owner === ids.get(a) ? a : b;
    const other = owner === a ? b : a;
    // exactly one instance dials: the owner (once the standbys are connected too) says connected, the other says elsewhere (naming the owner)
    await until(async () => (await info(owner)).endpoint_list.every((e) => e.dial.state === 'connected'), 15_000, 'every listener connected to the owner');
    for (const e of (await info(owner)).endpoint_list) expect(e.dial).toMatchObject({ state: 'connected', dialed_by: ids.get(owner) });
    for (const e of (await info(other)).endpoint_list) expect(e.dial).toMatchObject({ state: 'elsewhere', dialed_by: ids.get(owner) });

    const producer = new Producer([other.url, owner.url]);
    producer.start();
    await until(() => deliveries.length >= 500, 10_000, 'e1 delivering');
    const killedAt = performance.now();
    const ackedBeforeKill = producer.acked.size;
    await kill(owner);
    await until(async () => (await info(other)).owner === ids.get(other), 20_000, 'the other instance took the lease');
    const leaseMs = performance.now() - killedAt;
    let seen: Info['endpoint_list'] = [];
    await until(
      async () => (seen = (await info(other)).endpoint_list).every((e) => e.dial.state === 'connected' && e.dial.dialed_by === ids.get(other)),
      20_000,
      'the other instance dialed every listener',
      { state: () => seen.map((e) => `${e.endpoint_id} ${e.dial.state}`) },
    );
    const dialedMs = performance.now() - killedAt;
    await until(() => producer.acked.size >= ackedBeforeKill + 1_000, 20_000, '1000 more chunks acked after the kill');
    await producer.stop();
    await until(() => new Set(deliveries.map((d) => d.seq)).size >= producer.acked.size, 20_000, 'every acked chunk delivered', {
      state: () => `${new Set(deliveries.map((d) => d.seq)).size} of ${producer.acked.size}`,
    });
    checkDelivery(producer);
    console.log(
      `[multi-instance, listening receivers] killed the dialing owner: lease taken ${Math.round(leaseMs)} ms after the kill (leaseMs ${CONFIG.log.nats.leaseMs}), every listener dialed by the other instance ${Math.round(dialedMs)} ms after it; ` +
        `${producer.acked.size} chunks acked, all delivered once per receiver in order (${[...perReceiver].map(([id, seqs]) => `${id}: ${seqs.length}`).join(', ')}); longest delivery interruption ${Math.round(longestSilence(deliveries, killedAt))} ms`,
    );
  }, 120_000);

  it('rolling restart: SIGTERM A, wait for its exit, start it again, then the same for B: every acked chunk delivered, none twice per receiver', async () => {
    nats = await startNats();
    // fixed ports: a restarted instance comes back at the URL the receivers and the producer know
    const ports = [await freePort(), await freePort()];
    const args = ['--nats', nats.url];
    const instances = [await startGateway(ports[0]!, args), await startGateway(ports[1]!, args)];
    const urls = instances.map((g) => g.url);
    await api(urls[0]!, 'POST', '/v1/streams', STREAM);
    const { deliveries, statuses } = rxs;
    const receivers = [await rxs.connect('e1', [urls[0]!, urls[1]!]), await rxs.connect('e2', [urls[1]!, urls[0]!]), await rxs.connect('e3', [urls[0]!, urls[1]!])];
    await until(async () => (await activeOn(instances[0]!)).join() === 'e1', 10_000, 'e1 active');
    const producer = new Producer([...urls]);
    producer.start();
    await until(() => producer.acked.size >= 500, 10_000, '500 chunks acked before the first restart');
    const steps: string[] = [];
    const heldAtRestart = new Set<string>();
    for (const i of [0, 1]) {
      const g = instances[i]!;
      const at = performance.now();
      const before = producer.acked.size;
      // the receivers this instance holds now: a receiver's first dial can land on the other
      // instance (a first WebRTC dial that fails moves on to the next URL), so it is looked up
      const held = receivers.filter((r) => r.gatewayUrl === g.url).map((r) => r.endpointId);
      for (const id of held) heldAtRestart.add(id);
      const goaways = (): Map<string, number> => {
        const n = new Map<string, number>();
        for (const s of statuses) if (s.includes('gateway going away')) n.set(s.split(' ')[0]!, (n.get(s.split(' ')[0]!) ?? 0) + 1);
        return n;
      };
      const goawaysBefore = goaways();
      const exitCode = new Promise<number | null>((r) => g.proc.once('exit', (code) => r(code)));
      g.proc.kill('SIGTERM');
      // a drain, not a crash: exit code 0, and every receiver it held was sent on (GOAWAY), not left to time out
      expect(await withDeadline(exitCode, 15_000, `instance ${i} exits on SIGTERM`)).toBe(0);
      const exitedMs = performance.now() - at;
      // the GOAWAY was sent before the exit; the receivers' status event may come a moment after we see the exit
      await until(() => held.every((id) => (goaways().get(id) ?? 0) > (goawaysBefore.get(id) ?? 0)), 5_000, `GOAWAY from instance ${i} to ${held.join(', ') || 'nobody'}`, { state: () => statuses.slice(-5) });
      instances[i] = await startGateway(ports[i]!, args);
      await until(() => producer.acked.size >= before + 1_000, 20_000, `1000 chunks acked after restarting instance ${i}`);
      steps.push(`${'AB'[i]}: held ${held.join(', ') || 'no receiver'}, exit ${Math.round(exitedMs)} ms after SIGTERM, longest delivery interruption ${Math.round(longestSilence(deliveries, at))} ms`);
    }
    await producer.stop();
    await until(() => new Set(deliveries.map((d) => d.seq)).size >= producer.acked.size, 15_000, 'every acked chunk delivered');
    checkDelivery(producer);
    // every receiver was held by an instance when it restarted (and so got its GOAWAY)
    expect([...heldAtRestart].sort()).toEqual(['e1', 'e2', 'e3']);
    console.log(`[multi-instance, rolling restart] ${producer.acked.size} chunks acked (${producer.retries} producer retries), all delivered once per receiver in order; ${steps.join('; ')}`);
  }, 120_000);
});
