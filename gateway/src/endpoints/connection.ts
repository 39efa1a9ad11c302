import {
  decodeFrame,
  encodeFrame,
  FRAME_TYPE_NAMES,
  FrameType,
  HEARTBEAT_CADENCE_SINCE,
  isSupportedSdk,
  PROTOCOL_VERSION,
  releaseLine,
  REPORT_CADENCE_SINCE,
  ProtocolError,
  SDK_VERSION,
  TypedEmitter,
  versionAtLeast,
  type AckFrame,
  type Channel,
  type Clock,
  type HelloFrame,
  type ReceiverReportFrame as ReportFrame,
} from '@mirrorstream/receiver/protocol';
import { nextDue, phaseOf } from './timer-phase.js';
import type { Logger } from 'pino';
import type { Timer, TimerQueue } from '../core/timers.js';
import type { Transport } from '../transports/transport.js';

export type ConnectionEvents = {
  hello: [hello: HelloFrame];
  /** A valid frame arrived after the handshake (the endpoint is alive), before its own event. */
  heard: [at: number];
  ack: [ack: AckFrame];
  heartbeatAck: [rttMs: number, at: number];
  /** A probe came due: its nonce, or undefined when it could not be sent (a full or closed channel). */
  probe: [nonce: number | undefined, at: number];
  probeAck: [nonce: number, at: number];
  report: [report: ReportFrame];
  drain: [];
  close: [reason: string];
};

/**
 * After an ERROR, how long the transport stays open for it to arrive: a receiver closes on
 * ERROR (then we close at once); one that does not is closed after this.
 */
export const ERROR_LINGER_MS = 1_000;

export interface ConnectionOptions {
  transport: Transport;
  /** The endpoint the signaling layer authenticated; HELLO must name the same one. */
  endpointId: string;
  clock: Clock;
  /** Heartbeats, probes and the HELLO deadline run on the gateway's one timer queue. */
  timers: TimerQueue;
  log: Logger;
  maxFrameBytes: number;
  /** Heartbeat interval at first; the scheduler sets it per endpoint afterwards. */
  heartbeatIntervalMs: number;
  /** The longest heartbeat interval this connection may get, told in WELCOME (the ceiling of the receiver's silence limit; HEARTBEAT's cadence sets it). */
  maxHeartbeatIntervalMs: number;
  probeIntervalMs: number;
  /** How often the receiver is asked to report at first (SDKs that read it); the scheduler sets it per endpoint afterwards. */
  reportIntervalMs: number;
  helloTimeoutMs: number;
  sessionId: string;
}

/**
 * One receiver connection over any transport: the HELLO/WELCOME handshake, heartbeats,
 * and frame validation. Bad input is answered with an ERROR frame and a close; it never
 * throws into the gateway.
 */
export class Connection extends TypedEmitter<ConnectionEvents> {
  readonly endpointId: string;
  readonly sessionId: string;
  readonly transport: Transport;
  #state: 'hello' | 'open' | 'closed' = 'hello';
  readonly #opts: ConnectionOptions;
  readonly #heartbeatTimer: Timer;
  readonly #probeTimer: Timer;
  readonly #helloTimer: Timer;
  /** Heartbeat nonces are even, probe nonces odd: an echo tells which it answers by itself. */
  #heartbeatNonce = 0;
  #probeNonce = 1;
  #probeIntervalMs: number;
  #heartbeatIntervalMs: number;
  #lastHeartbeatAt = 0;
  #lastProbeAt = 0;
  /** Where in each interval this connection's heartbeats and probes go (nextDue). */
  readonly #phase: number;
  /** The receiver's SDK reads HEARTBEAT's cadence (it said its version in HELLO). */
  #tellsCadence = false;
  /** The receiver's SDK reads HEARTBEAT's report interval. */
  #tellsReports = false;
  #reportIntervalMs: number;
  /** The report interval the last control HEARTBEAT told (undefined: none yet). */
  #toldReportMs: number | undefined;
  /** The cadence the receiver may hold us to (undefined: none told yet; WELCOME's bound holds). */
  #owedMs: number | undefined;
  /** The newest cadence told, and the heartbeat that told it: once that is echoed, the receiver holds it. */
  #told: { nonce: number; cadenceMs: number } | undefined;
  heartbeatsSent = 0;
  heartbeatsAcked = 0;

