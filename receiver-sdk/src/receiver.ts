import { InboundStreams } from './inbound.js';
import { Lifecycle, isFatal } from './lifecycle.js';
import type { FrameLink, LinkChannel } from './link.js';
import { ExponentialBackoff } from './link.js';
import { RealClock, type Clock } from './protocol/clock.js';
import { decodeFrame } from './protocol/decode.js';
import { TypedEmitter } from './protocol/emitter.js';
import { ERROR_CODES, MirrorstreamError, ProtocolError } from './protocol/errors.js';
import { DEFAULT_MAX_FRAME_BYTES, encodeFrame, FrameType, MAX_FRAME_BYTES_LIMIT } from './protocol/frames.js';
import { PROTOCOL_VERSION, SDK_VERSION } from './protocol/version.js';
import { ReceiverReports } from './reports.js';
import { silenceLimitMs, SilenceWatch } from './silence-watch.js';

export type { Chunk, EpochReset, Gap, RoleChange } from './inbound.js';

export type { ReceiverCoreOptions, ReceiverEvents, ReceiverLogger, ReceiverStatus } from './receiver-types.js';
import type { ReceiverCoreOptions, ReceiverEvents, ReceiverStatus } from './receiver-types.js';

/**
 * The receiver, independent of the transport: the protocol on the current link (HELLO with
 * resume positions and their epochs, WELCOME, heartbeat echo, GOAWAY, ERROR) and the gateway
 * silence watch. Where the connection is and how it moves (dial, leave, retry, close) is the
 * Lifecycle's; ordering, acks and epochs per stream are InboundStreams'; reports are
 * ReceiverReports'.
 */
export class ReceiverCore extends TypedEmitter<ReceiverEvents> {
  readonly endpointId: string;
  sessionId: string | undefined;
  readonly #opts: Pick<ReceiverCoreOptions, 'gatewayTimeoutMs' | 'maxFrameBytes' | 'logger'> & { clock: Clock; transports: readonly string[] };
  readonly #lifecycle: Lifecycle;
  readonly #inbound: InboundStreams;
  readonly #reports: ReceiverReports;
  readonly #silence: SilenceWatch;
  /** WELCOME's longest heartbeat interval (the silence limit's ceiling); 0 before the first. */
  /**
   * WELCOME's longest heartbeat interval; until a gateway named one, its default (1 s), so the
   * silence limit before the first WELCOME is 4 s. At 0 it was 1 s, and a gateway handshaking
   * 50 receivers at once on 2 cores left 7 of them without WELCOME for 1 s (a CI run): they
   * took it for silence and dialed again.
   */
  #welcomeIntervalMs = 1_000;
  #maxFrameBytes: number;

