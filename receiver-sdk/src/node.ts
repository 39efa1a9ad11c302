/**
 * Node entry of @mirrorstream/receiver: everything from the browser-safe entry, with
 * `Receiver` dialing WebRTC on node-datachannel's native API (an optional peer dependency:
 * `npm install node-datachannel` to receive over WebRTC in Node; see webrtc-native.ts for
 * why not its W3C polyfill) and
 * @fails-components/webtransport's WebTransport, each at its first dial, so an app that
 * uses only one transport never loads the other's library.
 * (simple-peer is not used: measured here it fails with both Node implementations —
 * read-only descriptions, werift rejects its SDP — and it is unmaintained since 2021.)
 */
import { importQuietly, MISSING_HTTP3_NOISE } from './protocol/quiet-import.js';
import { nativeWebrtcDialer, type NodeDataChannelModule } from './transports/webrtc-native.js';
import type { WebTransportCtor } from './transports/webtransport.js';
import { Receiver as BaseReceiver, type ReceiverOptions } from './webrtc-receiver.js';
import { ListeningReceiver, type ListenOptions } from './node/listen.js';

export { ListeningReceiver, type ListenOptions } from './node/listen.js';

export * from './index.js';

async function loadNodeDataChannel(): Promise<NodeDataChannelModule> {
  return (await import('node-datachannel')).default as unknown as NodeDataChannelModule;
}

async function loadFailsWebTransport(): Promise<WebTransportCtor> {
  // without the optional HTTP/3 backend the library prints stack traces: not in a user's program
  const { WebTransport } = await importQuietly(() => import('@fails-components/webtransport'), MISSING_HTTP3_NOISE, (lib) => lib.quicheLoaded);
  return WebTransport as unknown as WebTransportCtor;
}

export class Receiver extends BaseReceiver {
  constructor(options: ReceiverOptions) {
    super({
      // node-datachannel's native API (an RTCPeerConnection passed in options takes the W3C dialer)
      ...(options.RTCPeerConnection ? {} : { webrtcDialer: (o) => nativeWebrtcDialer({ ...o, load: loadNodeDataChannel }) }),
      ...(options.WebTransport ? {} : { selectWebTransport: loadFailsWebTransport }),
      // without HTTP/3 on the gateway, @fails-components speaks WebTransport over HTTP/2
      webtransportOptions: (ticket) => ({ forceReliable: ticket.backend === 'http2' }),
      ...options,
    });
  }
}

/**
 * A receiver that listens at a URL and is dialed by the gateway (an endpoint entry with `url`
 * and `token`): resolves once it listens; `rx.url` is where gateways dial it. Same events as
 * `Receiver`; `await rx.close()` stops it.
 */
export function listen(options: ListenOptions): Promise<ListeningReceiver> {
  return new ListeningReceiver(options, loadNodeDataChannel).listen();
}
