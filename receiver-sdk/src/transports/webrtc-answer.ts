import type { FrameLink } from '../link.js';
import { pollUntil, type Clock } from '../protocol/clock.js';
import { dialTimeout } from './signaling.js';
import { NativeLink, nativeChannels, stunUrls, type NodeDataChannelModule } from './webrtc-native.js';

export interface AnswerOptions {
  ndc: NodeDataChannelModule;
  clock: Clock;
  /** ICE gathering, then the channels opening, each within this. */
  timeoutMs: number;
  /** node-datachannel options (`bindAddress`, `portRangeBegin`/`End`, …) and W3C `iceServers`. */
  rtcConfig?: Record<string, unknown>;
  name: string;
}

export interface AnsweredSession {
  answerSdp: string;
  /** The link once every channel is open (the peer is closed if they do not open in time). */
  link: Promise<FrameLink>;
  close(): void;
}

/**
 * The listening receiver's side of a dial-out: the gateway's offer in, our answer out, and the
 * same link (node-datachannel's native API, the three negotiated channels) as a dialed
 * connection. The gateway's `setup:actpass` is read as `passive`, so this side opens DTLS, as a
 * dialing receiver does: the gateway stays the DTLS server (see the gateway's `preparedOffer`
 * for why that costs less).
 */
export async function answerOffer(offerSdp: string, o: AnswerOptions): Promise<AnsweredSession> {
  const { iceServers, ...rest } = o.rtcConfig ?? {};
  const pc = new o.ndc.PeerConnection(o.name, { ...rest, iceServers: stunUrls(iceServers), disableAutoNegotiation: true });
  const channels = nativeChannels(pc);
  const link = new NativeLink(pc, channels);
  const failed = (): Error | undefined => (['failed', 'closed'].includes(pc.state()) ? new Error(`peer connection ${pc.state()}`) : undefined);
  try {
    pc.setRemoteDescription(asPassiveOffer(offerSdp), 'offer');
    pc.setLocalDescription('answer');
    await pollUntil(o.clock, () => failed() ?? pc.gatheringState() === 'complete', o.timeoutMs, dialTimeout('ICE gathering', o.timeoutMs));
  } catch (error) {
    link.close('answer failed');
    throw error;
  }
  const opened = pollUntil(o.clock, () => failed() ?? channels.every((c) => c.dc.isOpen()), o.timeoutMs, dialTimeout('data channels open', o.timeoutMs)).then(
    (): FrameLink => link,
    (error: unknown) => {
      link.close('channels did not open');
      throw error;
    },
  );
  return { answerSdp: pc.localDescription()?.sdp ?? '', link: opened, close: () => link.close('session ended') };
}

/** Read the offer's `setup:actpass` as `passive`: we answer `active` and open DTLS. */
function asPassiveOffer(sdp: string): string {
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  return sdp
    .split(/\r?\n/)
    .map((line) => (line === 'a=setup:actpass' ? 'a=setup:passive' : line))
    .join(eol);
}
