import type { Dialer, FrameLink, LinkChannel } from '../link.js';
import { withTimeout, type Clock } from '../protocol/clock.js';
import { MirrorstreamError } from '../protocol/errors.js';
import { splitCandidates } from '../protocol/sdp.js';
import { ChannelLink } from './channel-link.js';
import { dialTimeout } from './signaling.js';
import { CHANNELS, endSession, postOffer } from './whep.js';

/**
 * WebRTC dialer on the W3C `RTCPeerConnection` API, so the browser (native) and Node
 * (node-datachannel's polyfill) share it. WHEP-style: POST the offer with the endpoint
 * token, get 201 + answer + Location; DELETE the Location when closing.
 */
export interface WebRtcDialOptions {
  gatewayUrl: string;
  endpointId: string;
  /** The endpoint token, or a function that fetches a fresh one for each attempt. */
  token: string | (() => Promise<string>);
  /** The W3C RTCPeerConnection to use... */
  RTCPeerConnection?: typeof RTCPeerConnection;
  /** ...or how to load it at the first dial (the Node entry loads node-datachannel this way). */
  loadRTCPeerConnection?: () => Promise<typeof RTCPeerConnection>;
  /** Timeouts run on this clock. */
  clock: Clock;
  /** Passed to the RTCPeerConnection (Node: e.g. `{ bindAddress: '127.0.0.1' }`). */
  rtcConfig?: RTCConfiguration & Record<string, unknown>;
  connectTimeoutMs?: number;
  fetch?: typeof fetch;
  /**
   * W3C `currentRoundTripTime` is in seconds; node-datachannel's polyfill reports
   * milliseconds: set this when passing the polyfill as `RTCPeerConnection` (the Node entry's
   * own WebRTC dialer uses node-datachannel's native API and does not need it).
   */
  statsRttInMs?: boolean;
}


export function webrtcDialer(opts: WebRtcDialOptions): Dialer {
  return () => dialWebRtc(opts);
}

async function dialWebRtc(opts: WebRtcDialOptions): Promise<FrameLink> {
  const timeoutMs = opts.connectTimeoutMs ?? 10_000;
  const doFetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
  const token = typeof opts.token === 'string' ? opts.token : await opts.token();
  const Peer = opts.RTCPeerConnection ?? (await opts.loadRTCPeerConnection?.());
  if (!Peer) throw new MirrorstreamError('MS_TRANSPORT_UNAVAILABLE', 'no RTCPeerConnection here: pass one, or import @mirrorstream/receiver/node in Node');
  const pc = new Peer({ iceServers: [], ...opts.rtcConfig });
  const channels = CHANNELS.map((c) => {
    const dc = pc.createDataChannel(c.label, { ...c.init, negotiated: true, id: c.id });
    dc.binaryType = 'arraybuffer';
    return { label: c.label, dc };
  });
  let sessionUrl: string | undefined;
  try {
    await pc.setLocalDescription(await pc.createOffer());
    await withTimeout(opts.clock, gatheringComplete(pc), timeoutMs, dialTimeout('ICE gathering', timeoutMs));
    // the offer without candidates, the answer's after its description: protocol/sdp.ts
    const answer = await postOffer(doFetch, opts.gatewayUrl, opts.endpointId, token, splitCandidates(pc.localDescription?.sdp ?? '').description);
    sessionUrl = answer.sessionUrl;
    const { description, candidates } = splitCandidates(answer.sdp);
    await pc.setRemoteDescription({ type: 'answer', sdp: description });
    for (const { candidate, mid } of candidates) await pc.addIceCandidate({ candidate, sdpMid: mid });
    await withTimeout(opts.clock, Promise.all(channels.map((c) => opened(c.dc))), timeoutMs, dialTimeout('data channels open', timeoutMs));
  } catch (error) {
    pc.close();
    if (sessionUrl) void endSession(doFetch, sessionUrl, token);
    throw error;
  }
  const link = new DataChannelLink(pc, channels, opts.statsRttInMs ? 1 : 1000);
  const url = sessionUrl;
  if (url) link.endSession = () => endSession(doFetch, url, token);
  return link;
}


class DataChannelLink extends ChannelLink {
  readonly #pc: RTCPeerConnection;
  readonly #rttScale: number;

  constructor(pc: RTCPeerConnection, channels: { label: LinkChannel; dc: RTCDataChannel }[], rttScale: number) {
    super(new Map(channels.map(({ label, dc }) => [label, { writable: () => dc.readyState === 'open', write: (bytes: Uint8Array) => dc.send(bytes as Uint8Array<ArrayBuffer>), close: () => dc.close() }])));
    this.#rttScale = rttScale;
    this.#pc = pc;
    for (const { label, dc } of channels) {
      dc.addEventListener('message', (e: MessageEvent) => {
        const data: unknown = e.data;
        if (data instanceof ArrayBuffer) this.received(new Uint8Array(data), label);
        else if (ArrayBuffer.isView(data)) this.received(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), label);
      });
      dc.addEventListener('close', () => this.close(`${label} channel closed`));
    }
    pc.addEventListener('connectionstatechange', () => {
      if (pc.connectionState === 'failed' || pc.connectionState === 'closed') this.close(`peer connection ${pc.connectionState}`);
    });
  }

  /** RTT of the selected candidate pair from getStats (Chromium fills it; polyfills may not). */
  async rttMs(): Promise<number | undefined> {
    if (this.isClosed) return undefined;
    try {
      const report = await this.#pc.getStats();
      let rtt: number | undefined;
      report.forEach((s: { type?: string; state?: string; nominated?: boolean; currentRoundTripTime?: number }) => {
        if (s.type === 'candidate-pair' && s.currentRoundTripTime !== undefined && (s.nominated || s.state === 'succeeded')) {
          rtt = s.currentRoundTripTime * this.#rttScale;
        }
      });
      return rtt;
    } catch {
      return undefined;
    }
  }

  protected closePeer(): void {
    this.#pc.close();
  }
}

function gatheringComplete(pc: RTCPeerConnection): Promise<void> {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const check = (): void => {
      if (pc.iceGatheringState === 'complete') {
        pc.removeEventListener('icegatheringstatechange', check);
        resolve();
      }
    };
    pc.addEventListener('icegatheringstatechange', check);
  });
}

function opened(dc: RTCDataChannel): Promise<void> {
  if (dc.readyState === 'open') return Promise.resolve();
  return new Promise((resolve, reject) => {
    dc.addEventListener('open', () => resolve(), { once: true });
    dc.addEventListener('close', () => reject(new Error(`${dc.label} closed before opening`)), { once: true });
  });
}
