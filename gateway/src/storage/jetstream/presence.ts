import type { Clock, TimerHandle } from '@mirrorstream/receiver/protocol';
import type { Logger } from 'pino';

/** What presence needs of a NATS connection (core NATS: no JetStream, nothing stored). */
export interface PresenceBus {
  publish(subject: string): void;
  /** Subscribe to `subject` (with a `*` wildcard); `onMessage` gets each message's subject. */
  subscribe(subject: string, onMessage: (subject: string) => void): { unsubscribe(): void };
}

export interface PresenceTiming {
  /** Every instance says it is alive this often. */
  intervalMs: number;
  /** Not heard for this long: the instance is gone; its leases are taken and its receivers count as disconnected. */
  goneMs: number;
  /**
   * An instance that has not heard itself for this long stops deciding. It is shorter than
   * `goneMs`, so an instance that is cut off (or paused) stops before the others take over.
   */
  selfMs: number;
}

export type InstanceState = 'alive' | 'gone' | 'unknown';

/**
 * Which gateway instances are alive, from a heartbeat each one publishes on core NATS every
 * `intervalMs` (`<prefix>.presence.<instance>`): an instance not heard for `goneMs` is gone,
 * within a few hundred milliseconds of a crash rather than after its lease runs out. Until
 * this instance has listened for `goneMs`, an instance it has not heard is `unknown` (not
 * gone: it may just not have spoken yet), and this instance does not decide (`settled`).
 */
export class Presence {
  readonly #bus: PresenceBus;
  readonly #subject: (instance: string) => string;
  readonly #me: string;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #t: PresenceTiming;
  /** instance -> when last heard, and whether it was told gone. */
  readonly #heard = new Map<string, { at: number; gone: boolean }>();
  readonly #listeners: ((instance: string, state: 'alive' | 'gone') => void)[] = [];
  readonly #since: number;
  #timer: TimerHandle | undefined;
  #sub: { unsubscribe(): void } | undefined;

  constructor(bus: PresenceBus, prefix: string, me: string, clock: Clock, log: Logger, timing: PresenceTiming) {
    this.#bus = bus;
    this.#subject = (instance) => `${prefix}.presence.${instance}`;
    this.#me = me;
    this.#clock = clock;
    this.#log = log;
    this.#t = timing;
    this.#since = clock.now();
    const base = this.#subject('');
    this.#sub = bus.subscribe(this.#subject('*'), (subject) => this.#hear(subject.slice(base.length)));
    this.#timer = clock.setInterval(() => this.#beat(), timing.intervalMs);
    this.#beat();
  }

  /** Told when another instance is gone (not heard for goneMs) or heard again. */
  onChange(listener: (instance: string, state: 'alive' | 'gone') => void): void {
    this.#listeners.push(listener);
  }

  state(instance: string): InstanceState {
    if (instance === this.#me) return 'alive';
    const h = this.#heard.get(instance);
    if (h) return this.#clock.now() - h.at < this.#t.goneMs ? 'alive' : 'gone';
    return this.settled ? 'gone' : 'unknown';
  }

  /** When the instance was last heard (undefined: never). */
  lastHeard(instance: string): number | undefined {
    return this.#heard.get(instance)?.at;
  }

  /** Listened long enough to tell a silent instance from one not heard yet. */
  get settled(): boolean {
    return this.#clock.now() - this.#since >= this.#t.goneMs;
  }

  /** How long this instance has not heard itself (since it started listening, if never). */
  get selfSilentMs(): number {
    return this.#clock.now() - (this.#heard.get(this.#me)?.at ?? this.#since);
  }

  /** This instance hears itself through NATS: it may decide (see PresenceTiming.selfMs). */
  get connected(): boolean {
    const h = this.#heard.get(this.#me);
    return h !== undefined && this.#clock.now() - h.at < this.#t.selfMs;
  }

  close(): void {
    this.#clock.clearInterval(this.#timer);
    this.#timer = undefined;
    this.#sub?.unsubscribe();
    this.#sub = undefined;
  }

  #beat(): void {
    try {
      this.#bus.publish(this.#subject(this.#me));
    } catch (error) {
      // disconnected: the client buffers or refuses; the others notice our silence either way
      this.#log.debug({ err: error }, 'presence not published');
    }
    this.#sweep();
  }

  #hear(instance: string): void {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(instance)) return;
    const h = this.#heard.get(instance);
    this.#heard.set(instance, { at: this.#clock.now(), gone: false });
    if (h?.gone && instance !== this.#me) {
      this.#log.info({ instance }, 'gateway instance heard again');
      this.#tell(instance, 'alive');
    }
  }

  /** Tell of instances that just went silent; forget ones gone long ago (a restart is a new id). */
  #sweep(): void {
    const now = this.#clock.now();
    for (const [instance, h] of this.#heard) {
      if (instance === this.#me || now - h.at < this.#t.goneMs) continue;
      if (now - h.at > 600_000) this.#heard.delete(instance);
      if (h.gone) continue;
      h.gone = true;
      this.#log.warn({ instance, silentMs: now - h.at }, 'gateway instance gone: taking over its streams');
      this.#tell(instance, 'gone');
    }
  }

  #tell(instance: string, state: 'alive' | 'gone'): void {
    for (const listener of this.#listeners) {
      try {
        listener(instance, state);
      } catch (error) {
        this.#log.error({ instance, err: error }, 'presence listener failed');
      }
    }
  }
}
