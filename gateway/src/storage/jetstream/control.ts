import type { Clock, TimerHandle } from '@mirrorstream/receiver/protocol';
import { DiscardPolicy, StorageType, type JsMsg } from '@nats-io/jetstream';
import type { RoleDecision, StreamControl } from '../../streams/types.js';
import { apiErrorCode, logUnavailable, STREAM_NOT_FOUND } from './errors.js';
import { followStream } from './follow-stream.js';
import type { Follower } from './follower.js';
import type { JetStreamContext } from './jetstream-log.js';
import { parseControlMessage, type ControlMessage } from './records.js';

/** How long a lease lasts without renewal, and how the holder and the others keep clear of its edge. */
export interface LeaseTiming {
  leaseMs: number;
  /** The holder stops deciding this long before its lease ends; others claim this long after. */
  marginMs: number;
}

/**
 * The fenced control log of one stream: a JetStream stream of its own that every
 * instance follows. Lease claims, renewals and role decisions are appended with the
 * stream-level expected last sequence (it holds against concurrent writers, also on
 * nats-server 2.9 at R3), so appends are linearized: an instance appends only when it saw
 * everything before, and a holder whose lease was taken over cannot append a decision
 * after the claim. The owner is whoever appended the last lease that has not expired;
 * every instance applies the decisions in log order. An instance that cannot follow the
 * engine (`canDecide` false: this log, the stream's log or the endpoint board is being
 * resubscribed; it does not hear itself on NATS) does not decide, and hands its lease back
 * once that has lasted half a lease, so another instance decides.
 */
export class JetStreamControl implements StreamControl {
  readonly #ctx: JetStreamContext;
  readonly #streamId: string;
  readonly #name: string;
  readonly #subject: string;
  readonly #me: string;
  readonly #clock: Clock;
  readonly #t: LeaseTiming;
  readonly #listeners: ((d: RoleDecision) => void)[] = [];
  readonly #ownerListeners: (() => void)[] = [];
  /** The last lease in the log. */
  #lease: { by: string; until: number } | undefined;
  /** The last seq this instance knows of (seen, or appended itself): what the next append expects. */
  #lastSeq = 0;
  /** The last seq taken in (the follower resumes after it). */
  #seen = 0;
  #timer: TimerHandle | undefined;
  #follower: Follower<JsMsg> | undefined;
  #closed = false;
  #appending = false;
  readonly #canDecide: () => boolean;
  readonly #holderGone: (instance: string) => boolean;
  /** Since when this instance cannot decide (undefined: it can). */
  #unableSince: number | undefined;
  /** isOwner() as last told to the owner listeners. */
  #wasOwner = false;

  private constructor(ctx: JetStreamContext, streamId: string, me: string, clock: Clock, timing: LeaseTiming, canDecide: () => boolean, holderGone: (instance: string) => boolean) {
    this.#ctx = ctx;
    this.#canDecide = canDecide;
    this.#holderGone = holderGone;
    this.#streamId = streamId;
    this.#name = ctx.names.controlStream(streamId);
    this.#subject = ctx.names.controlSubject(streamId);
    this.#me = me;
    this.#clock = clock;
    this.#t = timing;
  }

