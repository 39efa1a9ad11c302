import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../receiver-sdk/src/protocol/clock.js';
import { nativeWebrtcDialer, type NativeChannel, type NativePeer, type NodeDataChannelModule } from '../../receiver-sdk/src/transports/webrtc-native.js';

/** How a fake libdatachannel peer ends its connect. */
type Ending = 'opens' | 'no ICE transport' | 'closes' | 'fails';

/** node-datachannel's native API, each peer ending its connect as the next entry of `endings` says. */
function fakeModule(endings: Ending[]): { module: NodeDataChannelModule; peers: number } {
  const made = { peers: 0 };
  class FakePeer implements NativePeer {
    readonly #ending: Ending;
    #state = 'new';
    #channelsOpen = false;
    constructor() {
      this.#ending = endings[made.peers++] ?? 'opens';
    }
    createDataChannel(): NativeChannel {
      return { isOpen: () => this.#channelsOpen, sendMessageBinary: () => true, onMessage: () => undefined, onClosed: () => undefined, close: () => undefined };
    }
    setLocalDescription(): void {
      this.#state = 'connecting';
    }
    setRemoteDescription(): void {
      if (this.#ending === 'no ICE transport') throw new Error('Got a remote candidate without ICE transport');
      if (this.#ending === 'closes') this.#state = 'closed';
      else if (this.#ending === 'fails') this.#state = 'failed';
      else {
        this.#state = 'connected';
        this.#channelsOpen = true;
      }
    }
    localDescription(): { sdp: string } {
      return { sdp: 'v=0 offer' };
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
  return {
    module: { PeerConnection: FakePeer },
    get peers() {
      return made.peers;
    },
  };
}

/** A gateway's WHEP side: 201 with an answer for each offer, a session per offer. */
function fakeGateway(): { fetch: typeof fetch; offers: number; deleted: string[] } {
  const seen = { offers: 0, deleted: [] as string[] };
  const doFetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = String(input);
    if (init?.method === 'DELETE') {
      seen.deleted.push(url);
      return new Response(null, { status: 204 });
    }
    seen.offers++;
    return new Response('v=0 answer', { status: 201, headers: { location: `/v1/sessions/s${seen.offers}` } });
  }) as typeof fetch;
  return { fetch: doFetch, get offers() { return seen.offers; }, deleted: seen.deleted };
}

function dialer(endings: Ending[]) {
  const ndc = fakeModule(endings);
  const gateway = fakeGateway();
  const dial = nativeWebrtcDialer({ gatewayUrl: 'http://gw.test', endpointId: 'e1', token: 't', clock: new ManualClock(), fetch: gateway.fetch, load: () => Promise.resolve(ndc.module) });
  return { dial, ndc, gateway };
}

describe('Node receivers: a connect libdatachannel ends on its own is dialed once more', () => {
  it.each<Ending>(['no ICE transport', 'closes', 'fails'])('a first connect that %s is followed by a second one, with a new peer and session', async (ending) => {
    const { dial, ndc, gateway } = dialer([ending, 'opens']);
    const link = await dial();
    expect(ndc.peers).toBe(2);
    expect(gateway.offers).toBe(2);
    // the first session is ended at the gateway, not left for its timeout
    expect(gateway.deleted).toEqual(['http://gw.test/v1/sessions/s1']);
    link.close('test done');
  });

  it('a second race in a row is the dial failure: no third connect', async () => {
    const { dial, ndc, gateway } = dialer(['closes', 'no ICE transport', 'opens']);
    await expect(dial()).rejects.toThrow('without ICE transport');
    expect(ndc.peers).toBe(2);
    expect(gateway.offers).toBe(2);
  });

  it('a refusal by the gateway is not dialed again here (the receiver decides when to retry)', async () => {
    const ndc = fakeModule(['opens']);
    const refuse = (async () => new Response(JSON.stringify({ error: { code: 'MS_UNAUTHORIZED', message: 'bad token' } }), { status: 401, headers: { 'content-type': 'application/json' } })) as unknown as typeof fetch;
    const dial = nativeWebrtcDialer({ gatewayUrl: 'http://gw.test', endpointId: 'e1', token: 't', clock: new ManualClock(), fetch: refuse, load: () => Promise.resolve(ndc.module) });
    await expect(dial()).rejects.toMatchObject({ code: 'MS_UNAUTHORIZED' });
    expect(ndc.peers).toBe(1);
  });
});
