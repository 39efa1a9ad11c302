import type { Dialer } from './link.js';
import type { Clock } from './protocol/clock.js';
import type { ReceiverCoreOptions } from './receiver-types.js';
import { webrtcDialer, type WebRtcDialOptions } from './transports/webrtc.js';
import { webtransportDialer, type WebTransportChoice, type WebTransportCtor, type WebTransportTicket } from './transports/webtransport.js';

export type TransportName = 'webtransport' | 'webrtc';

/** What the Receiver's dialers take: the endpoint's credentials and each transport's settings. */
export interface RouteDialOptions {
  endpointId: string;
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

/** The options the dialers read: theirs and the receiver's frame limit (WebTransport reassembles frames from a byte stream). */
type DialerInput = RouteDialOptions & Pick<ReceiverCoreOptions, 'maxFrameBytes'>;

const platform = globalThis as { RTCPeerConnection?: typeof RTCPeerConnection; WebTransport?: WebTransportCtor };

/** The transports to dial, in preference order (default WebRTC); a TypeError for one this platform cannot dial and nothing was given for. */
export function transportOrder(options: RouteDialOptions): TransportName[] {
  const order = options.transports && options.transports.length > 0 ? [...new Set(options.transports)] : (['webrtc'] as TransportName[]);
  const peer = options.RTCPeerConnection ?? platform.RTCPeerConnection ?? options.loadRTCPeerConnection ?? options.webrtcDialer;
  if (order.includes('webrtc') && !peer) throw new TypeError('no RTCPeerConnection here: pass one, or import @mirrorstream/receiver/node in Node');
  if (order.includes('webtransport') && !(options.WebTransport ?? platform.WebTransport ?? options.selectWebTransport)) {
    throw new TypeError('no WebTransport here: pass one, or import @mirrorstream/receiver/node in Node');
  }
  return order;
}

/** The dialer of one (gateway URL, transport) pair; timeouts run on `clock`. */
export function routeDialer(options: DialerInput, clock: Clock): (url: string, transport: TransportName) => Dialer {
  return (url, transport) => (transport === 'webrtc' ? webrtcRoute(options, clock, url) : webtransportRoute(options, clock, url));
}

function webrtcRoute(o: DialerInput, clock: Clock, gatewayUrl: string): Dialer {
  const Peer = o.RTCPeerConnection ?? platform.RTCPeerConnection;
  return (o.webrtcDialer ?? webrtcDialer)({
    gatewayUrl,
    endpointId: o.endpointId,
    token: o.token,
    clock,
    ...(Peer ? { RTCPeerConnection: Peer } : { loadRTCPeerConnection: o.loadRTCPeerConnection }),
    ...(o.rtcConfig ? { rtcConfig: o.rtcConfig } : {}),
    ...(o.connectTimeoutMs ? { connectTimeoutMs: o.connectTimeoutMs } : {}),
    ...(o.fetch ? { fetch: o.fetch } : {}),
    ...(o.statsRttInMs ? { statsRttInMs: o.statsRttInMs } : {}),
  });
}

function webtransportRoute(o: DialerInput, clock: Clock, gatewayUrl: string): Dialer {
  const Wt = o.WebTransport ?? platform.WebTransport;
  return webtransportDialer({
    gatewayUrl,
    endpointId: o.endpointId,
    token: o.token,
    clock,
    ...(Wt ? { WebTransport: Wt } : {}),
    ...(o.selectWebTransport ? { selectWebTransport: o.selectWebTransport } : {}),
    ...(o.webtransportOptions ? { extraOptions: o.webtransportOptions } : {}),
    ...(o.maxFrameBytes ? { maxFrameBytes: o.maxFrameBytes } : {}),
    ...(o.connectTimeoutMs ? { connectTimeoutMs: o.connectTimeoutMs } : {}),
    ...(o.fetch ? { fetch: o.fetch } : {}),
  });
}
