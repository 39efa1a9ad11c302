import net from 'node:net';
import {
  DelayLine,
  ImpairmentModel,
  checkRelayOptions,
  selectDirections,
  validateImpairment,
  type Direction,
  type DirectionSelector,
  type Impairment,
  type RelayOptions,
  type RelayStats,
  type RelayTarget,
} from './impairment.js';

/**
 * What a byte stream can be given. No `lossPct`: dropping bytes from a TCP stream
 * corrupts it instead of emulating loss (the real TCP below would have retransmitted),
 * so the relay refuses it; use UdpRelay for loss. No `reorder` either: a stream is ordered.
 */
export type TcpImpairment = Omit<Impairment, 'lossPct' | 'reorder'>;

export type TcpRelayOptions = Omit<RelayOptions, 'impairment'> & { impairment?: Partial<TcpImpairment> };

export interface TcpRelayStats extends RelayStats {
  /** Accepted connections not yet fully closed. */
  connections: number;
}

/** Bytes in flight (delayed, not rate-limited) per pipe before the sender is paused. */
const MAX_IN_FLIGHT = 16 * 1024 * 1024;

function checkTcpImpairment(partial: unknown): Partial<Impairment> {
  const clean = validateImpairment(partial);
  if (clean.lossPct !== undefined && clean.lossPct !== 0) {
    throw new TypeError(
      'netsim: TcpRelay does not support lossPct: dropping bytes would corrupt the stream; use UdpRelay for loss, or delayMs/rateBytesPerSec/blackhole',
    );
  }
  if (clean.reorder) throw new TypeError('netsim: TcpRelay does not support reorder: a byte stream is always delivered in order');
  return clean;
}

/** Segment size when rate-limited: about 20 ms of link time, so pacing stays smooth. */
function segmentSize(rate: number): number {
  return rate > 0 ? Math.min(16 * 1024, Math.max(1024, Math.floor(rate / 50))) : Infinity;
}

function abort(socket: net.Socket, withReset: boolean): void {
  if (socket.destroyed) return;
  if (withReset && typeof socket.resetAndDestroy === 'function') {
    try {
      socket.resetAndDestroy();
      return;
    } catch {
      // fall through to a plain destroy
    }
  }
  socket.destroy();
}

/**
 * One direction of one connection: bytes from `src` go through the link model and a
 * FIFO delay line to `dst`. Never drops: when the rate queue, the blackhole hold or the
 * destination's buffer is full it pauses `src`, and TCP flow control does the rest.
 */
class Pipe {
  #src: net.Socket;
  #dst: net.Socket;
  #model: ImpairmentModel;
  #line: DelayLine<Buffer>;
  #lineBytes = 0;
  #held: Buffer[] = [];
  #heldBytes = 0;
  #srcEnded = false;
  #finished = false;
  #dead = false;
  #pausedByUs = false;
  #recheck: ReturnType<typeof setTimeout> | undefined;

