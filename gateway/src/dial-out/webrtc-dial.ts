import { readFileSync } from 'node:fs';
import { MirrorstreamError } from '@mirrorstream/receiver/protocol';
import type { DialOutConfig } from '../config.js';
import type { Transport } from '../transports/transport.js';
import type { WebRtcEngine } from '../transports/webrtc/index.js';
import type { DialAllowList } from './allow.js';
import { deleteSession, normalizePin, postOffer, type ListenerTarget, type OfferClientOptions } from './offer-client.js';

/**
 * One WebRTC dial of a listening endpoint: the host checked against dialOut.allow, the
 * engine's offer POSTed to the listener, its answer applied; resolves once the data channels
 * are open. The listener's session is DELETEd when the transport closes.
 */
export function webrtcDialer(o: { config: DialOutConfig; allow: DialAllowList; engine: () => Promise<WebRtcEngine> }): (endpointId: string, target: ListenerTarget) => Promise<Transport> {
  const client: OfferClientOptions = {
    timeoutMs: o.config.connectTimeoutMs,
    lookup: o.allow.lookup,
    ca: o.config.caFile === undefined ? undefined : readFileSync(o.config.caFile, 'utf8'),
    pins: o.config.pinSha256.map(normalizePin),
  };
  return async (_endpointId, target) => {
    await o.allow.check(new URL(target.url));
    const engine = await o.engine();
    const offer = await engine.offer();
    let answer: Awaited<ReturnType<typeof postOffer>>;
    try {
      answer = await postOffer(target, offer.offerSdp, client);
    } catch (error) {
      offer.abort();
      throw error;
    }
    let transport: Transport;
    try {
      transport = await offer.complete(answer.answerSdp);
    } catch (error) {
      if (answer.sessionUrl) void deleteSession(answer.sessionUrl, target.token, client);
      throw new MirrorstreamError('MS_DIAL_FAILED', `the connection to ${new URL(target.url).origin} did not come up: ${error instanceof Error ? error.message : String(error)}`, { retryable: true, cause: error });
    }
    const { sessionUrl } = answer;
    if (sessionUrl) void transport.closed.then(() => deleteSession(sessionUrl, target.token, client));
    return transport;
  };
}
