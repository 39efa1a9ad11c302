/**
 * Node entry of @mirrorstream/receiver: everything from the browser entry, with
 * `Receiver` defaulting to node-datachannel's W3C RTCPeerConnection polyfill and to
 * @fails-components/webtransport's WebTransport.
 * (simple-peer is not used: measured here it fails with both Node implementations —
 * read-only descriptions, werift rejects its SDP — and it is unmaintained since 2021.)
 */
import { RTCPeerConnection as NdcPeerConnection } from 'node-datachannel/polyfill';
import { WebTransport as FailsWebTransport } from '@fails-components/webtransport';
import type { WebTransportCtor } from './transports/webtransport.js';
import { Receiver as BaseReceiver, type ReceiverOptions } from './webrtc-receiver.js';

export * from './index.js';

export class Receiver extends BaseReceiver {
  constructor(options: ReceiverOptions) {
    super({
      RTCPeerConnection: NdcPeerConnection as unknown as typeof RTCPeerConnection,
      // the polyfill's candidate-pair currentRoundTripTime is in ms, not W3C seconds
      statsRttInMs: true,
      WebTransport: FailsWebTransport as unknown as WebTransportCtor,
      // without HTTP/3 on the gateway, @fails-components speaks WebTransport over HTTP/2
      webtransportOptions: (ticket) => ({ forceReliable: ticket.backend === 'http2' }),
      ...options,
    });
  }
}
