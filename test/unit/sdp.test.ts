import { describe, expect, it } from 'vitest';
import { looksLikeDataOffer, preparedOffer, stripMdnsCandidates } from '../../gateway/src/transports/webrtc/channel.js';

const offer = [
  'v=0',
  'o=- 46117 2 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
  'a=candidate:1 1 udp 2122260223 4f1c2a9e-2b1d-4c55-9a0e-8d1f3b2c7e11.local 54321 typ host generation 0',
  'a=candidate:2 1 udp 2122260223 127.0.0.1 54322 typ host generation 0',
  'a=candidate:3 1 udp 1686052607 HOST.LOCAL 54323 typ srflx raddr 0.0.0.0 rport 0',
  'a=mid:0',
  'a=setup:actpass',
  'a=sctp-port:5000',
  '',
].join('\r\n');

describe('SDP handling before the engine', () => {
  it('drops mDNS .local candidates and keeps everything else, line endings included', () => {
    const out = stripMdnsCandidates(offer);
    expect(out).not.toMatch(/\.local/i);
    expect(out).toContain('a=candidate:2 1 udp 2122260223 127.0.0.1 54322 typ host generation 0\r\n');
    expect(out.split('\r\n')).toHaveLength(offer.split('\r\n').length - 2);
    expect(stripMdnsCandidates(offer.replace(/\r\n/g, '\n'))).not.toContain('\r');
  });

  it('accepts a data-channel offer and rejects anything else', () => {
    expect(looksLikeDataOffer(offer)).toBe(true);
    expect(looksLikeDataOffer('hello')).toBe(false);
    expect(looksLikeDataOffer(offer.replace('m=application 9 UDP/DTLS/SCTP', 'm=audio 9 UDP/TLS/RTP/SAVPF'))).toBe(false);
    expect(looksLikeDataOffer(offer + 'a=x\r\n'.repeat(20_000))).toBe(false);
  });

  it('prepares an offer for the engine: mDNS names dropped, other candidates kept, DTLS opened by the gateway', () => {
    const sdp = preparedOffer(offer);
    expect(sdp).not.toMatch(/\.local/i);
    expect(sdp).toContain('a=candidate:2 1 udp 2122260223 127.0.0.1 54322 typ host generation 0\r\n');
    expect(sdp).toContain('a=setup:passive\r\n');
    expect(sdp).not.toContain('actpass');
    expect(sdp.split('\r\n')).toHaveLength(offer.split('\r\n').length - 2);
    // an offer that already chose a role keeps it
    expect(preparedOffer(offer.replace('actpass', 'active'))).toContain('a=setup:active');
  });
});
