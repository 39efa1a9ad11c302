/**
 * Browser entry of @mirrorstream/receiver (bundled by esbuild into
 * dist/browser/mirrorstream-receiver.js; no Node built-ins): everything from the
 * platform-neutral entry, with `Receiver` using the native RTCPeerConnection and, for
 * WebTransport, the native API when the gateway speaks HTTP/3, else
 * @fails-components' WebSocket tunnel to its HTTP/2 WebTransport, loaded at its first use:
 * through the gateway's own HTTPS origin (its HTTP port behind a TLS proxy) where the
 * gateway offers that, else to the WebTransport port.
 */
import type { WebTransportCtor } from './transports/webtransport.js';
import { Receiver as BaseReceiver, type ReceiverOptions } from './webrtc-receiver.js';

export * from './index.js';

let tunnel: Promise<WebTransportCtor> | undefined;

/**
 * The WebSocket tunnel (`WebTransportPonyfill`), loaded once, when a session needs it. When
 * its module loads it probes the native WebTransport by dialing example.com (for its
 * polyfill, which we do not use); the native constructor is hidden while it loads, so the
 * SDK contacts no host but the gateway.
 */
function loadTunnel(): Promise<WebTransportCtor> {
  tunnel ??= (async () => {
    const g = globalThis as { WebTransport?: WebTransportCtor };
    const native = Object.getOwnPropertyDescriptor(g, 'WebTransport');
    if (native) Object.defineProperty(g, 'WebTransport', { value: undefined, configurable: true, writable: true });
    try {
      // the package's TypeScript types follow its Node entry; the bundle gets the browser entry
      const lib = (await import('@fails-components/webtransport')) as unknown as { WebTransportPonyfill: WebTransportCtor };
      return lib.WebTransportPonyfill;
    } finally {
      if (native) Object.defineProperty(g, 'WebTransport', native);
    }
  })().catch((error: unknown) => {
    tunnel = undefined;
    throw error;
  });
  return tunnel;
}

export class Receiver extends BaseReceiver {
  constructor(options: ReceiverOptions) {
    const native = (globalThis as { WebTransport?: WebTransportCtor }).WebTransport;
    super({
      selectWebTransport: async (ticket) => (ticket.backend === 'http3' && native ? native : { WebTransport: await loadTunnel(), tunnel: true }),
      ...options,
    });
  }
}
