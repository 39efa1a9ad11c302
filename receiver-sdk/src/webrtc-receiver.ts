import type { DialHint, Dialer, FrameLink } from './link.js';
import { RealClock } from './protocol/clock.js';
import { MirrorstreamError } from './protocol/errors.js';
import { ReceiverCore, type ReceiverCoreOptions } from './receiver.js';
import { webrtcDialer, type WebRtcDialOptions } from './transports/webrtc.js';
import { webtransportDialer, type WebTransportChoice, type WebTransportCtor, type WebTransportTicket } from './transports/webtransport.js';

export type TransportName = 'webtransport' | 'webrtc';

type Current = { transport: TransportName | undefined; gatewayUrl: string | undefined };

export interface ReceiverOptions extends Omit<ReceiverCoreOptions, 'dial'> {
  /**
   * Base URL of the gateway's HTTP API, e.g. `http://127.0.0.1:8080`, or the URLs of several
   * gateway instances: when a connection is lost the receiver dials the next one and
   * resumes there from its last seq (same epoch with a shared durable log).
   */
  gatewayUrl: string | readonly string[];
  /** Endpoint token from `POST /v1/endpoints/:id/token`, or a function returning a fresh one. */
  token: string | (() => Promise<string>);
  /**
   * Transports in order of preference (default `['webrtc']`). Each connection attempt
   * tries them in this order, so after the preferred one fails the receiver continues on
   * the next and resumes from its last seq.
   */
  transports?: readonly TransportName[];
  /** Defaults to the platform's `RTCPeerConnection`. */
  RTCPeerConnection?: typeof RTCPeerConnection;
  /** Loads an RTCPeerConnection at the first WebRTC dial (the Node entry loads node-datachannel's). */
  loadRTCPeerConnection?: () => Promise<typeof RTCPeerConnection>;
  rtcConfig?: WebRtcDialOptions['rtcConfig'];
  /** Defaults to the platform's `WebTransport`. */
  WebTransport?: WebTransportCtor;
  /** Pick or load the WebTransport constructor per session ticket (the browser and Node entries use it). */
  selectWebTransport?: (ticket: WebTransportTicket) => WebTransportChoice | Promise<WebTransportChoice>;
  /** Extra WebTransport constructor options per session ticket. */
  webtransportOptions?: (ticket: WebTransportTicket) => Record<string, unknown>;
  connectTimeoutMs?: number;
  /** Signaling fetch (default: the global one); lets a proxy or test rewrite the exchange. */
  fetch?: typeof fetch;
  /** The RTCPeerConnection reports candidate-pair RTT in ms instead of W3C seconds. */
  statsRttInMs?: boolean;
  /** Dials WebRTC instead of the W3C `RTCPeerConnection` dialer (the Node entry's native node-datachannel one). */
  webrtcDialer?: (opts: WebRtcDialOptions) => Dialer;
}

/**
 * The receiver: `new Receiver({gatewayUrl, endpointId, token})`, `await connect()`, then
 * `chunk`, `role`, `gap`, `reset`, `status` events. Ordering, acks, heartbeats and resume
 * come from ReceiverCore; this class only picks the gateway and the transport.
 */
export class Receiver extends ReceiverCore {
  readonly #current: Current;
  readonly #adopt: (link: FrameLink) => void;

  /** The transport of the current (or last) connection. */
  get transport(): TransportName | undefined {
    return this.#current.transport;
  }

  /** The gateway instance of the current (or last) connection. */
  get gatewayUrl(): string | undefined {
    return this.#current.gatewayUrl;
  }

