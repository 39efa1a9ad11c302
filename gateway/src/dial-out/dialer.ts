import { MirrorstreamError, type Clock, type ErrorCode, type TimerHandle } from '@mirrorstream/receiver/protocol';
import type { Logger } from 'pino';
import type { Transport } from '../transports/transport.js';
import type { ListenerTarget } from './offer-client.js';

/** Where the dialing of one listening endpoint stands on this instance. */
export type DialState = 'dialing' | 'connected' | 'backoff';

export interface DialStatus {
  state: DialState;
  /** Since when it is in this state (ms, the gateway's clock). */
  since: number;
  /** In `backoff`: when the next dial starts. */
  nextAttemptAt: number | undefined;
  /** Failed dials since the last connection. */
  failures: number;
  lastError: { code: ErrorCode; message: string; at: number } | undefined;
}

export interface DialerOptions {
  clock: Clock;
  log: Logger;
  backoff: { initialMs: number; maxMs: number };
  /** Full jitter's randomness (seeded in tests). */
  random?: () => number;
  /** One dial: resolves with the open transport (channels up), rejects with a coded error. */
  connect(endpointId: string, target: ListenerTarget): Promise<Transport>;
  /** An open transport to the sessions: from here on it is any endpoint's connection. */
  accept(transport: Transport, auth: { endpointId: string; sessionId: string }): void;
}

interface Dial {
  endpointId: string;
  target: ListenerTarget;
  status: DialStatus;
  timer: TimerHandle | undefined;
  transport: Transport | undefined;
  /** Bumped whenever this dial is restarted or dropped: a dial that settles late sees it changed. */
  generation: number;
  sessions: number;
}

/**
 * Keeps the listening endpoints this instance is responsible for connected: each one is
 * dialed (in the order given: the active ones first, then the standbys), and re-dialed with
 * capped, fully jittered exponential backoff after a failed dial or a connection that closed.
 * What it keeps connected the failover policy sees like any other endpoint: a listener that
 * is not connected is never made active, and one that comes back takes the stream back by the
 * fail-back rules. Which endpoints to dial is the caller's decision (`want`).
 */
export class Dialer {
  readonly #o: DialerOptions;
  readonly #dials = new Map<string, Dial>();
  #closed = false;

  constructor(options: DialerOptions) {
    this.#o = options;
  }

  /** Dial exactly these (endpoint id → target), in this order; stop dialing (and close) the rest. */
  want(targets: ReadonlyMap<string, ListenerTarget>): void {
    if (this.#closed) return;
    for (const [id, dial] of this.#dials) {
      const target = targets.get(id);
      if (!target || target.url !== dial.target.url || target.token !== dial.target.token) this.#drop(dial, target ? 'its target changed' : 'no longer dialed by this instance');
    }
    for (const [endpointId, target] of targets) {
      if (this.#dials.has(endpointId)) continue;
      const dial: Dial = { endpointId, target, status: { state: 'dialing', since: this.#o.clock.now(), nextAttemptAt: undefined, failures: 0, lastError: undefined }, timer: undefined, transport: undefined, generation: 0, sessions: 0 };
      this.#dials.set(endpointId, dial);
      this.#dial(dial);
    }
  }

  /**
   * The endpoint was judged dead on its connection: dial it again now, keeping the old
   * connection until the new one replaces it (a listener that restarted is back in one dial,
   * not after heartbeat.closeDeadAfterMs; one that is gone fails the dial and backs off).
   */
  endpointDead(endpointId: string): void {
    const dial = this.#dials.get(endpointId);
    if (!dial || this.#closed || dial.status.state !== 'connected') return;
    this.#o.log.info({ endpointId }, 'listening endpoint judged dead: dialing it again');
    this.#dial(dial);
  }

  status(endpointId: string): DialStatus | undefined {
    return this.#dials.get(endpointId)?.status;
  }

  get dialed(): IterableIterator<string> {
    return this.#dials.keys();
  }

  /** Stop dialing (a closing gateway): what is connected stays with the sessions, which close it after GOAWAY. */
  stop(): void {
    this.#closed = true;
    for (const dial of this.#dials.values()) this.#drop(dial);
  }

  /** Forget a dial; with a reason, also close its connection (another instance dials it now). */
  #drop(dial: Dial, reason?: string): void {
    dial.generation++;
    this.#o.clock.clearTimeout(dial.timer);
    this.#dials.delete(dial.endpointId);
    if (reason !== undefined) dial.transport?.close(reason);
  }

  #dial(dial: Dial): void {
    const generation = ++dial.generation;
    const current = (): boolean => !this.#closed && dial.generation === generation && this.#dials.get(dial.endpointId) === dial;
    this.#set(dial, 'dialing');
    this.#o.connect(dial.endpointId, dial.target).then(
      (transport) => {
        if (!current()) return void transport.close('no longer dialed');
        dial.transport = transport;
        dial.status.failures = 0;
        this.#set(dial, 'connected');
        this.#o.log.info({ endpointId: dial.endpointId, url: dial.target.url }, 'listening endpoint dialed: connected');
        void transport.closed.then((reason) => {
          if (!current()) return;
          dial.transport = undefined;
          this.#o.log.info({ endpointId: dial.endpointId, reason }, 'connection to a listening endpoint closed: re-dialing');
          this.#retry(dial);
        });
        try {
          this.#o.accept(transport, { endpointId: dial.endpointId, sessionId: `dial-${dial.endpointId}-${++dial.sessions}` });
        } catch (error) {
          // the gateway began closing meanwhile: this connection has nowhere to go
          transport.close(error instanceof Error ? error.message : String(error));
        }
      },
      (error: unknown) => {
        if (!current()) return;
        const e = error instanceof MirrorstreamError ? error : new MirrorstreamError('MS_DIAL_FAILED', error instanceof Error ? error.message : String(error), { retryable: true });
        dial.status.failures++;
        dial.status.lastError = { code: e.code, message: e.message, at: this.#o.clock.now() };
        this.#retry(dial);
        this.#o.log.warn({ endpointId: dial.endpointId, url: dial.target.url, err: { code: e.code, message: e.message }, retryInMs: Math.round((dial.status.nextAttemptAt ?? 0) - this.#o.clock.now()) }, 'dialing a listening endpoint failed');
      },
    );
  }

  /** Backoff, then dial again: initialMs doubling per failure up to maxMs, full jitter (half the first step at least). */
  #retry(dial: Dial): void {
    const { initialMs, maxMs } = this.#o.backoff;
    const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(dial.status.failures, 20));
    const delay = Math.round(initialMs / 2 + (this.#o.random ?? Math.random)() * (ceiling - initialMs / 2));
    this.#set(dial, 'backoff', this.#o.clock.now() + delay);
    dial.timer = this.#o.clock.setTimeout(() => {
      dial.timer = undefined;
      this.#dial(dial);
    }, delay);
  }

  #set(dial: Dial, state: DialState, nextAttemptAt?: number): void {
    dial.status.state = state;
    dial.status.since = this.#o.clock.now();
    dial.status.nextAttemptAt = nextAttemptAt;
  }
}