  constructor(src: net.Socket, dst: net.Socket, model: ImpairmentModel) {
    this.#src = src;
    this.#dst = dst;
    this.#model = model;
    this.#line = new DelayLine((seg) => this.#deliver(seg));
    src.on('data', (chunk: Buffer) => this.#onData(chunk));
    src.on('end', () => {
      this.#srcEnded = true;
      this.#maybeFinish();
    });
    dst.on('drain', () => this.#updateFlow());
  }

  /** Called after every settings change: enter or leave the blackhole hold. */
  settingsChanged(): void {
    if (this.#dead) return;
    if (this.#model.settings.blackhole) {
      // what is still delayed has not "arrived" yet: hold it, ahead of later arrivals
      const pending = this.#line.take();
      this.#lineBytes = 0;
      for (const seg of pending) this.#heldBytes += seg.length;
      this.#held = [...pending, ...this.#held];
    } else if (this.#held.length > 0) {
      const held = this.#held;
      this.#held = [];
      this.#heldBytes = 0;
      for (const seg of held) this.#admit(seg);
    }
    this.#updateFlow();
    this.#maybeFinish();
  }

  /** Stop forwarding for good; later data from `src` is read and discarded. */
  kill(): void {
    if (this.#dead) return;
    this.#dead = true;
    this.#line.close();
    this.#held = [];
    this.#heldBytes = 0;
    this.#lineBytes = 0;
    if (this.#recheck) clearTimeout(this.#recheck);
    if (this.#pausedByUs && !this.#src.destroyed) this.#src.resume();
  }

  #onData(chunk: Buffer): void {
    if (this.#dead) return;
    const size = segmentSize(this.#model.settings.rateBytesPerSec);
    for (let off = 0; off < chunk.length; off += size) {
      const seg = size >= chunk.length ? chunk : chunk.subarray(off, off + size);
      this.#model.recordIn(seg.length);
      if (this.#model.settings.blackhole) {
        this.#model.recordBlackholed(seg.length);
        this.#held.push(seg);
        this.#heldBytes += seg.length;
      } else {
        this.#admit(seg);
      }
    }
    this.#updateFlow();
  }

  #admit(seg: Buffer): void {
    const at = this.#model.schedule(seg.length, false);
    this.#lineBytes += seg.length;
    this.#line.push(at, seg);
  }

  #deliver(seg: Buffer): void {
    this.#lineBytes -= seg.length;
    if (this.#dead || this.#dst.destroyed || this.#dst.writableEnded) return;
    this.#dst.write(seg);
    this.#model.recordForwarded(seg.length);
    this.#updateFlow();
    this.#maybeFinish();
  }

  #maybeFinish(): void {
    if (this.#dead || this.#finished || !this.#srcEnded || this.#line.size > 0 || this.#held.length > 0) return;
    this.#finished = true;
    if (!this.#dst.destroyed) this.#dst.end();
  }

  #updateFlow(): void {
    if (this.#dead || this.#src.destroyed) return;
    const { queueBytes } = this.#model.settings;
    const backlog = this.#model.backlogBytes();
    const full =
      backlog >= queueBytes || this.#heldBytes >= queueBytes || this.#lineBytes >= MAX_IN_FLIGHT || this.#dst.writableNeedDrain;
    if (full && !this.#pausedByUs) {
      this.#pausedByUs = true;
      this.#src.pause();
    } else if (!full && this.#pausedByUs) {
      this.#pausedByUs = false;
      this.#src.resume();
    }
    // the rate queue drains with time, not with events: look again once it is half empty
    if (full && backlog >= queueBytes && !this.#recheck) {
      this.#recheck = setTimeout(() => {
        this.#recheck = undefined;
        this.#updateFlow();
      }, Math.max(1, this.#model.msUntilBacklog(queueBytes / 2)));
    }
  }
}

/** A client connection and its upstream twin. */
class Connection {
  readonly client: net.Socket;
  readonly upstream: net.Socket;
  #pipes: Pipe[];
  #lastError = new Map<net.Socket, string | undefined>();

  constructor(client: net.Socket, target: RelayTarget, models: Record<Direction, ImpairmentModel>, onError: (err: Error) => void, onGone: () => void) {
    this.client = client;
    this.upstream = net.connect({ host: target.host, port: target.port, allowHalfOpen: true });
    const up = new Pipe(client, this.upstream, models.up);
    const down = new Pipe(this.upstream, client, models.down);
    this.#pipes = [up, down];
    // the client was accepted paused: let its bytes in only once there is somewhere to put them
    this.upstream.once('connect', () => client.resume());

    const wire = (socket: net.Socket, other: net.Socket, into: Pipe, from: Pipe): void => {
      socket.on('error', (err: NodeJS.ErrnoException) => {
        this.#lastError.set(socket, err.code);
        onError(err);
      });
      socket.on('close', (hadError) => {
        into.kill(); // nothing can be delivered to a closed socket
        if (hadError) {
          // an abort on one side is passed on as an abort (RST stays RST)
          from.kill();
          abort(other, this.#lastError.get(socket) === 'ECONNRESET' || this.#lastError.get(socket) === 'ECONNREFUSED');
        }
        if (this.client.destroyed && this.upstream.destroyed) {
          for (const p of this.#pipes) p.kill();
          onGone();
        }
      });
    };
    wire(client, this.upstream, down, up);
    wire(this.upstream, client, up, down);
  }

  settingsChanged(): void {
    for (const p of this.#pipes) p.settingsChanged();
  }

  abort(withReset: boolean): void {
    for (const p of this.#pipes) p.kill();
    abort(this.client, withReset);
    abort(this.upstream, withReset);
  }
}

/**
 * TCP impairment relay on loopback: one upstream connection per accepted client, both
 * directions shaped by delay/jitter (order kept), a rate cap with backpressure, and a
 * blackhole that freezes the stream without closing it. See TcpImpairment for why there
 * is no loss.
 */
export class TcpRelay {
  readonly host: string;
  readonly port: number;
  readonly target: Readonly<RelayTarget>;
  #server: net.Server;
  #connections = new Set<Connection>();
  #models: Record<Direction, ImpairmentModel>;
  #onError: (err: Error) => void;
  #closing: Promise<void> | undefined;

  private constructor(server: net.Server, target: RelayTarget, opts: TcpRelayOptions) {
    this.#server = server;
    this.target = Object.freeze({ ...target });
    const address = server.address() as net.AddressInfo;
    this.host = address.address;
    this.port = address.port;
    this.#onError = opts.onError ?? (() => undefined);
    const modelOpts = opts.random ? { random: opts.random } : {};
    this.#models = {
      up: new ImpairmentModel(opts.impairment, modelOpts),
      down: new ImpairmentModel(opts.impairment, modelOpts),
    };
    server.on('error', (err) => this.#onError(err));
    server.on('connection', (socket) => this.#accept(socket));
  }

  /** Listen on `listenHost`:0 (default 127.0.0.1) and relay every connection to `target`. */
  static async start(opts: TcpRelayOptions): Promise<TcpRelay> {
    const { listenHost, target } = checkRelayOptions(opts as RelayOptions);
    if (opts.impairment) checkTcpImpairment(opts.impairment);
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: listenHost, port: 0 }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return new TcpRelay(server, target, opts);
  }

  /** Change the impairment live. Throws a TypeError for lossPct > 0 or reorder: true. */
  set(partial: Partial<TcpImpairment>, direction: DirectionSelector = 'both'): void {
    const clean = checkTcpImpairment(partial);
    for (const d of selectDirections(direction)) this.#models[d].update(clean);
    for (const c of this.#connections) c.settingsChanged();
  }

  impairment(direction: Direction): Impairment {
    selectDirections(direction);
    return this.#models[direction].settings;
  }

  stats(): TcpRelayStats {
    return { up: this.#models.up.stats(), down: this.#models.down.stats(), connections: this.#connections.size };
  }

  /** Abort every current connection with a RST on both sides (plain destroy where RST is unavailable). */
  reset(): void {
    for (const c of this.#connections) c.abort(true);
  }

  /** Stop listening and destroy every connection. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
      for (const c of this.#connections) c.abort(false);
      this.#connections.clear();
      await closed;
    })();
    return this.#closing;
  }

  #accept(socket: net.Socket): void {
    if (this.#closing) {
      socket.destroy();
      return;
    }
    const conn: Connection = new Connection(socket, this.target, this.#models, this.#onError, () => this.#connections.delete(conn));
    this.#connections.add(conn);
  }
}
