import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../receiver-sdk/src/protocol/clock.js';
import { splitCandidates } from '../../receiver-sdk/src/protocol/sdp.js';
import { nativeWebrtcDialer, type NativeChannel, type NativePeer, type NodeDataChannelModule } from '../../receiver-sdk/src/transports/webrtc-native.js';

const CANDIDATE_A = 'candidate:1 1 UDP 2122317823 127.0.0.1 40000 typ host';
const CANDIDATE_B = 'candidate:2 1 UDP 2122317567 10.0.0.2 40001 typ host';
const sdp = (candidates: string[], eol = '\r\n'): string =>
  ['v=0', 'o=- 1 1 IN IP4 0.0.0.0', 's=-', 't=0 0', 'm=application 9 UDP/DTLS/SCTP webrtc-datachannel', 'c=IN IP4 0.0.0.0', 'a=mid:0', 'a=ice-ufrag:u', 'a=ice-pwd:p', 'a=fingerprint:sha-256 AA', 'a=setup:active', ...candidates.map((c) => `a=${c}`), 'a=end-of-candidates', ''].join(eol);

describe('SDP candidates apart from the description', () => {
  it('splits candidates (with their mid) from the rest, CRLF or LF kept, end-of-candidates dropped', () => {
    for (const eol of ['\r\n', '\n']) {
      const { description, candidates } = splitCandidates(sdp([CANDIDATE_A, CANDIDATE_B], eol));
      expect(description).toBe(sdp([], eol).replace(`a=end-of-candidates${eol}`, ''));
      expect(candidates).toEqual([
        { candidate: CANDIDATE_A, mid: '0' },
        { candidate: CANDIDATE_B, mid: '0' },
      ]);
    }
  });

  it('each candidate takes the mid of its own media section', () => {
    const two = ['v=0', 'm=audio 9 UDP/TLS/RTP/SAVPF 111', 'a=mid:audio', `a=${CANDIDATE_A}`, 'm=application 9 UDP/DTLS/SCTP webrtc-datachannel', 'a=mid:data', `a=${CANDIDATE_B}`].join('\r\n');
    expect(splitCandidates(two).candidates).toEqual([
      { candidate: CANDIDATE_A, mid: 'audio' },
      { candidate: CANDIDATE_B, mid: 'data' },
    ]);
  });
});

/** node-datachannel's native API, recording what the dialer does to a peer, in order. */
function fakeModule(calls: string[]): NodeDataChannelModule {
  class FakePeer implements NativePeer {
    #state = 'new';
    #open = false;
    createDataChannel(): NativeChannel {
      return { isOpen: () => this.#open, sendMessageBinary: () => true, onMessage: () => undefined, onClosed: () => undefined, close: () => undefined };
    }
    setLocalDescription(): void {
      this.#state = 'connecting';
    }
    setRemoteDescription(description: string, type: string): void {
      calls.push(`remote ${type} with ${description.split('a=candidate:').length - 1} candidates`);
    }
    addRemoteCandidate(candidate: string, mid: string): void {
      calls.push(`candidate ${candidate.split(' ')[0]} mid ${mid}`);
      this.#state = 'connected';
      this.#open = true;
    }
    localDescription(): { sdp: string } {
      return { sdp: sdp([CANDIDATE_A]) };
    }
    gatheringState(): string {
      return 'complete';
    }
    state(): string {
      return this.#state;
    }
    rtt(): number {
      return -1;
    }
    close(): void {
      this.#state = 'closed';
    }
  }
  return { PeerConnection: FakePeer };
}

describe('the Node receiver offers without candidates and applies the answer in two steps (protocol/sdp.ts)', () => {
  it('the offer posted has no candidate; the answer goes in as its description, then each candidate', async () => {
    const calls: string[] = [];
    const offers: string[] = [];
    const doFetch = (async (_url: string | URL | Request, init?: RequestInit) => {
      offers.push(String(init?.body));
      return new Response(sdp([CANDIDATE_A, CANDIDATE_B]), { status: 201, headers: { location: '/v1/sessions/s1' } });
    }) as typeof fetch;
    const dial = nativeWebrtcDialer({ gatewayUrl: 'http://gw.test', endpointId: 'e1', token: 't', clock: new ManualClock(), fetch: doFetch, load: () => Promise.resolve(fakeModule(calls)) });
    const link = await dial();
    expect(offers).toHaveLength(1);
    expect(offers[0]).toContain('a=ice-ufrag:u');
    expect(offers[0]).not.toContain('a=candidate');
    expect(calls).toEqual(['remote answer with 0 candidates', 'candidate candidate:1 mid 0', 'candidate candidate:2 mid 0']);
    link.close('test done');
  });

  it('a refusal by the gateway is the dial failure, with its code (the receiver decides when to retry)', async () => {
    const refuse = (async () => new Response(JSON.stringify({ error: { code: 'MS_UNAUTHORIZED', message: 'bad token' } }), { status: 401, headers: { 'content-type': 'application/json' } })) as unknown as typeof fetch;
    const dial = nativeWebrtcDialer({ gatewayUrl: 'http://gw.test', endpointId: 'e1', token: 't', clock: new ManualClock(), fetch: refuse, load: () => Promise.resolve(fakeModule([])) });
    await expect(dial()).rejects.toMatchObject({ code: 'MS_UNAUTHORIZED' });
  });
});
