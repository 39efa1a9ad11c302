import { InboundStreams } from './inbound.js';
import type { DialHint, FrameLink, LinkChannel } from './link.js';
import { ExponentialBackoff } from './link.js';
import { RealClock, type TimerHandle } from './protocol/clock.js';
import { decodeFrame } from './protocol/decode.js';
import { TypedEmitter } from './protocol/emitter.js';
import { ERROR_CODES, MirrorstreamError, ProtocolError } from './protocol/errors.js';
import { DEFAULT_MAX_FRAME_BYTES, encodeFrame, FrameType, MAX_FRAME_BYTES_LIMIT } from './protocol/frames.js';
import { PROTOCOL_VERSION, SDK_VERSION } from './protocol/version.js';
import { PathRtt } from './path-rtt.js';
import { silenceLimitMs, SilenceWatch } from './silence-watch.js';

export type { Chunk, EpochReset, Gap, RoleChange } from './inbound.js';

export type { ReceiverCoreOptions, ReceiverEvents, ReceiverLogger, ReceiverStatus } from './receiver-types.js';
import type { ReceiverCoreOptions, ReceiverEvents, ReceiverStatus } from './receiver-types.js';

/** Codes after which reconnecting cannot help. */
const FATAL = new Set(['MS_UNAUTHORIZED', 'MS_PROTOCOL_VERSION', 'MS_TRANSPORT_UNAVAILABLE']);

/**
 * The receiver, independent of the transport: HELLO with resume positions and their
 * epochs, heartbeat echo, gateway silence detection, reconnect with backoff, receiver
 * reports. Ordering, acks and epochs per stream are InboundStreams'.
 */
export class ReceiverCore extends TypedEmitter<ReceiverEvents> {
  readonly endpointId: string;
  readonly #opts: Required<Omit<ReceiverCoreOptions, 'gatewayTimeoutMs' | 'maxFrameBytes' | 'logger'>> &
    Pick<ReceiverCoreOptions, 'gatewayTimeoutMs' | 'maxFrameBytes' | 'logger'>;
  readonly #inbound: InboundStreams;
  #status: ReceiverStatus = 'idle';
  #link: FrameLink | undefined;
  #attempt = 0;
  #retryTimer: TimerHandle | undefined;
  readonly #silence: SilenceWatch;
  /** WELCOME's longest heartbeat interval (the silence limit's ceiling); 0 before the first. */
  #welcomeIntervalMs = 0;
  /** The current link had its WELCOME. */
  #welcomed = false;
  /** The current link went silent: kept (still heard) while the next one is dialed. */
  #suspect = false;
  #dialing = false;
  /** The one pending connect(): every caller gets this promise until WELCOME or failure. */
  #welcome: { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void } | undefined;
  #maxFrameBytes: number;
  sessionId: string | undefined;
  #reportTimer: TimerHandle | undefined;
  #reporting = false;
  #lastReportAt = 0;
  readonly #rtt: PathRtt;

