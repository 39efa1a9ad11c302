import type { Dialer, FrameLink, LinkChannel } from '../link.js';
import { pollUntil } from '../protocol/clock.js';
import { MirrorstreamError } from '../protocol/errors.js';
import { splitCandidates } from '../protocol/sdp.js';
import { ChannelLink } from './channel-link.js';
import { dialTimeout } from './signaling.js';
import type { WebRtcDialOptions } from './webrtc.js';
import { CHANNELS, endSession, postOffer } from './whep.js';

/** The part of node-datachannel's native API the dialer uses (the package stays an optional peer). */
export interface NativeChannel {
  isOpen(): boolean;
  sendMessageBinary(bytes: Uint8Array): boolean;
  onMessage(cb: (msg: string | Buffer | ArrayBuffer) => void): void;
  onClosed(cb: () => void): void;
  close(): void;
}
export interface NativePeer {
  createDataChannel(label: string, init: { negotiated: boolean; id: number; unordered?: boolean; maxRetransmits?: number }): NativeChannel;
  setLocalDescription(type?: 'offer' | 'answer'): void;
  setRemoteDescription(sdp: string, type: 'offer' | 'answer'): void;
  addRemoteCandidate(candidate: string, mid: string): void;
  localDescription(): { sdp: string } | null;
  gatheringState(): string;
  state(): string;
  rtt(): number;
  close(): void;
}
export interface NodeDataChannelModule {
  PeerConnection: new (name: string, config: Record<string, unknown>) => NativePeer;
}

export interface NativeWebRtcDialOptions extends Omit<WebRtcDialOptions, 'RTCPeerConnection' | 'loadRTCPeerConnection' | 'statsRttInMs'> {
  /** Loads node-datachannel at the first dial. */
  load: () => Promise<NodeDataChannelModule>;
}

/**
 * WebRTC for Node receivers on node-datachannel's native API, not its W3C polyfill: the
 * polyfill takes a native callback (a thread-safe function, i.e. a libuv async handle that
 * every wake-up of the event loop scans) for every event of every peer and channel, about 23
 * per connection, and an EventTarget dispatch per message; here a connection keeps 6 (its
 * channels' messages and closes), and dial progress is polled. Same
 * signaling, channels and frames as the W3C dialer. `rtcConfig` takes node-datachannel's
 * options (`bindAddress`, `enableIceUdpMux`, `portRangeBegin`/`End`) and W3C `iceServers`.
 */
export function nativeWebrtcDialer(opts: NativeWebRtcDialOptions): Dialer {
  return () => dialNative(opts);
}

/** The gateway's answer: its description first, then its candidates (protocol/sdp.ts). */
export function applyAnswer(pc: NativePeer, sdp: string): void {
  const { description, candidates } = splitCandidates(sdp);
  pc.setRemoteDescription(description, 'answer');
  for (const { candidate, mid } of candidates) pc.addRemoteCandidate(candidate, mid);
}

async function dialNative(opts: NativeWebRtcDialOptions): Promise<FrameLink> {
  const timeoutMs = opts.connectTimeoutMs ?? 10_000;
  const doFetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
  const token = typeof opts.token === 'string' ? opts.token : await opts.token();
  let ndc: NodeDataChannelModule;
  try {
    ndc = await opts.load();
  } catch (error) {
    throw new MirrorstreamError('MS_TRANSPORT_UNAVAILABLE', 'WebRTC in Node needs node-datachannel: npm install node-datachannel', { cause: error });
  }
  const { iceServers, ...rest } = opts.rtcConfig ?? {};
  const pc = new ndc.PeerConnection(`mirrorstream-${opts.endpointId}`, { ...rest, iceServers: stunUrls(iceServers), disableAutoNegotiation: true });
  const channels = nativeChannels(pc);
  const link = new NativeLink(pc, channels);
  let sessionUrl: string | undefined;
  const failed = (): Error | undefined => (['failed', 'closed'].includes(pc.state()) ? new Error(`peer connection ${pc.state()}`) : undefined);
  try {
    pc.setLocalDescription('offer');
    await pollUntil(opts.clock, () => failed() ?? pc.gatheringState() === 'complete', timeoutMs, dialTimeout('ICE gathering', timeoutMs));
    // the offer without candidates, the answer's after its description: protocol/sdp.ts
    const answer = await postOffer(doFetch, opts.gatewayUrl, opts.endpointId, token, splitCandidates(pc.localDescription()?.sdp ?? '').description);
    sessionUrl = answer.sessionUrl;
    applyAnswer(pc, answer.sdp);
    await pollUntil(opts.clock, () => failed() ?? channels.every((c) => c.dc.isOpen()), timeoutMs, dialTimeout('data channels open', timeoutMs));
  } catch (error) {
    link.close('dial failed');
    if (sessionUrl) void endSession(doFetch, sessionUrl, token);
    throw error;
  }
  const url = sessionUrl;
  if (url) link.endSession = () => endSession(doFetch, url, token);
  return link;
}

/** A link over node-datachannel's native channels (dialed here, or answered by a listening receiver). */
export class NativeLink extends ChannelLink {
  readonly #pc: NativePeer;

  constructor(pc: NativePeer, channels: { label: LinkChannel; dc: NativeChannel }[]) {
    // the channels were open when the dial returned; a close comes as a callback
    let open = true;
    super(new Map(channels.map(({ label, dc }) => [label, { writable: () => open, write: (bytes: Uint8Array) => void dc.sendMessageBinary(bytes), close: () => dc.close() }])));
    this.#pc = pc;
    for (const { label, dc } of channels) {
      dc.onMessage((m) => {
        if (typeof m === 'string') return;
        this.received(m instanceof ArrayBuffer ? new Uint8Array(m) : new Uint8Array(m.buffer, m.byteOffset, m.byteLength), label);
      });
      dc.onClosed(() => {
        open = false;
        this.close(`${label} channel closed`);
      });
    }
  }

  /** The SCTP association's RTT (libdatachannel measures it; -1 until it has a sample). */
  rttMs(): Promise<number | undefined> {
    if (this.isClosed) return Promise.resolve(undefined);
    try {
      const rtt = this.#pc.rtt();
      return Promise.resolve(rtt >= 0 ? rtt : undefined);
    } catch {
      return Promise.resolve(undefined);
    }
  }

  protected closePeer(): void {
    this.#pc.close();
  }
}

/** The three negotiated channels (the gateway creates the same). */
export function nativeChannels(pc: NativePeer): { label: LinkChannel; dc: NativeChannel }[] {
  return CHANNELS.map((c) => ({
    label: c.label,
    dc: pc.createDataChannel(c.label, { negotiated: true, id: c.id, unordered: c.init.ordered === false, ...(c.init.maxRetransmits === undefined ? {} : { maxRetransmits: c.init.maxRetransmits }) }),
  }));
}

/** node-datachannel takes ICE servers as `stun:host:port` strings. */
export function stunUrls(servers: unknown): string[] {
  if (!Array.isArray(servers)) return [];
  return (servers as RTCIceServer[]).flatMap((s) => (Array.isArray(s.urls) ? s.urls : [s.urls])).filter((u): u is string => typeof u === 'string');
}
