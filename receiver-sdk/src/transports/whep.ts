import type { LinkChannel } from '../link.js';
import { httpError } from './signaling.js';

/**
 * WHEP-style WebRTC signaling, shared by the W3C dialer (browsers) and the native one (Node):
 * the channels both sides create, the offer POST and the session DELETE.
 */

/** Same ids and settings as the gateway's negotiated channels. */
export const CHANNELS: { label: LinkChannel; id: number; init: RTCDataChannelInit }[] = [
  { label: 'control', id: 0, init: { ordered: true } },
  { label: 'data', id: 1, init: { ordered: true } },
  { label: 'data-unreliable', id: 2, init: { ordered: false, maxRetransmits: 0 } },
];

/** WHEP-style: POST the offer with the endpoint token; 201 with the answer and the session's Location. */
export async function postOffer(doFetch: typeof fetch, gatewayUrl: string, endpointId: string, token: string, offerSdp: string): Promise<{ sdp: string; sessionUrl: string | undefined }> {
  const base = gatewayUrl.replace(/\/+$/, '');
  const res = await doFetch(`${base}/v1/endpoints/${encodeURIComponent(endpointId)}/webrtc`, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp', authorization: `Bearer ${token}` },
    body: offerSdp,
  });
  if (res.status !== 201) throw await httpError(res);
  const location = res.headers.get('location');
  return { sdp: await res.text(), sessionUrl: location ? new URL(location, `${base}/`).toString() : undefined };
}

/** WHEP DELETE of the session (best effort). */
export async function endSession(doFetch: typeof fetch, url: string, token: string): Promise<void> {
  await doFetch(url, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } }).catch(() => undefined);
}