  /** A control append is answered within this long or given up (a quarter lease, at least 100 ms). */
  get #appendTimeoutMs(): number {
    return Math.max(100, Math.floor(this.#t.leaseMs / 4));
  }

  /**
   * `canDecide`: this instance may decide now (it follows the engine, it hears itself);
   * `holderGone`: the instance holding the lease is known dead (presence): its lease is claimed
   * at once instead of when it runs out. It stopped deciding before (see PresenceTiming.selfMs),
   * and the claim fences whatever it might still append.
   */
  static async open(
    ctx: JetStreamContext,
    streamId: string,
    me: string,
    clock: Clock,
    timing: LeaseTiming,
    canDecide: () => boolean = () => true,
    holderGone: (instance: string) => boolean = () => false,
  ): Promise<JetStreamControl> {
    const control = new JetStreamControl(ctx, streamId, me, clock, timing, canDecide, holderGone);
    try {
      await ctx.jsm.streams.info(control.#name).catch(async (error: unknown) => {
        if (apiErrorCode(error) !== STREAM_NOT_FOUND) throw error;
        await ctx.jsm.streams.add({ name: control.#name, subjects: [control.#subject], max_msgs: 64, discard: DiscardPolicy.Old, storage: StorageType.File, num_replicas: ctx.replicas });
      });
      await control.#follow();
    } catch (error) {
      throw logUnavailable(`opening the control of ${streamId}`, error);
    }
    control.#timer = clock.setInterval(() => void control.#tend(), Math.max(50, Math.floor(timing.leaseMs / 4)));
    void control.#tend();
    return control;
  }

  /** The control stream of a deleted stream goes too. */
  static async destroy(ctx: JetStreamContext, streamId: string): Promise<void> {
    await ctx.jsm.streams.delete(ctx.names.controlStream(streamId)).catch((error: unknown) => {
      if (apiErrorCode(error) !== STREAM_NOT_FOUND) throw logUnavailable(`deleting the control of ${streamId}`, error);
    });
  }

  isOwner(): boolean {
    return this.#holds() && this.#follower?.following === true && this.#canDecide();
  }

  /** Our lease, not near its end. */
  #holds(): boolean {
    return this.#lease?.by === this.#me && this.#clock.now() < this.#lease.until - this.#t.marginMs;
  }

  /** Whether this instance can decide changed (a follower stopped or resumed): tell the stream, hand the lease back or claim. */
  recheck(): void {
    this.#ownerChanged();
    void this.#tend();
  }

  get owner(): string | undefined {
    const l = this.#lease;
    return l && this.#clock.now() < l.until ? l.by : undefined;
  }

  async publish(decision: RoleDecision): Promise<void> {
    if (!this.isOwner()) throw logUnavailable('deciding roles', new Error('this instance does not hold the lease'));
    await this.#append({ k: 'roles', by: this.#me, d: decision });
  }

  onDecision(listener: (decision: RoleDecision) => void): void {
    this.#listeners.push(listener);
  }

  onOwnerChange(listener: () => void): void {
    this.#ownerListeners.push(listener);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Stop following; an owner releases its lease (best effort: it expires anyway). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#clock.clearInterval(this.#timer);
    if (this.#holds()) await this.#append({ k: 'lease', by: this.#me, until: 0 }).catch(() => undefined);
    if (this.#follower) this.#ctx.followers.drop(this.#follower);
  }

  /** Renew our lease in time, or claim one that expired. */
  async #tend(): Promise<void> {
    if (this.#closed || this.#appending) return;
    const now = this.#clock.now();
    const l = this.#lease;
    const mine = this.#holds();
    const able = this.#follower?.following === true && this.#canDecide();
    if (!able) {
      // it does not decide (isOwner) nor renew; one that stays unable hands its lease back, so
      // another instance decides before the lease runs out (a short blip moves nothing)
      this.#unableSince ??= now;
      if (mine && now - this.#unableSince >= this.#t.leaseMs / 2) await this.#append({ k: 'lease', by: this.#me, until: 0 }).catch(() => undefined);
      return;
    }
    this.#unableSince = undefined;
    const free = !l || now > l.until + this.#t.marginMs || (l.by !== this.#me && l.until > 0 && this.#holderGone(l.by));
    if (!mine && !free) return;
    // renew once a quarter of the lease has passed; claim at once
    if (mine && l && l.until - now > (this.#t.leaseMs * 3) / 4) return;
    try {
      await this.#append({ k: 'lease', by: this.#me, until: now + this.#t.leaseMs });
    } catch {
      // someone appended first (or NATS is away): the follower tells us what happened
    }
  }

  async #append(m: ControlMessage): Promise<void> {
    this.#appending = true;
    try {
      // answered within a quarter lease or given up (the next round tries again): a request
      // handed to nats.js while it reconnects is dropped unseen, and one waiting out the full
      // request timeout would let our own lease run out meanwhile
      const ack = await this.#ctx.js.publish(this.#subject, JSON.stringify(m), { expect: { lastSequence: this.#lastSeq }, timeout: this.#appendTimeoutMs });
      this.#lastSeq = Math.max(this.#lastSeq, ack.seq);
      this.#see(ack.seq, m);
    } finally {
      this.#appending = false;
    }
  }

  /** Follow the control log from its start (it keeps the last 64 entries), supervised. */
  async #follow(): Promise<void> {
    const follower = this.#ctx.followers.follow<JsMsg>({
      name: `control:${this.#streamId}`,
      open: followStream(this.#ctx.followJs, this.#name, { batch: 256 }),
      position: () => this.#seen,
      apply: (seq, msg) => {
        this.#lastSeq = Math.max(this.#lastSeq, seq);
        const m = parseControlMessage(msg.string());
        if (m) this.#see(seq, m);
        else {
          this.#seen = seq;
          this.#ctx.log.error({ control: this.#name, seq }, 'control entry is not valid: skipped');
        }
      },
    });
    try {
      await follower.start();
    } catch (error) {
      this.#ctx.followers.drop(follower);
      throw error;
    }
    this.#follower = follower;
  }

  /** Take in one entry, once (our own appends are seen when acked, and again when followed). */
  #see(seq: number, m: ControlMessage): void {
    if (seq <= this.#seen) return;
    this.#seen = seq;
    if (m.k === 'lease') {
      this.#lease = { by: m.by, until: m.until };
      this.#ownerChanged();
      // the holder handed its lease back (it is draining): claim now, not at the next round
      // (a rolling restart waited up to leaseMs / 4 for it)
      if (m.until === 0 && m.by !== this.#me) void this.#tend();
      return;
    }
    for (const listener of this.#listeners) listener(m.d);
  }

  #ownerChanged(): void {
    const owner = this.isOwner();
    if (owner === this.#wasOwner) return;
    this.#wasOwner = owner;
    for (const listener of this.#ownerListeners) listener();
  }
}
