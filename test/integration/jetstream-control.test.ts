import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock, RealClock } from '../../receiver-sdk/src/protocol/index.js';
import { JetStreamControl } from '../../gateway/src/storage/jetstream/control.js';
import { Followers } from '../../gateway/src/storage/jetstream/follower.js';
import { JetStreamPublisher } from '../../gateway/src/storage/jetstream/publisher.js';
import type { JetStreamContext } from '../../gateway/src/storage/jetstream/jetstream-log.js';
import { natsNames } from '../../gateway/src/storage/jetstream/names.js';
import type { RoleDecision } from '../../gateway/src/streams/types.js';
import { settle } from '../helpers/memory-harness.js';
import { startNats, type NatsServer } from '../helpers/nats.js';
import { until } from '../helpers/poll.js';

/**
 * The lease of a stream's control on a real nats-server: one owner at a time, decisions
 * in one order on every instance, and fencing: an owner whose lease was claimed by another
 * (its clock says it still holds it: a pause, a skew) cannot store a decision after the
 * claim. Each instance has its own ManualClock; NATS round trips are real (bounded waits).
 */
const TIMING = { leaseMs: 2_000, marginMs: 250 };
const decision = (active: string): RoleDecision => ({ active: [active], promoted: [], demoted: [] });

describe('stream control lease and fencing (JetStream)', () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let ctx: JetStreamContext;
  beforeAll(async () => {
    nats = await startNats();
    nc = await connect({ servers: nats.url });
    // leases run on each instance's ManualClock; the subscriptions' supervision on real time
    const log = pino({ level: 'silent' });
    const clock = new RealClock();
    ctx = { js: jetstream(nc), followJs: jetstream(nc, { timeout: 1_000 }), jsm: await jetstreamManager(nc), names: natsNames('ctl'), replicas: 1, idempotencyWindowMs: 60_000, log, clock, followers: new Followers(clock, log), publisher: new JetStreamPublisher(nc, clock, { timeoutMs: 5_000 }) };
  });
  afterAll(async () => {
    ctx?.followers.closeAll();
    await nc?.close();
    await nats?.close();
  });

  it('one owner; its decisions reach every instance in order; a claimed-over owner is fenced; a released lease is taken at once', async () => {
    const clockA = new ManualClock();
    const clockB = new ManualClock();
    const a = await JetStreamControl.open(ctx, 's1', 'A', clockA, TIMING);
    await until(() => a.isOwner(), 5_000, 'A claims the free lease');
    const b = await JetStreamControl.open(ctx, 's1', 'B', clockB, TIMING);
    await until(() => b.owner === 'A', 5_000, 'B sees A holding the lease');
    expect(b.isOwner()).toBe(false);
    const seenA: string[] = [];
    const seenB: string[] = [];
    a.onDecision((d) => seenA.push(d.active.join()));
    b.onDecision((d) => seenB.push(d.active.join()));

    await a.publish(decision('e1'));
    await a.publish(decision('e2'));
    await until(() => seenB.length === 2, 5_000, 'B applies A’s decisions');
    expect(seenA).toEqual(['e1', 'e2']);
    expect(seenB).toEqual(['e1', 'e2']);
    await expect(b.publish(decision('x'))).rejects.toMatchObject({ code: 'MS_LOG_UNAVAILABLE' });

    // B's clock runs past A's lease (A stalled, or the clocks disagree): B claims it
    clockB.advance(TIMING.leaseMs + TIMING.marginMs + 600);
    await until(() => b.isOwner(), 5_000, 'B claims the expired lease');
    // A's own clock still says it holds the lease: its decision must not be stored anyway
    await expect(a.publish(decision('stale'))).rejects.toBeDefined();
    await until(() => a.owner === 'B', 5_000, 'A sees B holding the lease');
    expect(a.isOwner()).toBe(false);
    await b.publish(decision('e3'));
    await until(() => seenA.length === 3 && seenB.length === 3, 5_000, 'both apply B’s decision');
    expect(seenA).toEqual(['e1', 'e2', 'e3']);
    expect(seenB).toEqual(['e1', 'e2', 'e3']);

    // a closing owner hands the lease back: A claims it as soon as it sees that, neither
    // waiting the lease out nor for its next round (its clock does not move from here on)
    clockA.advance(1_000);
    expect(a.isOwner()).toBe(false);
    await b.close();
    await until(() => a.isOwner(), 5_000, 'A claims the released lease at once');
    await a.close();
    await JetStreamControl.destroy(ctx, 's1');
  }, 30_000);

  it('two instances claiming a free lease at the same moment: exactly one gets it', async () => {
    const [ca, cb] = [new ManualClock(), new ManualClock()];
    const [a, b] = await Promise.all([JetStreamControl.open(ctx, 's2', 'A', ca, TIMING), JetStreamControl.open(ctx, 's2', 'B', cb, TIMING)]);
    await until(() => a.owner !== undefined && a.owner === b.owner, 5_000, 'both see one owner');
    expect([a.isOwner(), b.isOwner()].filter(Boolean)).toHaveLength(1);
    await Promise.all([a.close(), b.close()]);
    await JetStreamControl.destroy(ctx, 's2');
  }, 30_000);

  it('a holder that presence calls gone is taken over at once; one that cannot decide stops at once and hands its lease back after half a lease, not on a blip', async () => {
    const [ca, cb] = [new ManualClock(), new ManualClock()];
    const gone = new Set<string>();
    let bAble = true;
    const a = await JetStreamControl.open(ctx, 's3', 'A', ca, TIMING, () => true, (i) => gone.has(i));
    await until(() => a.isOwner(), 5_000, 'A claims the free lease');
    const b = await JetStreamControl.open(ctx, 's3', 'B', cb, TIMING, () => bAble, (i) => gone.has(i));
    await until(() => b.owner === 'A', 5_000, 'B sees A holding the lease');
    // A is gone by presence: B claims now, its clock standing still, A's lease far from its end
    gone.add('A');
    b.recheck();
    await until(() => b.isOwner(), 5_000, 'B claims the lease of a gone holder at once');
    await expect(a.publish(decision('fenced'))).rejects.toBeDefined();
    gone.delete('A');
    await until(() => a.owner === 'B', 5_000, 'A sees B holding the lease');

    // B cannot follow the engine for a moment: it stops deciding at once but keeps its lease
    bAble = false;
    b.recheck();
    expect(b.isOwner()).toBe(false);
    const control = ctx.names.controlStream('s3');
    const entries = async (): Promise<number> => (await ctx.jsm.streams.info(control)).state.last_seq;
    const before = await entries();
    cb.advance(TIMING.leaseMs / 4);
    // a barrier, not a pause: B's round has run (settle), and whatever it appended went out on
    // this connection ahead of a flush, so the server has it before the count below
    await settle();
    await nc.flush();
    expect(await entries()).toBe(before);
    expect(a.owner).toBe('B');
    // still unable after half a lease: it hands the lease back, and A claims it at once
    cb.advance(TIMING.leaseMs / 4);
    await until(() => a.isOwner(), 5_000, 'A claims the lease B handed back');
    bAble = true;
    await Promise.all([a.close(), b.close()]);
    await JetStreamControl.destroy(ctx, 's3');
  }, 30_000);
});
