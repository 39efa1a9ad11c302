import { candidateAddresses, rewriteCandidates } from './sdp.js';
import type { Impairment } from './impairment.js';
import { UdpRelay } from './udp-relay.js';

export interface ImpairedLinkOptions {
  /** Uniform [0, 1) source for loss and jitter, shared by the link's relays; default `Math.random` (pass a seeded one in tests). */
  random?: () => number;
  /**
   * Where the gateway's relay listens when the offer names no usable host candidate (a stock
   * browser): default 127.0.0.1. Firefox pairs no loopback remote candidate with its own
   * (non-loopback) host candidates, so a relay it can use listens on one of this machine's own
   * addresses (`ownAddresses()`); Chromium uses either.
   */
  browserRelayHost?: string;
}

/**
 * Puts netsim UDP relays between a receiver and the gateway by rewriting candidates during
 * signaling, so every packet of the peer connection crosses them:
 * - the offer names a usable host candidate: a relay pair, both sides rewritten (rewriting
 *   one side only lets ICE find the direct pair): the gateway learns relay B (→ receiver),
 *   the receiver learns relay A (→ gateway);
 * - it does not (a stock browser hides its host candidates behind `.local` names, which the
 *   gateway drops): only the gateway's side, relay A. The receiver knows no other address of
 *   the gateway, and the gateway knows the receiver only as the peer-reflexive address it
 *   sees, relay A's upstream socket: the one pair runs through the relay.
 */
export class ImpairedLink {
  readonly relays: UdpRelay[] = [];
  readonly #random: (() => number) | undefined;
  readonly #browserRelayHost: string;

  constructor(opts: ImpairedLinkOptions = {}) {
    this.#random = opts.random;
    this.#browserRelayHost = opts.browserRelayHost ?? '127.0.0.1';
  }

  #relayTo(port: number, listenHost = '127.0.0.1'): Promise<UdpRelay> {
    return UdpRelay.start({ target: { host: '127.0.0.1', port }, listenHost, ...(this.#random ? { random: this.#random } : {}) });
  }

  /** A `fetch` for the SDK's signaling that inserts the relays. */
  readonly fetch: typeof fetch = async (input, init) => {
    const offer = String(init?.body ?? '');
    const rx = candidateAddresses(offer).find((c) => c.protocol.toLowerCase() === 'udp' && /^\d+\.\d+\.\d+\.\d+$/.test(c.host));
    let rewrittenOffer = offer;
    if (rx) {
      const toReceiver = await this.#relayTo(rx.port);
      this.relays.push(toReceiver);
      rewrittenOffer = rewriteCandidates(offer, () => ({ host: '127.0.0.1', port: toReceiver.port }));
    }
    const res = await fetch(input, { ...init, body: rewrittenOffer });
    if (res.status !== 201) return res;
    const answer = await res.text();
    const gw = candidateAddresses(answer).find((c) => c.protocol.toLowerCase() === 'udp');
    if (!gw) throw new Error('answer has no UDP candidate');
    // a receiver whose host candidates we saw reaches the relay on loopback; a stock browser on the address it pairs with
    const toGateway = await this.#relayTo(gw.port, rx ? '127.0.0.1' : this.#browserRelayHost);
    this.relays.push(toGateway);
    const rewrittenAnswer = rewriteCandidates(answer, () => ({ host: toGateway.host, port: toGateway.port }));
    return new Response(rewrittenAnswer, { status: 201, headers: res.headers });
  };

  /** Impair both relays in both directions (ICE may use either for either direction). */
  set(impairment: Partial<Impairment>): void {
    for (const r of this.relays) r.set(impairment, 'both');
  }

  async close(): Promise<void> {
    await Promise.all(this.relays.map((r) => r.close()));
  }
}

/**
 * Chromium started with `--disable-features=WebRtcHideLocalIpsWithMdns` offers its real host
 * candidates instead of `.local` names. Its UDP socket listens on every interface, so the
 * same port on 127.0.0.1 reaches it: rewrite IPv4 host candidates to 127.0.0.1 and drop the
 * rest, so a relay never sends anywhere but loopback.
 */
export function loopbackHostCandidates(sdp: string): string {
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  return sdp
    .split(/\r?\n/)
    .flatMap((line) => {
      if (!line.startsWith('a=candidate')) return [line];
      const m = / (\d+\.\d+\.\d+\.\d+) (\d+) typ host/.exec(line);
      return m ? [line.replace(m[0], ` 127.0.0.1 ${m[2]} typ host`)] : [];
    })
    .join(eol);
}

