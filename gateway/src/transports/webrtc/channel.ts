/**
 * A data channel as the transport sees it, the same for every engine: werift's
 * RTCDataChannel and node-datachannel's DataChannel are wrapped into this shape.
 */
export interface ChannelHandle {
  readonly label: string;
  readonly isOpen: boolean;
  readonly bufferedAmount: number;
  /** Throws ChannelClosedError when the engine had closed the channel before telling us. */
  send(bytes: Uint8Array): void;
  /** The engine's low-water event, where the transport takes it (the drain poll covers a channel without). */
  setLowThreshold?(bytes: number): void;
  onLow?(cb: () => void): void;
  onMessage(cb: (bytes: Uint8Array) => void): void;
  onClose(cb: () => void): void;
  close(): void;
}

/**
 * A send to a channel the engine closed before its close callback reached us (a page that
 * went away): the transport closes as it would on that callback, with nothing to report.
 */
export class ChannelClosedError extends Error {
  constructor(label: string) {
    super(`the ${label} data channel is closed`);
    this.name = 'ChannelClosedError';
  }
}

/**
 * Negotiated channels with fixed ids: both sides create them, no DCEP round trip, and
 * each side's sends follow its own settings, so the gateway decides the data channel's
 * reliability. The receiver SDK creates the same three.
 */
export const CHANNELS = [
  { label: 'control', id: 0, ordered: true, maxRetransmits: undefined },
  { label: 'data', id: 1, ordered: true, maxRetransmits: undefined },
  // unreliable streams: no retransmission, no head-of-line blocking
  { label: 'data-unreliable', id: 2, ordered: false, maxRetransmits: 0 },
] as const;

export type ChannelLabel = (typeof CHANNELS)[number]['label'];

/** Drop `a=candidate` lines whose address is an mDNS `.local` name (browsers hide host IPs that way). */
export function stripMdnsCandidates(sdp: string): string {
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  return sdp
    .split(/\r?\n/)
    .filter((line) => {
      if (!line.startsWith('a=candidate:')) return true;
      const address = line.split(' ')[4];
      return !(address && address.toLowerCase().endsWith('.local'));
    })
    .join(eol);
}

/**
 * The offer as the gateway's engine takes it: mDNS candidates dropped, and the receiver's
 * `setup:actpass` read as `passive`, so the gateway answers `setup:active` and opens DTLS. The
 * receiver offers without candidates (@mirrorstream/receiver/protocol's sdp.ts), so its ICE
 * always comes up first: it has the gateway's candidates and sends the checks, and the gateway
 * is connected only once its answer to them comes back. Opening DTLS from the side that is
 * up last, its first flight meets a peer that is ready. Measured with node-datachannel on both
 * ends (60 connects one after the other, loopback): with the receiver opening DTLS, 8 of 60
 * took a second more (its first flight reached a gateway whose ICE, hence DTLS, was not up yet,
 * then waited for the 1 s DTLS retransmission); with the gateway opening it, 0 of 60, 56-145 ms.
 */
export function preparedOffer(sdp: string): string {
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  return stripMdnsCandidates(sdp)
    .split(/\r?\n/)
    .map((line) => (line === 'a=setup:actpass' ? 'a=setup:passive' : line))
    .join(eol);
}

/** Reject what is not an SDP offer with a data channel before any engine sees it. */
export function looksLikeDataOffer(sdp: string): boolean {
  return sdp.length <= 64 * 1024 && /^v=0\r?\n/.test(sdp) && /\r?\nm=application \d+ [A-Z/]*SCTP/.test(sdp);
}
