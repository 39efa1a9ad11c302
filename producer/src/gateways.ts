import { MirrorstreamError, type Clock } from '@mirrorstream/receiver/protocol';
import { IngestLink, type LinkEvents } from './link.js';

export interface GatewaysOptions {
  urls: readonly string[];
  apiKey: string;
  connectTimeoutMs: number;
  /** Between failed connects: initialMs doubling to maxMs, full jitter. */
  backoff: { initialMs: number; maxMs: number };
  clock: Clock;
  random: () => number;
}

export interface GatewaysHooks extends LinkEvents {
  connected(url: string): void;
  connectFailed(url: string, error: MirrorstreamError): void;
  /** The API key is refused: retrying cannot help. */
  unauthorized(error: MirrorstreamError): void;
  /** A connection is up, or connecting ended: what waits may go. */
  up(): void;
}

/**
 * The gateway instances a producer sends to: the connection in use, and the next instance in
 * turn (after a backoff) when it fails or drains. What goes over a connection is the Producer's.
 */
export class Gateways {
  readonly #o: GatewaysOptions;
  readonly #hooks: GatewaysHooks;
  #link: IngestLink | undefined;
  #connecting = false;
  #urlIndex = 0;
  #closed = false;
  connects = 0;

  constructor(options: GatewaysOptions, hooks: GatewaysHooks) {
    this.#o = options;
    this.#hooks = hooks;
  }

  /** The instance in use (undefined while connecting). */
  get url(): string | undefined {
    return this.#link?.url;
  }

  /** Whether `link` is the connection in use. */
  current(link: IngestLink): boolean {
    return this.#link === link;
  }

  /** The connection to send on, or none yet: then one is being opened, and `up` is called when it is. */
  usable(): IngestLink | undefined {
    if (this.#link?.usable) return this.#link;
    this.#link = undefined;
    if (!this.#closed) void this.#connect();
    return undefined;
  }

  /** Send nothing new on `link` (GOAWAY, a closing gateway, a lost connection): the next instance gets it. */
  leave(link: IngestLink): void {
    if (this.#link !== link) return;
    this.#link = undefined;
    this.#urlIndex++;
  }

  /** No more connections: the one in use closes. */
  close(): void {
    this.#closed = true;
    this.#link?.close();
    this.#link = undefined;
  }

  async #connect(): Promise<void> {
    if (this.#connecting) return;
    this.#connecting = true;
    try {
      for (let attempt = 0; !this.#closed; attempt++) {
        const url = this.#o.urls[this.#urlIndex % this.#o.urls.length]!;
        try {
          const link = await IngestLink.open(url, this.#o.apiKey, this.#o.connectTimeoutMs, this.#hooks);
          this.connects++;
          if (this.#closed) link.close();
          else {
            this.#link = link;
            this.#hooks.connected(url);
          }
          break;
        } catch (error) {
          const e = error instanceof MirrorstreamError ? error : new MirrorstreamError('MS_TRANSPORT_CLOSED', String(error), { retryable: true });
          if (e.code === 'MS_UNAUTHORIZED') {
            this.#closed = true;
            return this.#hooks.unauthorized(e);
          }
          this.#hooks.connectFailed(url, e);
          this.#urlIndex++;
          const { initialMs, maxMs } = this.#o.backoff;
          const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 20));
          await new Promise<void>((resolve) => this.#o.clock.setTimeout(resolve, initialMs / 2 + this.#o.random() * (ceiling - initialMs / 2)));
        }
      }
    } finally {
      this.#connecting = false;
    }
    this.#hooks.up();
  }
}