  constructor(opts: ConnectionOptions) {
    super();
    this.#opts = opts;
    this.endpointId = opts.endpointId;
    this.sessionId = opts.sessionId;
    this.transport = opts.transport;
    this.#probeIntervalMs = opts.probeIntervalMs;
    this.#heartbeatIntervalMs = opts.heartbeatIntervalMs;
    this.#reportIntervalMs = opts.reportIntervalMs;
    this.#phase = phaseOf(opts.endpointId);
    this.#heartbeatTimer = opts.timers.timer((now) => this.#sendHeartbeat(now));
    this.#probeTimer = opts.timers.timer((now) => this.#sendProbe(now));
    this.#helloTimer = opts.timers.timer(() => this.fail(new ProtocolError('MS_HELLO_TIMEOUT', `no valid HELLO within ${opts.helloTimeoutMs} ms`)));
    this.onListenerError = (error, event) => opts.log.error({ err: error, event, endpointId: this.endpointId }, 'connection listener failed');
    opts.transport.on('message', (bytes) => this.#onMessage(bytes));
    opts.transport.on('drain', () => this.emit('drain'));
    opts.transport.on('close', (reason) => this.#onClosed(reason));
    opts.transport.on('error', (error) => opts.log.warn({ err: error, endpointId: this.endpointId }, 'transport error'));
    this.#helloTimer.after(opts.helloTimeoutMs);
    if (opts.transport.isClosed) queueMicrotask(() => this.#onClosed('closed before open'));
  }

  get isOpen(): boolean {
    return this.#state === 'open';
  }

  get bufferedAmount(): number {
    return this.transport.bufferedAmount;
  }

  get highWaterBytes(): number | undefined {
    return this.transport.highWaterBytes;
  }

  send(bytes: Uint8Array, channel: Channel): boolean {
    if (this.#state !== 'open') return false;
    return this.transport.send(bytes, channel);
  }

  /** Complete the handshake: WELCOME, then heartbeats start. */
  welcome(): void {
    if (this.#state !== 'open') return;
    this.transport.send(
      encodeFrame({
        type: FrameType.WELCOME,
        version: PROTOCOL_VERSION,
        sessionId: this.sessionId,
        heartbeatIntervalMs: Math.max(this.#opts.maxHeartbeatIntervalMs, this.#heartbeatIntervalMs),
        maxFrameBytes: this.#opts.maxFrameBytes,
      }),
      'control',
    );
    const now = this.#opts.clock.now();
    this.#lastProbeAt = now;
    this.#probeTimer.at(nextDue(now, this.#probeEveryMs, this.#phase));
    // tells no cadence: the scheduler sets this connection's rates right after, and a faster
    // one told now would have to be kept until the receiver heard the slower one
    this.#sendHeartbeat(now, false);
  }

  /**
   * Answer a protocol violation with ERROR and close. The gateway is done with the
   * connection at once (nothing more is read or sent); the transport closes once the
   * receiver closed on the ERROR, or after ERROR_LINGER_MS, so the ERROR is not cut off.
   */
  fail(error: ProtocolError): void {
    if (this.#state === 'closed') return;
    this.#opts.log.warn({ code: error.code, endpointId: this.endpointId }, `closing connection: ${error.message}`);
    const { transport, clock } = this.#opts;
    transport.send(encodeFrame({ type: FrameType.ERROR, code: error.code, message: error.message }), 'control');
    this.#onClosed(error.code);
    if (transport.isClosed) return;
    const linger = clock.setTimeout(() => transport.close(error.code), ERROR_LINGER_MS);
    void transport.closed.then(() => clock.clearTimeout(linger));
  }

  /**
   * This gateway is going away: GOAWAY tells the receiver to resume at another one now. It
   * goes on the ordered data channel, behind every DATA and END already sent, so the receiver
   * has them (and acks them) before it leaves. The gateway is done with the connection at
   * once; the transport closes once the receiver closed it, or after ERROR_LINGER_MS, so
   * nothing before GOAWAY is cut off. Resolves then.
   */
  async goaway(reason: string): Promise<void> {
    if (this.#state === 'closed') return;
    const { transport, clock } = this.#opts;
    transport.send(encodeFrame({ type: FrameType.GOAWAY, reason }), 'data');
    this.#onClosed(`goaway: ${reason}`);
    if (transport.isClosed) return;
    const linger = clock.setTimeout(() => transport.close(reason), ERROR_LINGER_MS);
    await transport.closed;
    clock.clearTimeout(linger);
  }

  close(reason: string): void {
    if (this.#state === 'closed') return;
    this.transport.close(reason);
    this.#onClosed(reason);
  }

  /** The probe interval the scheduler asked for (probes may run faster while a slower cadence is being told). */
  get probeIntervalMs(): number {
    return this.#probeIntervalMs;
  }

  get heartbeatIntervalMs(): number {
    return this.#heartbeatIntervalMs;
  }

  /**
   * How often the receiver reports, as told to it (an SDK that predates REPORT_CADENCE_SINCE
   * reports at its own interval, 1 s by default, whatever this says).
   */
  get reportIntervalMs(): number {
    return this.#reportIntervalMs;
  }

  /** Ask the receiver for reports this often from now on: told at once, in this turn (the scheduler's choice, like the probe rate). */
  setReportInterval(ms: number): void {
    if (ms === this.#reportIntervalMs) return;
    this.#reportIntervalMs = ms;
    if (this.#state === 'open' && this.#tellsReports && this.#toldReportMs !== undefined && this.#toldReportMs !== ms) this.#heartbeatTimer.at(this.#opts.clock.now());
  }

  /** Probe this often from now on (the scheduler probes fast only where a decision needs it). */
  setProbeInterval(ms: number): void {
    if (ms === this.#probeIntervalMs) return;
    const before = this.#probeEveryMs;
    this.#probeIntervalMs = ms;
    this.#ratesChanged(before);
  }

  /** Heartbeat this often from now on (the scheduler's choice, like the probe rate). */
  setHeartbeatInterval(ms: number): void {
    if (ms === this.#heartbeatIntervalMs) return;
    const before = this.#probeEveryMs;
    this.#heartbeatIntervalMs = ms;
    if (this.#state === 'open') this.#heartbeatTimer.at(nextDue(this.#lastHeartbeatAt, ms, this.#phase));
    this.#ratesChanged(before);
  }

  /**
   * What this connection promises the receiver (HEARTBEAT's cadence): a HEARTBEAT at least this
   * often, probe or heartbeat; the receiver's silence limit follows it (SDK: 4 ×, at least 300 ms).
   */
  get #cadenceMs(): number {
    return Math.min(this.#probeIntervalMs, this.#heartbeatIntervalMs);
  }

  /**
   * The probe interval in force: the scheduler's, but never slower than a cadence the receiver
   * may still hold us to. A slower cadence is told in a heartbeat sent at once and kept to until
   * that heartbeat is echoed (the receiver then holds the new one, about one RTT later), so a
   * slowdown never looks like a dead gateway.
   */
  get #probeEveryMs(): number {
    const owed = this.#owedMs;
    return owed !== undefined && owed < this.#heartbeatIntervalMs ? Math.min(this.#probeIntervalMs, owed) : this.#probeIntervalMs;
  }

  /**
   * The scheduler changed a rate (the probe interval in force was `before`): the next probe
   * moves with it, and a slower cadence than we owe is told at once (in this turn of the timer
   * queue, after the scheduler set both rates).
   */
  #ratesChanged(before: number): void {
    if (this.#state !== 'open') return;
    const owed = this.#owedMs;
    if (this.#tellsCadence && owed !== undefined && this.#cadenceMs > owed && this.#told?.cadenceMs !== this.#cadenceMs) {
      this.#heartbeatTimer.at(this.#opts.clock.now());
    }
    this.#reprobe(before);
  }

  /** The probe interval in force changed from `before`: the next probe moves with it. */
  #reprobe(before: number): void {
    if (this.#state === 'open' && this.#probeEveryMs !== before) this.#probeTimer.at(nextDue(this.#lastProbeAt, this.#probeEveryMs, this.#phase));
  }

  #sendHeartbeat(now: number, tellCadence = this.#tellsCadence): void {
    if (this.#state !== 'open') return;
    this.#lastHeartbeatAt = now;
    this.#heartbeatTimer.at(nextDue(now, this.#heartbeatIntervalMs, this.#phase));
    this.heartbeatsSent++;
    const nonce = (this.#heartbeatNonce = (this.#heartbeatNonce + 2) % 2 ** 32);
    const cadenceMs = tellCadence ? this.#cadenceMs : undefined;
    if (cadenceMs !== undefined) {
      this.#told = { nonce, cadenceMs };
      this.#owedMs = Math.min(this.#owedMs ?? cadenceMs, cadenceMs);
    }
    // the report interval rides with the cadence (the wire has no place for it alone)
    const reportMs = cadenceMs !== undefined && this.#tellsReports ? this.#reportIntervalMs : undefined;
    if (reportMs !== undefined) this.#toldReportMs = reportMs;
    // stamped when it goes out, not when its batch came due: the RTT is the path's, not the batch's
    const sentAt = this.#opts.clock.now();
    this.transport.send(
      encodeFrame({ type: FrameType.HEARTBEAT, nonce, sentAt, ...(cadenceMs === undefined ? {} : { cadenceMs }), ...(reportMs === undefined ? {} : { reportMs }) }),
      'control',
    );
  }

  /**
   * The heartbeat that told the newest cadence was echoed: that cadence is what we owe now.
   * (Only the newest: with an RTT above the heartbeat interval we keep the fastest told.)
   */
  #cadenceHeard(nonce: number): void {
    if (this.#told?.nonce !== nonce || this.#owedMs === this.#told.cadenceMs) return;
    const before = this.#probeEveryMs;
    this.#owedMs = this.#told.cadenceMs;
    this.#reprobe(before);
  }

  /** Probes ride the unreliable channel: a lost one is a lost packet, not a retransmission. */
  #sendProbe(now: number): void {
    if (this.#state !== 'open') return;
    this.#lastProbeAt = now;
    this.#probeTimer.at(nextDue(now, this.#probeEveryMs, this.#phase));
    const nonce = (this.#probeNonce = (this.#probeNonce + 2) % 2 ** 32);
    const sentAt = this.#opts.clock.now();
    const sent = this.transport.send(encodeFrame({ type: FrameType.HEARTBEAT, nonce, sentAt }), 'data-unreliable');
    this.emit('probe', sent ? nonce : undefined, sentAt);
  }

  #onMessage(bytes: Uint8Array): void {
    if (this.#state === 'closed') return;
    const decoded = decodeFrame(bytes, this.#opts.maxFrameBytes);
    if (!decoded.ok) {
      this.fail(decoded.error);
      return;
    }
    const frame = decoded.frame;
    if (this.#state === 'hello') {
      if (frame.type !== FrameType.HELLO) {
        this.fail(new ProtocolError('MS_PROTOCOL_STATE', `expected HELLO, got ${FRAME_TYPE_NAMES[frame.type]}`));
        return;
      }
      if (frame.version !== PROTOCOL_VERSION) {
        this.fail(new ProtocolError('MS_PROTOCOL_VERSION', `protocol ${frame.version} not supported (gateway speaks ${PROTOCOL_VERSION})`));
        return;
      }
      if (!isSupportedSdk(frame.sdkVersion)) {
        this.fail(new ProtocolError('MS_PROTOCOL_VERSION', `receiver SDK ${JSON.stringify(frame.sdkVersion.slice(0, 40))} not supported (gateway speaks SDK ${releaseLine(SDK_VERSION)}.x)`));
        return;
      }
      if (frame.endpointId !== this.endpointId) {
        this.fail(new ProtocolError('MS_UNAUTHORIZED', `HELLO names ${frame.endpointId}, connection is authorized for ${this.endpointId}`));
        return;
      }
      this.#helloTimer.cancel();
      this.#tellsCadence = versionAtLeast(frame.sdkVersion, HEARTBEAT_CADENCE_SINCE);
      this.#tellsReports = versionAtLeast(frame.sdkVersion, REPORT_CADENCE_SINCE);
      this.#state = 'open';
      this.emit('hello', frame);
      return;
    }
    this.emit('heard', this.#opts.clock.now());
    switch (frame.type) {
      case FrameType.ACK:
        this.emit('ack', frame);
        return;
      case FrameType.HEARTBEAT:
        this.transport.send(encodeFrame({ type: FrameType.HEARTBEAT_ACK, nonce: frame.nonce, sentAt: frame.sentAt }), 'control');
        return;
      case FrameType.HEARTBEAT_ACK: {
        const now = this.#opts.clock.now();
        if (frame.nonce % 2 === 1) {
          this.emit('probeAck', frame.nonce, now);
          return;
        }
        this.heartbeatsAcked++;
        this.#cadenceHeard(frame.nonce);
        this.emit('heartbeatAck', Math.max(0, now - frame.sentAt), now);
        return;
      }
      case FrameType.RECEIVER_REPORT:
        this.emit('report', frame);
        return;
      case FrameType.ERROR:
        this.#opts.log.warn({ endpointId: this.endpointId, code: frame.code }, `receiver sent ERROR: ${frame.message}`);
        this.close(`receiver error ${frame.code}`);
        return;
      default:
        this.fail(new ProtocolError('MS_PROTOCOL_STATE', `${FRAME_TYPE_NAMES[frame.type]} is not sent by receivers`));
    }
  }

  #onClosed(reason: string): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#helloTimer.cancel();
    this.#heartbeatTimer.cancel();
    this.#probeTimer.cancel();
    this.emit('close', reason);
  }
}