  constructor(options: ReceiverOptions) {
    const { gatewayUrl, token, rtcConfig, connectTimeoutMs, fetch: signalingFetch, statsRttInMs, transports, webtransportOptions, selectWebTransport, loadRTCPeerConnection, webrtcDialer: dialWebrtc, ...core } =
      options;
    const clock = options.clock ?? new RealClock();
    const globals = globalThis as { RTCPeerConnection?: typeof RTCPeerConnection; WebTransport?: WebTransportCtor };
    const urls = typeof gatewayUrl === 'string' ? [gatewayUrl] : [...gatewayUrl];
    if (urls.length === 0) throw new TypeError('gatewayUrl: give at least one URL');
    const order = transports && transports.length > 0 ? [...new Set(transports)] : (['webrtc'] as TransportName[]);
    const Peer = options.RTCPeerConnection ?? globals.RTCPeerConnection;
    const Wt = options.WebTransport ?? globals.WebTransport;
    if (order.includes('webrtc') && !Peer && !loadRTCPeerConnection && !dialWebrtc) throw new TypeError('no RTCPeerConnection here: pass one, or import @mirrorstream/receiver/node in Node');
    if (order.includes('webtransport') && !Wt && !selectWebTransport) throw new TypeError('no WebTransport here: pass one, or import @mirrorstream/receiver/node in Node');
    const dialerFor = (url: string, name: TransportName): Dialer =>
      name === 'webrtc'
        ? (dialWebrtc ?? webrtcDialer)({
            gatewayUrl: url,
            endpointId: options.endpointId,
            token,
            clock,
            ...(Peer ? { RTCPeerConnection: Peer } : { loadRTCPeerConnection }),
            ...(rtcConfig ? { rtcConfig } : {}),
            ...(connectTimeoutMs ? { connectTimeoutMs } : {}),
            ...(signalingFetch ? { fetch: signalingFetch } : {}),
            ...(statsRttInMs ? { statsRttInMs } : {}),
          })
        : webtransportDialer({
            gatewayUrl: url,
            endpointId: options.endpointId,
            token,
            clock,
            ...(Wt ? { WebTransport: Wt } : {}),
            ...(selectWebTransport ? { selectWebTransport } : {}),
            ...(webtransportOptions ? { extraOptions: webtransportOptions } : {}),
            ...(options.maxFrameBytes ? { maxFrameBytes: options.maxFrameBytes } : {}),
            ...(connectTimeoutMs ? { connectTimeoutMs } : {}),
            ...(signalingFetch ? { fetch: signalingFetch } : {}),
          });
    // every (gateway, transport) pair, gateway by gateway in the preferred transport order
    const routes = urls.flatMap((url) => order.map((name) => ({ url, name, dial: dialerFor(url, name) })));
    const current: Current = { transport: undefined, gatewayUrl: undefined };
    // after a connection is lost, the next attempt starts with the next pair: the next
    // transport of the same gateway (a broken preferred path costs one reconnect, not a
    // connect timeout), then the next gateway (a lost instance)
    let start = 0;
    let currentAt: number | undefined;
    let currentLink: FrameLink | undefined;
    const routeOf = new WeakMap<FrameLink, number>();
    const dial = async (hint?: DialHint): Promise<FrameLink> => {
      // GOAWAY: the gateway we were on is leaving, so begin with the next one's first transport;
      // the same for a silent one when there is another gateway (a dead instance's other
      // transports are dead too), else its next transport, as after a lost link
      if ((hint?.nextGateway || hint?.gatewaySilent) && currentAt !== undefined) {
        if (hint.gatewaySilent && urls.length === 1) start = (currentAt + 1) % routes.length;
        else {
          const next = urls[(urls.indexOf(routes[currentAt]?.url ?? '') + 1) % urls.length];
          start = Math.max(0, routes.findIndex((r) => r.url === next));
        }
      }
      let lastError: unknown;
      let unavailable: unknown;
      for (let i = 0; i < routes.length; i++) {
        const at = (start + i) % routes.length;
        const route = routes[at] as (typeof routes)[number];
        try {
          const link = await route.dial();
          routeOf.set(link, at);
          return link;
        } catch (error) {
          // a transport whose library is missing will not come back: report it only if every transport is like that
          if (error instanceof MirrorstreamError && error.code === 'MS_TRANSPORT_UNAVAILABLE') unavailable ??= error;
          else lastError = error;
        }
      }
      start = 0;
      throw lastError ?? unavailable;
    };
    super({ ...core, clock, dial, transports: order });
    this.#current = current;
    // a link dialed while a silent one was kept may go unused: only the one taken counts
    this.#adopt = (link) => {
      const at = routeOf.get(link);
      const route = at === undefined ? undefined : routes[at];
      if (at === undefined || !route) return;
      currentAt = at;
      currentLink = link;
      current.transport = route.name;
      current.gatewayUrl = route.url;
      link.on('close', () => {
        if (currentLink === link) start = (at + 1) % routes.length;
      });
    };
  }

  protected override linkAdopted(link: FrameLink): void {
    this.#adopt(link);
  }
}
