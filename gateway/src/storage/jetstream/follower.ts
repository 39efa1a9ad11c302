import type { Clock, TimerHandle } from '@mirrorstream/receiver/protocol';
import type { Logger } from 'pino';
import { hedgedOpen, type HedgeTiming } from './hedged-open.js';

/** What a running subscription tells its follower. */
export interface FollowSink<T> {
  /** An entry at `position` (strictly increasing within one subscription). */
  entry(position: number, value: T): void;
  /** Proof of life without an entry (an idle heartbeat, a pull answered). */
  alive(): void;
  /** The subscription is broken (ended, consumer gone): recreate it now. */
  lost(reason: string): void;
}

/** One subscription to the engine, opened to deliver the entries after `after`. */
export type OpenFollow<T> = (after: number, sink: FollowSink<T>) => Promise<{ close(): void }>;

/** `HedgeTiming`: how each open is hedged (see hedgedOpen). */
export interface FollowerTiming extends HedgeTiming {
  /** No entry and no sign of life for this long: the subscription is stalled, recreate it. */
  stallMs: number;
  /** Back-off between failed (re)opens: doubles from `retryMs` up to `maxRetryMs`. */
  retryMs: number;
  maxRetryMs: number;
}

/**
 * Bounds for followers on NATS JetStream. A consumer asks for an idle heartbeat every 500 ms
 * (nats.js's floor), so a live subscription is heard at least that often; nothing for 800 ms
 * (a heartbeat 300 ms late, which the server's timer does not do) means its consumer is gone
 * (the server hosting it died) or the pull was lost, and the follower recreates it.
 *
 * Opens are hedged: after a node dies, nats-server 2.9 goes on placing about a third of new R1
 * consumers on the dead node for 12 s and more (measured here), and such a create is never
 * answered. So an open not answered within 50 ms (one answers in a few ms) is joined by
 * another, up to 4 in flight; the first to answer is used. An open not answered in 1 s counts
 * as failed. During an election (no stream leader: every open waits for that) this keeps an
 * open starting every ~250 ms, so a follower is back within about that once the engine can
 * serve again. Opens refused outright back off from 100 ms to 1 s.
 */
export const ENGINE_FOLLOW_TIMING: FollowerTiming = { stallMs: 800, retryMs: 100, maxRetryMs: 1_000, hedgeMs: 50, maxOpensInFlight: 4, openTimeoutMs: 1_000 };
export const ENGINE_HEARTBEAT_MS = 500;

export interface FollowerOptions<T> {
  /** For logs and readiness: `log:<stream>`, `control:<stream>`, `kv:<bucket>`. */
  name: string;
  open: OpenFollow<T>;
  /** The last position applied: a (re)opened subscription starts after it, entries at or below it are skipped. */
  position: () => number;
  /** Take in one entry; it must move `position` to `at`. A throw is logged and the entry skipped. */
  apply: (at: number, value: T) => void;
  clock: Clock;
  log: Logger;
  timing?: FollowerTiming;
  /** Told when the follower stops or starts following (a stall, a failed reopen, a recovery). */
  onHealth?: (following: boolean) => void;
}

/**
 * One supervised subscription to the engine: it applies every entry once, in position
 * order, and keeps doing so whatever happens to the subscription underneath. A stall (no
 * entry and no heartbeat within `stallMs`), a lost consumer, a failed open or a reconnect
 * (`restart`) replaces the subscription with a new one that starts after the last applied
 * position, so nothing is skipped or applied twice. While it is not following (from a stall
 * until a new subscription is open) it says so through `onHealth`: the instance is not ready
 * and does not decide.
 */
export class Follower<T> {
  readonly name: string;
  readonly #o: FollowerOptions<T>;
  readonly #t: FollowerTiming;
  #sub: { close(): void } | undefined;
  /** Bumped per subscription: what an old one still delivers is dropped. */
  #generation = 0;
  #lastHeard = 0;
  #lastCheck = 0;
  #following = false;
  /** Hedged opens that failed in a row (the back-off). */
  #failures = 0;
  /** Open runs that failed since the follower last heard its engine (logged 1st and every 20th). */
  #runFailures = 0;
  #watch: TimerHandle | undefined;
  #retry: TimerHandle | undefined;
  /** Opens in flight (a restart during one starts another; the older one's result is dropped). */
  #opening = 0;
  #closed = false;
  /** Subscriptions replaced since start (a metric). */
  restarts = 0;

