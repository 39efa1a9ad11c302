import type { DialHint, Dialer, FrameLink, ReconnectPolicy } from './link.js';
import type { Clock, TimerHandle } from './protocol/clock.js';
import { MirrorstreamError, type ErrorCode } from './protocol/errors.js';
import type { ReceiverStatus } from './receiver-types.js';

/**
 * Where the receiver's connection is:
 * - `idle`: never asked to connect;
 * - `dialing`: no link, the next one is being dialed;
 * - `backoff`: no link, waiting the reconnect policy's delay before the next dial;
 * - `handshake`: a link, HELLO sent, no WELCOME yet;
 * - `open`: a link that had its WELCOME;
 * - `replacing`: the open link went silent; it is kept, still heard, while the next is dialed;
 * - `closed`: for good (the application closed it, or retrying cannot help).
 */
export type LifecycleState = 'idle' | 'dialing' | 'backoff' | 'handshake' | 'open' | 'replacing' | 'closed';

/** What moves it: the application (connect, close), the dial, the backoff timer, the gateway (welcome, silent, spoke) and every reason to leave a link (drop). */
export type LifecycleEvent = 'connect' | 'dialed' | 'dialFailed' | 'retry' | 'welcome' | 'silent' | 'spoke' | 'drop' | 'close';

/**
 * Every transition, and nothing else: per state, the events it takes and where each may lead.
 * An event a state does not list leaves it as it is. A drop or a failed dial leads to `dialing`
 * when a dial is already under way (or nothing failed: GOAWAY), to `backoff` otherwise, and to
 * `closed` when the policy gives up or the error is one retrying cannot fix.
 *
 *   idle ─connect→ dialing ─dialed→ handshake ─welcome→ open ─silent→ replacing ─spoke→ open
 *   replacing ─dialed→ handshake (the silent link is left once the next is up)
 *   handshake | open | replacing ─drop→ dialing | backoff | closed;  backoff ─retry→ dialing
 */
export const TRANSITIONS: { readonly [S in LifecycleState]: { readonly [E in LifecycleEvent]?: readonly LifecycleState[] } } = {
  idle: { connect: ['dialing'], close: ['closed'] },
  dialing: { dialed: ['handshake'], dialFailed: ['backoff', 'closed'], close: ['closed'] },
  backoff: { retry: ['dialing'], close: ['closed'] },
  handshake: { welcome: ['open'], drop: ['dialing', 'backoff', 'closed'], close: ['closed'] },
  open: { welcome: ['open'], silent: ['replacing'], drop: ['dialing', 'backoff', 'closed'], close: ['closed'] },
  replacing: { spoke: ['open'], dialed: ['handshake'], dialFailed: ['backoff', 'closed'], drop: ['dialing', 'closed'], close: ['closed'] },
  closed: {},
};

/** Why the current link is left: each cause takes the one drop-and-retry path. */
export type DropCause =
  /** The gateway is going away (a planned restart): nothing failed, dial the next gateway at once. */
  | { kind: 'goaway'; reason: string }
  /** Nothing from the gateway for `limitMs`: an open link is kept until the next is up, one in handshake is left. */
  | { kind: 'silent'; limitMs: number }
  /** The transport closed under us. */
  | { kind: 'closed'; reason: string }
  /** The gateway's ERROR, a frame we cannot read, an answer retrying cannot fix. */
  | { kind: 'failed'; error: MirrorstreamError };

/** Codes after which reconnecting cannot help. */
const FATAL: ReadonlySet<string> = new Set<ErrorCode>(['MS_UNAUTHORIZED', 'MS_PROTOCOL_VERSION', 'MS_TRANSPORT_UNAVAILABLE']);

export function isFatal(code: string): boolean {
  return FATAL.has(code);
}

/** How a link is left: the reason it is closed with, whether acks go out on it first, and what the retry is about (`now`: nothing failed, dial the next gateway at once). */
type Leaving = { reason: string; flush: boolean } & ({ now: true } | { now?: false; error: unknown });

function leaving(cause: DropCause): Leaving {
  const closed = (why: string): MirrorstreamError => new MirrorstreamError('MS_TRANSPORT_CLOSED', why, { retryable: true });
  switch (cause.kind) {
    case 'goaway':
      return { reason: `gateway going away: ${cause.reason}`, flush: true, now: true };
    case 'silent':
      return { reason: 'gateway silent', flush: false, error: closed(`no frame from the gateway for ${cause.limitMs} ms`) };
    case 'closed':
      return { reason: cause.reason, flush: false, error: closed(cause.reason) };
    case 'failed':
      return { reason: cause.error.code, flush: false, error: cause.error };
  }
}

