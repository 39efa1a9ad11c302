/**
 * Browser entry of @mirrorstream/receiver (bundled by esbuild into
 * dist/browser/mirrorstream-receiver.js; no Node built-ins): everything from the
 * platform-neutral entry, with `Receiver` using the native RTCPeerConnection and, for
 * WebTransport, the native API when the gateway speaks HTTP/3, else
 * @fails-components' WebSocket tunnel to its HTTP/2 WebTransport.
 */
import * as failsWebTransport from '@fails-components/webtransport';
import type { WebTransportCtor } from './transports/webtransport.js';

// the package's TypeScript types follow its Node entry; the bundle gets the browser entry
const { WebTransportPonyfill } = failsWebTransport as unknown as { WebTransportPonyfill: WebTransportCtor };
import { Receiver as BaseReceiver, type ReceiverOptions } from './webrtc-receiver.js';

export * from './index.js';

export class Receiver extends BaseReceiver {
  constructor(options: ReceiverOptions) {
    const native = (globalThis as { WebTransport?: WebTransportCtor }).WebTransport;
    super({
      selectWebTransport: (ticket) => (ticket.backend === 'http3' && native ? native : WebTransportPonyfill),
      ...options,
    });
  }
}