  constructor(options: FollowerOptions<T>) {
    this.name = options.name;
    this.#o = options;
    this.#t = options.timing ?? ENGINE_FOLLOW_TIMING;
  }

  get following(): boolean {
    return this.#following;
  }

  /** Open the first subscription; a failure is thrown (the caller reports it), later ones are retried here. */
  async start(): Promise<void> {
    await this.#open();
    if (this.#closed) return;
    this.#lastCheck = this.#o.clock.now();
    this.#watch = this.#o.clock.setInterval(() => this.#check(), this.#checkEveryMs);
  }

  get #checkEveryMs(): number {
    return Math.max(10, Math.floor(this.#t.stallMs / 8));
  }

  /** Replace the subscription now (the connection to the engine came back: its consumers may be gone). */
  restart(reason: string): void {
    if (this.#closed) return;
    this.#replace(reason);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#o.clock.clearInterval(this.#watch);
    this.#o.clock.clearTimeout(this.#retry);
    this.#generation++;
    this.#sub?.close();
    this.#sub = undefined;
  }

  #check(): void {
    const now = this.#o.clock.now();
    // this check ran late: the process was paused (GC, CPU steal), and what the subscription
    // sent meanwhile sits unread behind this timer; the pause is not the subscription's silence
    const late = now - this.#lastCheck - this.#checkEveryMs;
    if (late > this.#checkEveryMs) this.#lastHeard = Math.min(now, this.#lastHeard + late);
    this.#lastCheck = now;
    if (this.#closed || this.#opening > 0 || this.#retry) return;
    const silent = now - this.#lastHeard;
    if (silent >= this.#t.stallMs) this.#replace(`nothing heard for ${silent} ms`);
  }

  /** `lost`: a subscription that ran is given up (counted); else an open is retried. */
  #replace(reason: string, lost = true): void {
    this.#generation++;
    this.#sub?.close();
    this.#sub = undefined;
    if (lost) this.restarts++;
    if (this.#following) this.#o.log.warn({ follower: this.name, reason, position: this.#o.position() }, 'engine subscription lost: recreating it from the last applied position');
    this.#setFollowing(false);
    this.#o.clock.clearTimeout(this.#retry);
    this.#retry = undefined;
    void this.#open().catch(() => this.#openFailed());
  }

  async #open(): Promise<void> {
    this.#opening++;
    const generation = ++this.#generation;
    const stale = (): boolean => generation !== this.#generation || this.#closed;
    try {
      const sink: FollowSink<T> = {
        entry: (at, value) => {
          if (generation === this.#generation) this.#entry(at, value);
        },
        alive: () => {
          if (generation === this.#generation) this.#heard();
        },
        lost: (why) => {
          if (generation === this.#generation && !this.#closed) this.#replace(why);
        },
      };
      const after = this.#o.position();
      const sub = await hedgedOpen(() => this.#o.open(after, sink), this.#o.clock, this.#t, {
        givenUp: stale,
        onFailure: (error) => {
          if (!stale()) this.#runFailed(error);
        },
      });
      if (stale()) {
        sub.close();
        return;
      }
      this.#sub = sub;
      // the engine made the consumer: following from here; the stall clock starts now, so a
      // subscription that never shows life is replaced too
      this.#heard();
    } catch (error) {
      // an open replaced meanwhile (a restart, a close) fails for nobody
      if (!stale()) throw error;
    } finally {
      this.#opening--;
    }
  }

  /** One open run failed (others of the same hedged open may still answer). */
  #runFailed(error: unknown): void {
    this.#runFailures++;
    if (this.#runFailures === 1 || this.#runFailures % 20 === 0) {
      this.#o.log.warn({ follower: this.name, err: error, failures: this.#runFailures }, 'engine subscription could not be opened: retrying');
    }
  }

  #openFailed(): void {
    if (this.#closed) return;
    this.#failures++;
    const wait = Math.min(this.#t.maxRetryMs, this.#t.retryMs * 2 ** Math.min(this.#failures - 1, 20));
    this.#retry = this.#o.clock.setTimeout(() => {
      this.#retry = undefined;
      if (this.#closed) return;
      this.#replace('retrying the open', false);
    }, wait);
  }

  #entry(at: number, value: T): void {
    this.#heard();
    if (at <= this.#o.position()) return; // applied before the subscription was replaced
    try {
      this.#o.apply(at, value);
    } catch (error) {
      this.#o.log.error({ follower: this.name, position: at, err: error }, 'engine entry not applied: skipped');
    }
  }

  #heard(): void {
    this.#lastHeard = this.#o.clock.now();
    this.#failures = 0;
    this.#runFailures = 0;
    if (!this.#following) this.#setFollowing(true);
  }

  #setFollowing(following: boolean): void {
    if (this.#following === following) return;
    this.#following = following;
    if (following && this.restarts > 0) this.#o.log.warn({ follower: this.name, position: this.#o.position() }, 'engine subscription following again');
    try {
      this.#o.onHealth?.(following);
    } catch (error) {
      this.#o.log.error({ follower: this.name, err: error }, 'follower health listener failed');
    }
  }
}

/** Opens of subscriptions in flight at once, per backend (a hedged open counts each of its runs). */
const MAX_OPENS = 64;

/**
 * Every follower of one backend: made here so each one is supervised the same way, its opens
 * kept to MAX_OPENS at a time, and counted for readiness and metrics (which are not following
 * now, how many subscriptions were replaced).
 */
export class Followers {
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #all = new Set<Follower<never>>();
  readonly #stale = new Set<string>();
  /** Subscriptions replaced by followers that are gone. */
  #pastRestarts = 0;
  /** Told when a follower stops or starts following. */
  onChange: (() => void) | undefined;
  #opens = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(clock: Clock, log: Logger) {
    this.#clock = clock;
    this.#log = log;
  }

  follow<T>(options: Omit<FollowerOptions<T>, 'clock' | 'log' | 'onHealth'>): Follower<T> {
    const follower: Follower<T> = new Follower<T>({
      ...options,
      open: (after, sink) => this.#limited(() => options.open(after, sink)),
      clock: this.#clock,
      log: this.#log,
      onHealth: (following) => {
        if (!this.#all.has(follower as Follower<never>)) return;
        if (following) this.#stale.delete(follower.name);
        else this.#stale.add(follower.name);
        this.#changed();
      },
    });
    this.#all.add(follower as Follower<never>);
    return follower;
  }

  drop(follower: Follower<never> | Follower<unknown>): void {
    const f = follower as Follower<never>;
    if (!this.#all.delete(f)) return;
    f.close();
    this.#pastRestarts += f.restarts;
    if (this.#stale.delete(f.name)) this.#changed();
  }

  /** Names of the followers that are not following now. */
  get stale(): readonly string[] {
    return [...this.#stale];
  }

  get restarts(): number {
    let n = this.#pastRestarts;
    for (const f of this.#all) n += f.restarts;
    return n;
  }

  closeAll(): void {
    for (const f of [...this.#all]) this.drop(f);
  }

  #changed(): void {
    try {
      this.onChange?.();
    } catch (error) {
      this.#log.error({ err: error }, 'followers change listener failed');
    }
  }

  /**
   * At most MAX_OPENS opens at a time: after a NATS node dies a third of the consumers go with
   * it, and their followers' opens all reach the meta leader as it recovers. Room for 16
   * followers with every hedge in flight.
   */
  async #limited<R>(open: () => Promise<R>): Promise<R> {
    if (this.#opens >= MAX_OPENS) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    this.#opens++;
    try {
      return await open();
    } finally {
      this.#opens--;
      this.#waiting.shift()?.();
    }
  }
}