/** What the lifecycle asks of its owner (the protocol side of the receiver). */
export interface LifecycleSink {
  /** A dialed link is now the connection: say HELLO on it and watch it. */
  adopt(link: FrameLink): void;
  /** The connection leaves `link`, closed right after: stop watching it; `flush`: what is unacked goes out on it first (it still works). */
  leave(link: FrameLink, flush: boolean): void;
  /** The public status changed (`closed`: for good, stop everything). */
  status(status: ReceiverStatus, detail: string): void;
}

export interface LifecycleOptions {
  clock: Clock;
  dial: Dialer;
  reconnect: ReconnectPolicy;
  /** Codes after which it stops for good (default: FATAL). */
  fatalCodes?: ReadonlySet<string>;
}

/**
 * The receiver's connection lifecycle as one state machine (TRANSITIONS): one dial at a time,
 * one path that leaves a link and retries (GOAWAY, silence, transport close, errors, and the
 * silent link left for its replacement), backoff from the reconnect policy. It knows links and
 * dialers, not frames or transports: the receiver tells it what the gateway said.
 */
export class Lifecycle {
  readonly #o: LifecycleOptions;
  readonly #sink: LifecycleSink;
  #state: LifecycleState = 'idle';
  #status: ReceiverStatus = 'idle';
  #link: FrameLink | undefined;
  /** The current link's close listener (removed when the link is left: its close is then ours). */
  #onClose: ((reason: string) => void) | undefined;
  /** The one dial under way, if any: in `dialing` and `replacing`, and briefly in `open` (a replacement no longer needed). */
  #dialing = false;
  /** Connection attempts since the last WELCOME (the reconnect policy's input). */
  #attempt = 0;
  #retryTimer: TimerHandle | undefined;
  /** The pending connect(): every caller gets this promise until the link is open or the receiver closed. */
  #waiting: { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void } | undefined;

  constructor(options: LifecycleOptions, sink: LifecycleSink) {
    this.#o = options;
    this.#sink = sink;
  }

  get state(): LifecycleState {
    return this.#state;
  }

  get status(): ReceiverStatus {
    return this.#status;
  }

  /** The current link (in `handshake`, `open` and `replacing`). */
  get link(): FrameLink | undefined {
    return this.#link;
  }

