import type { DialHint, Dialer, FrameLink } from './link.js';
import { MirrorstreamError } from './protocol/errors.js';

/** One (gateway URL, transport) pair and its dialer. */
export interface Route<T extends string = string> {
  readonly url: string;
  readonly transport: T;
  readonly dial: Dialer;
}

/**
 * Which gateway and transport the receiver dials next. The routes are every (gateway,
 * transport) pair, gateway by gateway in the preferred transport order, and a dial tries
 * them all once, from where the last connection ended:
 * - a lost connection: the next pair, i.e. the same gateway's next transport (a broken
 *   preferred path costs one reconnect, not a connect timeout), then the next gateway;
 * - GOAWAY (`nextGateway`): the next gateway's first transport;
 * - a silent gateway (`gatewaySilent`, the make-before-break dial while its link is kept):
 *   the next gateway too (a dead instance's other transports are dead too), or with only one
 *   gateway, its next transport.
 * A failed round starts over from the first pair. A pair that cannot work here
 * (MS_TRANSPORT_UNAVAILABLE: no library for it, or no path a browser can trust) steps aside:
 * it is not dialed again, and the next connection says so once (`asideNote`). With a `known`
 * map shared by the receivers of one page or process, a later receiver starts with those pairs
 * aside instead of learning it again (a WebTransport ticket and its give-back are two signaling
 * requests each time, and signaling is rate-limited per address).
 */
export class GatewayRotation<T extends string = string> {
  readonly #routes: readonly Route<T>[];
  readonly #urls: readonly string[];
  readonly #routeOf = new WeakMap<FrameLink, number>();
  /** Where the next dial starts. */
  #start = 0;
  /** The route of the connection (the adopted link), if any yet. */
  #current: { at: number; link: FrameLink } | undefined;
  /** Routes that cannot work here, by index: why. */
  readonly #aside = new Map<number, MirrorstreamError>();
  /** Why routes stepped aside, not told yet. */
  #untold: string[] = [];

  readonly #known: Map<string, MirrorstreamError> | undefined;

  constructor(urls: readonly string[], transports: readonly T[], dialerFor: (url: string, transport: T) => Dialer, known?: Map<string, MirrorstreamError>) {
    if (urls.length === 0) throw new TypeError('gatewayUrl: give at least one URL');
    this.#urls = [...urls];
    this.#routes = urls.flatMap((url) => transports.map((transport) => ({ url, transport, dial: dialerFor(url, transport) })));
    this.#known = known;
    this.#routes.forEach((route, at) => {
      const error = known?.get(routeKey(route));
      if (error) this.#stepAside(at, error, ' (learned earlier here)');
    });
  }

  /** The route of the current (or last) connection. */
  get current(): Route<T> | undefined {
    return this.#current && this.#routes[this.#current.at];
  }

  /** A Dialer over every route: the first link that opens, or the last error (MS_TRANSPORT_UNAVAILABLE only if every transport is like that). */
  readonly dial = async (hint?: DialHint): Promise<FrameLink> => {
    if (this.#current && (hint?.nextGateway || hint?.gatewaySilent)) this.#start = this.#after(this.#current.at, hint);
    let lastError: unknown;
    let unavailable: unknown;
    for (let i = 0; i < this.#routes.length; i++) {
      const at = (this.#start + i) % this.#routes.length;
      const route = this.#routes[at] as Route<T>;
      const aside = this.#aside.get(at);
      if (aside) {
        unavailable ??= aside;
        continue;
      }
      try {
        const link = await route.dial();
        this.#routeOf.set(link, at);
        return link;
      } catch (error) {
        // a transport that cannot work here will not come back: report it only if every transport is like that
        if (error instanceof MirrorstreamError && error.code === 'MS_TRANSPORT_UNAVAILABLE') {
          unavailable ??= error;
          this.#stepAside(at, error, '');
          this.#known?.set(routeKey(route), error);
        }
        // a gateway that said when to come back (MS_OVERLOADED's Retry-After) is the one to wait for
        else if (!(retryAfterOf(lastError) > retryAfterOf(error))) lastError = error;
      }
    }
    this.#start = 0;
    throw lastError ?? unavailable;
  };

  #stepAside(at: number, error: MirrorstreamError, how: string): void {
    const route = this.#routes[at] as Route<T>;
    this.#aside.set(at, error);
    this.#untold.push(`${route.transport} at ${route.url} stepped aside${how}: ${error.message}`);
  }

  /** Why routes stepped aside since the last call (each told once), or undefined. */
  asideNote(): string | undefined {
    const note = this.#untold.join('; ');
    this.#untold = [];
    return note || undefined;
  }

  /** `link` (from `dial`) became the connection; only the one taken counts (a replacement may be closed unused). */
  adopted(link: FrameLink): void {
    const at = this.#routeOf.get(link);
    if (at === undefined) return;
    this.#current = { at, link };
    link.on('close', () => {
      if (this.#current?.link === link) this.#start = (at + 1) % this.#routes.length;
    });
  }

  /** Where a dial after leaving route `at` for `hint` starts. */
  #after(at: number, hint: DialHint): number {
    if (hint.gatewaySilent && this.#urls.length === 1) return (at + 1) % this.#routes.length;
    const url = this.#routes[at]?.url ?? '';
    const next = this.#urls[(this.#urls.indexOf(url) + 1) % this.#urls.length];
    return Math.max(0, this.#routes.findIndex((r) => r.url === next));
  }
}

function retryAfterOf(error: unknown): number {
  return error instanceof MirrorstreamError ? (error.retryAfterMs ?? -1) : -1;
}

const routeKey = (route: { transport: string; url: string }): string => `${route.transport} ${route.url}`;