  constructor(options: ReceiverCoreOptions) {
    super();
    this.endpointId = options.endpointId;
    const clock = options.clock ?? new RealClock();
    this.#opts = { clock, transports: options.transports ?? [], gatewayTimeoutMs: options.gatewayTimeoutMs, maxFrameBytes: options.maxFrameBytes, logger: options.logger };
    this.#maxFrameBytes = this.#initialMaxFrameBytes();
    this.onListenerError = (error, event) => this.#listenerFailed(error, event);
    this.#lifecycle = new Lifecycle(
      { clock, dial: options.dial, reconnect: options.reconnect ?? new ExponentialBackoff(), ...(options.fatalCodes ? { fatalCodes: new Set(options.fatalCodes) } : {}) },
      {
        adopt: (link) => this.#adopt(link),
        leave: (_link, flush) => this.#leave(flush),
        status: (status, detail) => this.#statusChanged(status, detail),
      },
    );
    this.#inbound = new InboundStreams(
      { clock, ackEveryChunks: options.ackEveryChunks ?? 16, ackDelayMs: options.ackDelayMs ?? 20, reorderLimit: options.reorderLimit ?? 4096 },
      {
        chunk: (c) => this.emit('chunk', c),
        gap: (g) => this.emit('gap', g),
        role: (r) => this.emit('role', r),
        reset: (r) => this.emit('reset', r),
        send: (bytes) => this.#lifecycle.link?.send(bytes, 'control') ?? false,
      },
    );
    this.#reports = new ReceiverReports(clock, options.reportIntervalMs ?? 1_000, this.#inbound);
    this.#silence = new SilenceWatch(clock, (limitMs) => this.#lifecycle.drop({ kind: 'silent', limitMs }));
  }

  get status(): ReceiverStatus {
    return this.#lifecycle.status;
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
    return this.#lifecycle.connect();
  }

  /** Flush acks, close the link, stop reconnecting. */
  close(): void {
    this.#lifecycle.close();
  }

  /** A dialed link is now the connection (one dialed while a silent one was kept may be dropped unused). */
  protected linkAdopted(_link: FrameLink): void {}

  /** The Lifecycle took `link`: a new connection, HELLO with where each stream resumes. */
  #adopt(link: FrameLink): void {
    this.linkAdopted(link);
    this.#inbound.newConnection();
    this.#maxFrameBytes = this.#initialMaxFrameBytes();
    link.on('message', (bytes, channel) => {
      if (this.#lifecycle.link === link) this.#onMessage(link, bytes, channel);
    });
    // until WELCOME (and a cadence) says otherwise, the limit WELCOME allowed last time
    this.#silence.start(this.#limit(undefined));
    void link.send(
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
  }

  /** The Lifecycle leaves the current link: what is unacked goes out on it first if it still works. */
  #leave(flush: boolean): void {
    if (flush) this.#inbound.flushAcks();
    this.#silence.stop();
    this.#reports.stop();
  }

  #statusChanged(status: ReceiverStatus, detail: string): void {
    if (status === 'closed') this.#inbound.stop();
    this.emit('status', status, this.statusDetail(status, detail));
  }

  /** A subclass may add to a status's detail (the Receiver: a transport that stepped aside). */
  protected statusDetail(_status: ReceiverStatus, detail: string): string {
    return detail;
  }

  /** Our own option, else what the gateway's cadence (or WELCOME) allows (silence-watch.ts). */
  #limit(cadenceMs: number | undefined): number {
    return this.#opts.gatewayTimeoutMs ?? silenceLimitMs(cadenceMs, this.#welcomeIntervalMs);
  }

  #initialMaxFrameBytes(): number {
    return Math.min(this.#opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES, MAX_FRAME_BYTES_LIMIT);
  }

  #onMessage(link: FrameLink, bytes: Uint8Array, channel: LinkChannel): void {
    const decoded = decodeFrame(bytes, this.#maxFrameBytes);
    if (!decoded.ok) {
      this.#protocolFailure(link, decoded.error);
      return;
    }
    this.#silence.heard();
    // the silent gateway spoke again: stay on it (the replacement is closed unused when it lands)
    if (this.#lifecycle.spoke()) this.#silence.start();
    const f = decoded.frame;
    switch (f.type) {
      case FrameType.WELCOME:
        if (f.version !== PROTOCOL_VERSION) {
          this.#failed(new MirrorstreamError('MS_PROTOCOL_VERSION', `gateway speaks protocol ${f.version}, this SDK ${PROTOCOL_VERSION}`));
          return;
        }
        this.sessionId = f.sessionId;
        // the gateway sends nothing larger than it says; our own cap, if set, still holds
        this.#maxFrameBytes = Math.min(f.maxFrameBytes, this.#opts.maxFrameBytes ?? MAX_FRAME_BYTES_LIMIT, MAX_FRAME_BYTES_LIMIT);
        link.setMaxFrameBytes?.(this.#maxFrameBytes);
        this.#welcomeIntervalMs = f.heartbeatIntervalMs;
        this.#silence.start(this.#limit(undefined));
        this.#reports.start(link);
        this.#lifecycle.welcome(`session ${f.sessionId}`);
        return;
      case FrameType.HEARTBEAT:
        // echo on the channel it came by: probes on the unreliable channel measure its loss
        void link.send(encodeFrame({ type: FrameType.HEARTBEAT_ACK, nonce: f.nonce, sentAt: f.sentAt }), channel === 'data-unreliable' ? channel : 'control');
        // the gateway's promise holds until its next control HEARTBEAT: only that channel keeps them in order
        if (channel !== 'control') return;
        if (f.cadenceMs !== undefined) this.#silence.setLimit(this.#limit(f.cadenceMs));
        if (f.reportMs !== undefined) this.#reports.told(f.reportMs);
        this.#reports.heartbeat();
        return;
      case FrameType.HEARTBEAT_ACK:
        this.#reports.echoed(f.sentAt);
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
        // a planned restart: acks go out on this link, the next gateway is dialed at once and resumes from our positions
        this.#lifecycle.drop({ kind: 'goaway', reason: f.reason });
        return;
      case FrameType.ERROR:
        if (this.#lifecycle.state === 'handshake' && f.code.startsWith('MS_FRAME_')) {
          // the gateway cannot read our HELLO: it speaks another protocol, retrying will not help
          this.#failed(new MirrorstreamError('MS_PROTOCOL_VERSION', `gateway could not read our HELLO (${f.code}: ${f.message}); it speaks another protocol version`));
          return;
        }
        this.#failed(new MirrorstreamError(isKnownCode(f.code) ? f.code : 'MS_INTERNAL', `gateway: ${f.message}`, { retryable: !isFatal(f.code) }));
        return;
      default:
        this.#protocolFailure(link, new ProtocolError('MS_PROTOCOL_STATE', `unexpected frame type ${f.type} from gateway`));
    }
  }

  /** Report the error, leave the link: the Lifecycle retries, or stops when the code says retrying cannot help. */
  #failed(error: MirrorstreamError): void {
    this.emit('error', error);
    this.#lifecycle.drop({ kind: 'failed', error });
  }

  /** A frame we cannot take: tell the gateway why before leaving. */
  #protocolFailure(link: FrameLink, error: ProtocolError): void {
    void link.send(encodeFrame({ type: FrameType.ERROR, code: error.code, message: error.message }), 'control');
    this.#failed(error);
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
}

function isKnownCode(code: string): code is MirrorstreamError['code'] {
  return Object.prototype.hasOwnProperty.call(ERROR_CODES, code);
}