  constructor(options: ReceiverCoreOptions) {
    super();
    this.endpointId = options.endpointId;
    this.#opts = {
      endpointId: options.endpointId,
      dial: options.dial,
      clock: options.clock ?? new RealClock(),
      reconnect: options.reconnect ?? new ExponentialBackoff(),
      ackEveryChunks: options.ackEveryChunks ?? 16,
      ackDelayMs: options.ackDelayMs ?? 20,
      gatewayTimeoutMs: options.gatewayTimeoutMs,
      reorderLimit: options.reorderLimit ?? 4096,
      reportIntervalMs: options.reportIntervalMs ?? 1_000,
      transports: options.transports ?? [],
      maxFrameBytes: options.maxFrameBytes,
      logger: options.logger,
    };
    this.#maxFrameBytes = this.#initialMaxFrameBytes();
    this.#rtt = new PathRtt(this.#opts.clock);
    this.#silence = new SilenceWatch(this.#opts.clock, (limitMs) => this.#gatewaySilent(limitMs));
    this.onListenerError = (error, event) => this.#listenerFailed(error, event);
    this.#inbound = new InboundStreams(this.#opts, {
      chunk: (c) => this.emit('chunk', c),
      gap: (g) => this.emit('gap', g),
      role: (r) => this.emit('role', r),
      reset: (r) => this.emit('reset', r),
      send: (bytes) => this.#link?.send(bytes, 'control') ?? false,
    });
  }

  get status(): ReceiverStatus {
    return this.#status;
  }

  /** Last delivered (or declared lost) seq per stream: what a reconnect resumes from. */
  positions(): Record<string, number> {
    return this.#inbound.positions();
  }

  /** The epoch each position belongs to. */
  epochs(): Record<string, string> {
    return this.#inbound.epochs();
  }

  /** Connect; resolves on WELCOME (every caller gets the same promise). Later drops reconnect by themselves. */
  connect(): Promise<void> {
    if (this.#status === 'closed') return Promise.reject(new MirrorstreamError('MS_TRANSPORT_CLOSED', 'receiver is closed'));
    if (this.#status === 'connected') return Promise.resolve();
    if (!this.#welcome) {
      let resolve!: () => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.#welcome = { promise, resolve, reject };
    }
    if (this.#status === 'idle') void this.#open('connecting');
    return this.#welcome.promise;
  }

  /** Flush acks, close the link, stop reconnecting. */
  close(): void {
    if (this.#status === 'closed') return;
    this.#inbound.flushAcks();
    this.#opts.clock.clearTimeout(this.#retryTimer);
    this.#silence.stop();
    this.#suspect = false;
    this.#opts.clock.clearInterval(this.#reportTimer);
    this.#inbound.stop();
    const link = this.#link;
    this.#link = undefined;
    link?.close('receiver closed');
    this.#setStatus('closed', 'closed by application');
    this.#settleWelcome(new MirrorstreamError('MS_TRANSPORT_CLOSED', 'receiver closed'));
  }

  /** One dial at a time: what a GOAWAY or a lost link asks for meanwhile, the dial under way does. */
  async #open(status: 'connecting' | 'reconnecting', hint?: DialHint, detail?: string): Promise<void> {
    if (this.#dialing) return;
    this.#dialing = true;
    this.#setStatus(status, detail ?? `attempt ${this.#attempt + 1}`);
    let link: FrameLink;
    try {
      link = await this.#opts.dial(hint);
    } catch (error) {
      this.#dialing = false;
      if (this.#link && !this.#suspect) return; // the silent gateway spoke again: stay
      this.#dropLink('gateway silent');
      this.#scheduleRetry(error);
      return;
    }
    this.#dialing = false;
    if (this.#status === 'closed' || (this.#link && !this.#suspect)) {
      link.close(this.#status === 'closed' ? 'receiver closed' : 'the gateway spoke again');
      return;
    }
    this.#dropLink('gateway silent');
    this.#link = link;
    this.#welcomed = false;
    this.#suspect = false;
    this.linkAdopted(link);
    this.#rtt.reset();
    this.#inbound.newConnection();
    this.#maxFrameBytes = this.#initialMaxFrameBytes();
    link.on('message', (bytes, channel) => {
      if (this.#link === link) this.#onMessage(link, bytes, channel);
    });
    link.on('close', (reason) => {
      if (this.#link !== link) return;
      this.#link = undefined;
      this.#suspect = false;
      this.#silence.stop();
      this.#scheduleRetry(new MirrorstreamError('MS_TRANSPORT_CLOSED', reason, { retryable: true }));
    });
    link.send(
      encodeFrame({
        type: FrameType.HELLO,
        version: PROTOCOL_VERSION,
        endpointId: this.endpointId,
        sdkVersion: SDK_VERSION,
        resume: this.#inbound.positions(),
        epochs: this.#inbound.epochs(),
        ...(this.#opts.transports.length > 1 ? { transports: [...this.#opts.transports] } : {}),
      }),
      'control',
    );
    // until WELCOME (and a cadence) says otherwise, the limit WELCOME allowed last time
    this.#silence.start(this.#limit(undefined));
  }

  /** A dialed link is now the connection (one dialed while a silent one was kept may be dropped unused). */
  protected linkAdopted(_link: FrameLink): void {}

  /** Our own option, else what the gateway's cadence (or WELCOME) allows (silence-watch.ts). */
  #limit(cadenceMs: number | undefined): number {
    return this.#opts.gatewayTimeoutMs ?? silenceLimitMs(cadenceMs, this.#welcomeIntervalMs);
  }

  /** Leave the current link, if any: what is unacked goes out on it first. */
  #dropLink(reason: string): void {
    const link = this.#link;
    if (!link) return;
    this.#inbound.flushAcks();
    this.#link = undefined;
    this.#suspect = false;
    this.#silence.stop();
    link.close(reason);
  }

  #initialMaxFrameBytes(): number {
    return Math.min(this.#opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES, MAX_FRAME_BYTES_LIMIT);
  }

  #scheduleRetry(error: unknown): void {
    if (this.#status === 'closed') return;
    const code = error instanceof MirrorstreamError ? error.code : undefined;
    const delay = code && FATAL.has(code) ? null : this.#opts.reconnect.nextRetryDelayMs({ attempt: this.#attempt, lastError: error });
    this.#attempt++;
    if (delay === null) {
      this.#settleWelcome(error instanceof MirrorstreamError ? error : new MirrorstreamError('MS_TRANSPORT_CLOSED', String(error), { cause: error }));
      this.close();
      return;
    }
    this.#setStatus('reconnecting', error instanceof Error ? error.message : String(error));
    if (this.#dialing) return; // the dial under way is the retry
    this.#opts.clock.clearTimeout(this.#retryTimer);
    this.#retryTimer = this.#opts.clock.setTimeout(() => void this.#open('reconnecting'), delay);
  }

  /** Resolve (no error) or reject the pending connect(). */
  #settleWelcome(error?: unknown): void {
    const w = this.#welcome;
    this.#welcome = undefined;
    if (!w) return;
    if (error === undefined) w.resolve();
    else w.reject(error);
  }

  /**
   * The silence watch fired. A link that had its WELCOME is kept, still heard, while the next
   * one is dialed at once (the next gateway URL, if there is one): a gateway that was only
   * stalled speaks again first and the receiver stays (no switch); a dead one is left as soon
   * as the next link is up. A link without WELCOME is dropped, and the retry backs off.
   */
  #gatewaySilent(limitMs: number): void {
    const link = this.#link;
    if (!link) return;
    const why = `no frame from the gateway for ${limitMs} ms`;
    if (this.#welcomed) {
      this.#suspect = true;
      if (this.#dialing) this.#setStatus('reconnecting', why);
      else void this.#open('reconnecting', { gatewaySilent: true }, why);
      return;
    }
    this.#link = undefined;
    link.close('gateway silent');
    this.#scheduleRetry(new MirrorstreamError('MS_TRANSPORT_CLOSED', why, { retryable: true }));
  }

  /** The suspect link spoke again: stay on it (the dial under way is dropped when it resolves). */
  #spokeAgain(): void {
    this.#suspect = false;
    this.#silence.start();
    this.#setStatus('connected', 'the gateway spoke again');
  }

  #onMessage(link: FrameLink, bytes: Uint8Array, channel: LinkChannel): void {
    const decoded = decodeFrame(bytes, this.#maxFrameBytes);
    if (!decoded.ok) {
      this.#protocolFailure(link, decoded.error);
      return;
    }
    this.#silence.heard();
    if (this.#suspect) this.#spokeAgain();
    const f = decoded.frame;
    switch (f.type) {
      case FrameType.WELCOME:
        if (f.version !== PROTOCOL_VERSION) {
          this.#fatal(link, new MirrorstreamError('MS_PROTOCOL_VERSION', `gateway speaks protocol ${f.version}, this SDK ${PROTOCOL_VERSION}`));
          return;
        }
        this.sessionId = f.sessionId;

        // the gateway sends nothing larger than it says; our own cap, if set, still holds
        this.#maxFrameBytes = Math.min(f.maxFrameBytes, this.#opts.maxFrameBytes ?? MAX_FRAME_BYTES_LIMIT, MAX_FRAME_BYTES_LIMIT);
        link.setMaxFrameBytes?.(this.#maxFrameBytes);
        this.#welcomeIntervalMs = f.heartbeatIntervalMs;
        this.#welcomed = true;
        this.#silence.start(this.#limit(undefined));
        this.#attempt = 0;
        this.#setStatus('connected', `session ${f.sessionId}`);
        this.#startReports();
        this.#settleWelcome();
        return;
      case FrameType.HEARTBEAT:
        // echo on the channel it came by: probes on the unreliable channel measure its loss
        link.send(encodeFrame({ type: FrameType.HEARTBEAT_ACK, nonce: f.nonce, sentAt: f.sentAt }), channel === 'data-unreliable' ? channel : 'control');
        // the gateway's promise holds until its next control HEARTBEAT: only that channel keeps them in order
        if (f.cadenceMs !== undefined && channel === 'control') this.#silence.setLimit(this.#limit(f.cadenceMs));
        if (channel === 'control' && this.#status === 'connected') this.#reportIfDue();
        return;
      case FrameType.HEARTBEAT_ACK:
        this.#rtt.echoed(f.sentAt);
        return;
      case FrameType.DATA:
        this.#inbound.data(f, channel === 'data-unreliable');
        return;
      case FrameType.ROLE:
        this.#inbound.role(f.streamId, f.role, f.fromSeq, f.epoch);
        return;
      case FrameType.RESET:
        this.#inbound.reset(f.streamId, f.epoch);
        return;
      case FrameType.GAP:
        this.#inbound.gap({ streamId: f.streamId, from: f.from, to: f.to, reason: f.reason });
        return;
      case FrameType.END:
        this.#inbound.end(f.streamId, f.reason);
        this.emit('end', { streamId: f.streamId, reason: f.reason });
        return;
      case FrameType.GOAWAY:
        this.#goaway(link, f.reason);
        return;
      case FrameType.ERROR: {
        if (this.#status !== 'connected' && f.code.startsWith('MS_FRAME_')) {
          // the gateway cannot read our HELLO: it speaks another protocol, retrying will not help
          this.#fatal(link, new MirrorstreamError('MS_PROTOCOL_VERSION', `gateway could not read our HELLO (${f.code}: ${f.message}); it speaks another protocol version`));
          return;
        }
        const err = new MirrorstreamError(isKnownCode(f.code) ? f.code : 'MS_INTERNAL', `gateway: ${f.message}`, {
          retryable: !FATAL.has(f.code),
        });
        this.emit('error', err);
        this.#link = undefined;
        link.close(`gateway error ${f.code}`);
        this.#scheduleRetry(err);
        return;
      }
      default:
        this.#protocolFailure(link, new ProtocolError('MS_PROTOCOL_STATE', `unexpected frame type ${f.type} from gateway`));
    }
  }

  /**
   * The gateway is going away (a planned restart): send what is still unacked, leave, and dial
   * the next gateway at once (no backoff: nothing failed); it resumes from our positions.
   */
  #goaway(link: FrameLink, reason: string): void {
    this.#inbound.flushAcks();
    this.#link = undefined;
    this.#silence.stop();
    link.close('gateway going away');
    // a GOAWAY before WELCOME still counts as an attempt: a policy with a limit gives up in time
    if (this.#status === 'connected') this.#attempt = 0;
    this.#opts.clock.clearTimeout(this.#retryTimer);
    this.#setStatus('reconnecting', `gateway going away: ${reason}`);
    void this.#open('reconnecting', { nextGateway: true });
  }

  /** Something reconnecting cannot fix (FATAL code): report it, drop the link, stop. */
  #fatal(link: FrameLink, error: MirrorstreamError): void {
    this.emit('error', error);
    this.#link = undefined;
    link.close(error.code);
    this.#scheduleRetry(error);
  }

  #protocolFailure(link: FrameLink, error: ProtocolError): void {
    this.emit('error', error);
    link.send(encodeFrame({ type: FrameType.ERROR, code: error.code, message: error.message }), 'control');
    this.#link = undefined;
    link.close(error.code);
    this.#scheduleRetry(error);
  }

  /**
   * An application listener threw: the SDK keeps going, and says so with an `error` event
   * (MS_LISTENER_ERROR, the thrown value as `cause`), or through the logger when an `error`
   * listener itself threw or nobody listens.
   */
  #listenerFailed(error: unknown, event: keyof ReceiverEvents): void {
    const detail = error instanceof Error ? error.message : String(error);
    if (event !== 'error' && this.listenerCount('error') > 0) {
      this.emit('error', new MirrorstreamError('MS_LISTENER_ERROR', `a '${event}' listener threw: ${detail}`, { cause: error }));
      return;
    }
    this.#opts.logger?.warn(`mirrorstream receiver ${this.endpointId}: a '${event}' listener threw: ${detail}`, error);
  }

  /**
   * RECEIVER_REPORT per stream: what arrived, at what rate, the RTT this side sees and
   * the chunks lost in transit, so the gateway can score the path from both ends. A report
   * that is due goes out with the echo of the gateway's next heartbeat (one turn, back to
   * back), so a gateway with thousands of receivers gets them in the batches its heartbeats
   * went out in, not one wake-up each at random times; a timer sends it if no heartbeat came.
   */
  #startReports(): void {
    const { clock, reportIntervalMs } = this.#opts;
    clock.clearInterval(this.#reportTimer);
    if (reportIntervalMs <= 0) return;
    this.#lastReportAt = clock.now();
    this.#reportTimer = clock.setInterval(() => {
      if (clock.now() - this.#lastReportAt >= 1.5 * reportIntervalMs) void this.#report();
    }, reportIntervalMs);
  }

  /** A heartbeat from the gateway came: a report that is (nearly) due goes with its echo. */
  #reportIfDue(): void {
    const { clock, reportIntervalMs } = this.#opts;
    if (reportIntervalMs > 0 && clock.now() - this.#lastReportAt >= 0.9 * reportIntervalMs) void this.#report();
  }

  async #report(): Promise<void> {
    const link = this.#link;
    if (!link || this.#reporting) return;
    this.#reporting = true;
    try {
      await this.#sendReports(link);
    } finally {
      this.#reporting = false;
    }
  }

  async #sendReports(link: FrameLink): Promise<void> {
    if (!(await this.#rtt.refresh(link, () => link === this.#link))) return;
    const now = this.#opts.clock.now();
    const seconds = Math.max(0.001, (now - this.#lastReportAt) / 1000);
    this.#lastReportAt = now;
    for (const report of this.#inbound.reports(seconds, this.#rtt.ms)) link.send(encodeFrame(report), 'control');
  }

  #setStatus(status: ReceiverStatus, detail: string): void {
    if (this.#status === status && status !== 'reconnecting') return;
    this.#status = status;
    this.emit('status', status, detail);
  }
}

function isKnownCode(code: string): code is MirrorstreamError['code'] {
  return Object.prototype.hasOwnProperty.call(ERROR_CODES, code);
}
