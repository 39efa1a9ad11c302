/**
 * Node entry of @mirrorstream/receiver: everything from the browser entry, with
 * `Receiver` defaulting to node-datachannel's W3C RTCPeerConnection polyfill.
 * (simple-peer is not used: measured here it fails with both Node implementations —
 * read-only descriptions, werift rejects its SDP — and it is unmaintained since 2021.)
 */
import { RTCPeerConnection as NdcPeerConnection } from 'node-datachannel/polyfill';
import { Receiver as BaseReceiver, type ReceiverOptions } from './webrtc-receiver.js';

export * from './index.js';

export class Receiver extends BaseReceiver {
  constructor(options: ReceiverOptions) {
    // the polyfill's candidate-pair currentRoundTripTime is in ms, not W3C seconds
    super({ RTCPeerConnection: NdcPeerConnection as unknown as typeof RTCPeerConnection, statsRttInMs: true, ...options });
  }
}