  /** Resolves once the link is open (every caller gets the same promise); rejects when the receiver closes first. */
  connect(): Promise<void> {
    if (this.#state === 'closed') return Promise.reject(new MirrorstreamError('MS_TRANSPORT_CLOSED', 'receiver is closed'));
    if (this.#state === 'open') return Promise.resolve();
    if (!this.#waiting) {
      let resolve!: () => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.#waiting = { promise, resolve, reject };
    }
    if (this.#state === 'idle') {
      this.#go('connect', 'dialing');
      this.#dial(undefined, undefined, 'connecting');
    }
    return this.#waiting.promise;
  }

  /** The gateway's WELCOME on the current link. */
  welcome(detail: string): void {
    if (this.#state !== 'handshake' && this.#state !== 'open') return;
    this.#attempt = 0;
    this.#go('welcome', 'open');
    this.#opened(detail);
  }

  /** A frame on the current link. True when it was the silent link, which is kept: the replacement, when it comes, is closed unused. */
  spoke(): boolean {
    if (this.#state !== 'replacing') return false;
    this.#go('spoke', 'open');
    this.#opened('the gateway spoke again');
    return true;
  }

  /**
   * A reason to leave the current link. An open link that went silent is kept, still heard,
   * while the next one is dialed at once: a gateway that was only stalled speaks first and the
   * receiver stays; a dead one is left when the next is up. Every other cause takes the one
   * drop-and-retry path.
   */
  drop(cause: DropCause): void {
    if (!this.#link) return;
    if (cause.kind === 'silent' && this.#state === 'open') {
      this.#go('silent', 'replacing');
      this.#dial({ gatewaySilent: true }, `no frame from the gateway for ${cause.limitMs} ms`);
      return;
    }
    this.#dropAndRetry('drop', leaving(cause));
  }

  /** Close for good: what is unacked goes out first, the link closes, connect() rejects. */
  close(): void {
    this.#end('closed by application', new MirrorstreamError('MS_TRANSPORT_CLOSED', 'receiver closed'));
  }

  #end(detail: string, error: unknown, event: LifecycleEvent = 'close'): void {
    if (this.#state === 'closed') return;
    this.#o.clock.clearTimeout(this.#retryTimer);
    if (this.#link) this.#leave(this.#link, 'receiver closed', true);
    this.#go(event, 'closed');
    this.#announce('closed', detail);
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.reject(error);
  }

  #opened(detail: string): void {
    this.#announce('connected', detail);
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.resolve();
  }

  /** Start the dial, unless one is under way: that one serves (it is adopted if it lands in `dialing` or `replacing`). */
  #dial(hint: DialHint | undefined, detail?: string, status: ReceiverStatus = 'reconnecting'): void {
    if (this.#dialing) {
      if (detail) this.#announce(status, detail);
      return;
    }
    this.#dialing = true;
    this.#announce(status, detail ?? `attempt ${this.#attempt + 1}`);
    let dialed: Promise<FrameLink>;
    try {
      dialed = this.#o.dial(hint);
    } catch (error) {
      dialed = Promise.reject(error);
    }
    dialed.then(
      (link) => this.#landed(link),
      (error: unknown) => this.#dialFailed(error),
    );
  }

  #landed(link: FrameLink): void {
    this.#dialing = false;
    if (this.#state !== 'dialing' && this.#state !== 'replacing') {
      link.close(this.#state === 'closed' ? 'receiver closed' : 'the gateway spoke again');
      return;
    }
    if (this.#link) this.#leave(this.#link, 'gateway silent', true);
    this.#link = link;
    this.#go('dialed', 'handshake');
    this.#onClose = (reason) => this.drop({ kind: 'closed', reason });
    link.on('close', this.#onClose);
    this.#sink.adopt(link);
  }

  #dialFailed(error: unknown): void {
    this.#dialing = false;
    if (this.#state !== 'dialing' && this.#state !== 'replacing') return; // closed, or the silent gateway spoke again
    // replacing: the silent link's replacement failed, so the silent link is left too
    this.#dropAndRetry('dialFailed', { reason: 'gateway silent', flush: true, error });
  }

  /**
   * The one "drop the link, then retry" path: leave the current link, if any, then dial at once
   * (GOAWAY: nothing failed; the next gateway), after the reconnect policy's delay, or never (an
   * error retrying cannot fix, a policy that gives up).
   */
  #dropAndRetry(event: 'drop' | 'dialFailed', how: Leaving): void {
    // a GOAWAY before WELCOME still counts as an attempt: a policy with a limit gives up in time
    if (how.now && this.#state === 'open') this.#attempt = 0;
    if (this.#link) this.#leave(this.#link, how.reason, how.flush);
    if (how.now) {
      this.#announce('reconnecting', how.reason);
      this.#go(event, 'dialing');
      this.#dial({ nextGateway: true });
      return;
    }
    const { error } = how;
    const code = error instanceof MirrorstreamError ? error.code : undefined;
    const delay = code && (this.#o.fatalCodes ?? FATAL).has(code) ? null : this.#o.reconnect.nextRetryDelayMs({ attempt: this.#attempt, lastError: error });
    this.#attempt++;
    if (delay === null) {
      const reason = error instanceof MirrorstreamError ? error : new MirrorstreamError('MS_TRANSPORT_CLOSED', String(error), { cause: error });
      this.#end(reason.message, reason, event);
      return;
    }
    this.#announce('reconnecting', error instanceof Error ? error.message : String(error));
    if (this.#dialing) {
      this.#go(event, 'dialing'); // the dial under way is the retry
      return;
    }
    this.#go(event, 'backoff');
    this.#o.clock.clearTimeout(this.#retryTimer);
    this.#retryTimer = this.#o.clock.setTimeout(() => {
      this.#retryTimer = undefined;
      this.#go('retry', 'dialing');
      this.#dial(undefined);
    }, delay);
  }

  /** The link is still current while its acks are flushed (they go out on it); a close meanwhile is part of leaving, not a new cause. */
  #leave(link: FrameLink, reason: string, flush: boolean): void {
    if (this.#onClose) link.off('close', this.#onClose);
    this.#onClose = undefined;
    this.#sink.leave(link, flush);
    this.#link = undefined;
    link.close(reason);
  }

  #go(event: LifecycleEvent, to: LifecycleState): void {
    if (!TRANSITIONS[this.#state][event]?.includes(to)) {
      throw new MirrorstreamError('MS_INTERNAL', `receiver lifecycle: '${event}' cannot take ${this.#state} to ${to}`);
    }
    this.#state = to;
  }

  /** The public status: repeated only while reconnecting (each attempt and each reason is news). */
  #announce(status: ReceiverStatus, detail: string): void {
    if (this.#status === status && status !== 'reconnecting') return;
    this.#status = status;
    this.#sink.status(status, detail);
  }
}
