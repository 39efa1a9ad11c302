import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import {
  DelayLine,
  ImpairmentModel,
  checkRelayOptions,
  isLoopback,
  selectDirections,
  validateImpairment,
  type Direction,
  type DirectionSelector,
  type Impairment,
  type RelayOptions,
  type RelayStats,
  type RelayTarget,
} from './impairment.js';

export interface UdpRelayStats extends RelayStats {
  /** Distinct client address:port pairs seen, each with its own upstream socket. */
  clients: number;
}

interface Client {
  readonly address: string;
  readonly port: number;
  /** Bound to the relay's own address (loopback, or the machine address it listens on):0; the target sees this socket as the client, and answers to it. */
  readonly upstream: dgram.Socket;
}

interface Datagram {
  readonly msg: Buffer;
  readonly client: Client;
}

function socketType(host: string): dgram.SocketType {
  return isIPv6(host) ? 'udp6' : 'udp4';
}

function bindAsync(socket: dgram.Socket, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    socket.once('error', onError);
    socket.bind({ address, port: 0 }, () => {
      socket.off('error', onError);
      resolve();
    });
  });
}

function closeAsync(socket: dgram.Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      socket.close(() => resolve());
    } catch {
      resolve(); // already closed
    }
  });
}

/**
 * UDP impairment relay on loopback. Each distinct client gets a dedicated upstream
 * socket, so the target can tell clients apart (several 5-tuples, e.g. ICE pairs) and
 * its replies find their way back to the right client.
 */
export class UdpRelay {
  readonly host: string;
  readonly port: number;
  readonly target: Readonly<RelayTarget>;
  #front: dgram.Socket;
  #clients = new Map<string, Client>();
  #models: Record<Direction, ImpairmentModel>;
  #lines: Record<Direction, DelayLine<Datagram>>;
  #onError: (err: Error) => void;
  #closing: Promise<void> | undefined;

  private constructor(front: dgram.Socket, target: RelayTarget, opts: RelayOptions) {
    this.#front = front;
    this.target = Object.freeze({ ...target });
    const address = front.address();
    this.host = address.address;
    this.port = address.port;
    this.#onError = opts.onError ?? (() => undefined);
    const modelOpts = opts.random ? { random: opts.random } : {};
    this.#models = {
      up: new ImpairmentModel(opts.impairment, modelOpts),
      down: new ImpairmentModel(opts.impairment, modelOpts),
    };
    this.#lines = {
      up: new DelayLine((d) => this.#sendUp(d)),
      down: new DelayLine((d) => this.#sendDown(d)),
    };
    front.on('error', (err) => this.#onError(err));
    front.on('message', (msg, rinfo) => this.#fromClient(msg, rinfo));
  }

  /** Bind on `listenHost`:0 (default 127.0.0.1) and relay to `target`. */
  static async start(opts: RelayOptions): Promise<UdpRelay> {
    const { listenHost, target } = checkRelayOptions(opts);
    if (opts.impairment) validateImpairment(opts.impairment);
    const front = dgram.createSocket(socketType(listenHost));
    await bindAsync(front, listenHost);
    return new UdpRelay(front, target, opts);
  }

  /** Change the impairment live; applies to packets arriving from now on. */
  set(partial: Partial<Impairment>, direction: DirectionSelector = 'both'): void {
    const clean = validateImpairment(partial);
    for (const d of selectDirections(direction)) this.#models[d].update(clean);
  }

  /** Current settings of one direction. */
  impairment(direction: Direction): Impairment {
    selectDirections(direction);
    return this.#models[direction].settings;
  }

  stats(): UdpRelayStats {
    return { up: this.#models.up.stats(), down: this.#models.down.stats(), clients: this.#clients.size };
  }

  /** Close every socket and drop whatever is still delayed. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#lines.up.close();
      this.#lines.down.close();
      const sockets = [this.#front, ...[...this.#clients.values()].map((c) => c.upstream)];
      this.#clients.clear();
      await Promise.all(sockets.map(closeAsync));
    })();
    return this.#closing;
  }

  #fromClient(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (this.#closing) return;
    const key = `${rinfo.address}|${rinfo.port}`;
    let client = this.#clients.get(key);
    if (!client) {
      client = this.#newClient(rinfo.address, rinfo.port);
      this.#clients.set(key, client);
    }
    const verdict = this.#models.up.offer(msg.length);
    if (verdict.kind === 'forward') this.#lines.up.push(verdict.at, { msg, client });
  }

  #newClient(address: string, port: number): Client {
    const upstream = dgram.createSocket(socketType(this.target.host));
    const client: Client = { address, port, upstream };
    upstream.on('error', (err) => this.#onError(err));
    upstream.on('message', (msg, rinfo) => {
      // only the target's answers go back: anything else reaching this port is not ours to relay
      if (this.#closing || rinfo.port !== this.target.port || rinfo.address !== this.target.host) return;
      const verdict = this.#models.down.offer(msg.length);
      if (verdict.kind === 'forward') this.#lines.down.push(verdict.at, { msg, client });
    });
    // the target sees the client at the relay's own address: a browser checks the address a
    // STUN answer maps it to, and Firefox rejects a loopback one for its non-loopback candidate
    // (sends issued while binding are queued by dgram, so no await is needed here)
    upstream.bind({ address: isLoopback(this.host) ? (isIPv6(this.target.host) ? '::1' : '127.0.0.1') : this.host, port: 0 });
    return client;
  }

  #sendUp({ msg, client }: Datagram): void {
    this.#models.up.recordForwarded(msg.length);
    this.#send(client.upstream, msg, this.target.port, this.target.host);
  }

  #sendDown({ msg, client }: Datagram): void {
    this.#models.down.recordForwarded(msg.length);
    this.#send(this.#front, msg, client.port, client.address);
  }

  #send(socket: dgram.Socket, msg: Buffer, port: number, host: string): void {
    try {
      socket.send(msg, port, host, (err) => {
        if (err) this.#onError(err);
      });
    } catch (err) {
      this.#onError(err as Error); // socket closed under us
    }
  }
}
