import { ReceiverCore, type ReceiverCoreOptions } from './receiver.js';
import { webrtcDialer, type WebRtcDialOptions } from './transports/webrtc.js';

export interface ReceiverOptions extends Omit<ReceiverCoreOptions, 'dial' | 'token'> {
  /** Base URL of the gateway's HTTP API, e.g. `http://127.0.0.1:8080`. */
  gatewayUrl: string;
  /** Endpoint token from `POST /v1/endpoints/:id/token`, or a function returning a fresh one. */
  token: string | (() => Promise<string>);
  /** Transports in order of preference; only `webrtc` today. */
  transports?: readonly 'webrtc'[];
  /** Defaults to the platform's `RTCPeerConnection` (the Node entry passes node-datachannel's). */
  RTCPeerConnection?: typeof RTCPeerConnection;
  rtcConfig?: WebRtcDialOptions['rtcConfig'];
  connectTimeoutMs?: number;
  /** Signaling fetch (default: the global one); lets a proxy or test rewrite the exchange. */
  fetch?: typeof fetch;
  /** The RTCPeerConnection reports candidate-pair RTT in ms instead of W3C seconds. */
  statsRttInMs?: boolean;
}

/**
 * The receiver: `new Receiver({gatewayUrl, endpointId, token})`, `await connect()`, then
 * `chunk`, `role`, `gap`, `status` events. Ordering, acks, heartbeats and resume come
 * from ReceiverCore; this class only picks the transport.
 */
export class Receiver extends ReceiverCore {
  constructor(options: ReceiverOptions) {
    const Peer = options.RTCPeerConnection ?? (globalThis as { RTCPeerConnection?: typeof RTCPeerConnection }).RTCPeerConnection;
    if (!Peer) throw new TypeError('no RTCPeerConnection here: pass one, or import @mirrorstream/receiver/node in Node');
    const { gatewayUrl, token, rtcConfig, connectTimeoutMs, fetch: signalingFetch, statsRttInMs, ...core } = options;
    super({
      ...core,
      token: typeof token === 'string' ? token : '',
      dial: webrtcDialer({
        gatewayUrl,
        endpointId: options.endpointId,
        token,
        RTCPeerConnection: Peer,
        ...(rtcConfig ? { rtcConfig } : {}),
        ...(connectTimeoutMs ? { connectTimeoutMs } : {}),
        ...(signalingFetch ? { fetch: signalingFetch } : {}),
        ...(statsRttInMs ? { statsRttInMs } : {}),
      }),
    });
  }
}
