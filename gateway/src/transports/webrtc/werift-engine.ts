import { withTimeout } from '@mirrorstream/receiver/protocol';
import { RTCPeerConnection, type RTCDataChannel } from 'werift';
import type { Measurement, Transport } from '../transport.js';
import { CHANNELS, stripMdnsCandidates, type ChannelHandle, type ChannelLabel } from './channel.js';
import { DataChannelTransport, type PeerTelemetry } from './transport.js';
import type { EngineOptions, WebRtcDialOffer, WebRtcEngine, WebRtcOffer } from './engine.js';
import { engineTimeout } from './engine.js';

/**
 * werift (pure TypeScript WebRTC), pinned at 0.24.4 because 0.25 needs Node 22.
 * Known problems handled here:
 * - With `iceServers: []` werift still falls back to stun.l.google.com:19302; we clear the
 *   ICE connection's `stunServer` between setRemoteDescription and gathering (per peer,
 *   no global patch) unless STUN servers are configured.
 * - SCTP maybeAbandon is wrong twice: `maxRetransmits: 0` is ignored (`!!0`), and it marks
 *   the *first* DATA chunk of the send queue abandoned instead of the expired one, which
 *   would drop a reliable channel's message. We replace it per association with a
 *   corrected version (found in a spike: 10 % loss, 300 unreliable messages → 279 arrive
 *   and 0 retransmissions, instead of 300 with 23 retransmissions).
 * - Deep send buffers collapse small-message throughput (measured: 1 KiB chunks at
 *   5 MB/s with 64 KiB buffered, 0.16 MB/s with 1 MiB), so the transport asks for 64 KiB.
 */

/** The SCTP association internals we read (private in werift's typings). Checked by `selfTest`. */
interface SctpChunk {
  type: number;
  sentCount?: number;
  maxRetransmits?: number;
  expiry?: number;
  abandoned?: boolean;
  retransmit?: boolean;
  flags: number;
}

interface SctpInternals {
  srtt?: number;
  rto: number;
  cwnd: number;
  flightSize: number;
  sentQueue: SctpChunk[];
  sendChunk(chunk: SctpChunk): Promise<void>;
  maybeAbandon(chunk: SctpChunk): boolean;
}

const LAST_FRAG = 0x01;
const FIRST_FRAG = 0x02;

interface IceConnectionInternals {
  stunServer?: unknown;
}

const DATA_CHUNK_TYPE = 0;

export class WeriftEngine implements WebRtcEngine {
  readonly name = 'werift';
  readonly #opts: EngineOptions;

  constructor(opts: EngineOptions) {
    this.#opts = opts;
  }

  async answer(offerSdp: string): Promise<WebRtcOffer> {
    const { pc, channels } = this.#peer();
    try {
      await pc.setRemoteDescription({ type: 'offer', sdp: stripMdnsCandidates(offerSdp) });
      this.#noDefaultStun(pc);
      await pc.setLocalDescription(await pc.createAnswer());
      await withTimeout(this.#opts.clock, gathered(pc), this.#opts.connectTimeoutMs, engineTimeout('ICE gathering', this.#opts.connectTimeoutMs));
    } catch (error) {
      await pc.close().catch(() => undefined);
      throw error;
    }
    return { answerSdp: pc.localDescription?.sdp ?? '', transport: this.#opened(pc, channels) };
  }

  async offer(): Promise<WebRtcDialOffer> {
    const { pc, channels } = this.#peer();
    try {
      const offer = await pc.createOffer();
      this.#noDefaultStun(pc);
      await pc.setLocalDescription(offer);
      await withTimeout(this.#opts.clock, gathered(pc), this.#opts.connectTimeoutMs, engineTimeout('ICE gathering', this.#opts.connectTimeoutMs));
    } catch (error) {
      await pc.close().catch(() => undefined);
      throw error;
    }
    return {
      offerSdp: pc.localDescription?.sdp ?? '',
      complete: async (answerSdp) => {
        try {
          await pc.setRemoteDescription({ type: 'answer', sdp: stripMdnsCandidates(answerSdp) });
        } catch (error) {
          await pc.close().catch(() => undefined);
          throw error;
        }
        return this.#opened(pc, channels);
      },
      abort: () => void pc.close().catch(() => undefined),
    };
  }

  #peer(): { pc: RTCPeerConnection; channels: RTCDataChannel[] } {
    const bind = this.#opts.bindAddress;
    const stun = this.#opts.iceServers.filter((u) => u.startsWith('stun:'));
    const pc = new RTCPeerConnection({
      iceServers: stun.map((urls) => ({ urls })),
      ...(bind ? { iceUseIpv4: false, iceUseIpv6: false, iceAdditionalHostAddresses: [bind], iceInterfaceAddresses: { udp4: bind } } : {}),
    });
    const channels = CHANNELS.map((c) =>
      pc.createDataChannel(c.label, {
        negotiated: true,
        id: c.id,
        ordered: c.ordered,
        ...(c.maxRetransmits === undefined ? {} : { maxRetransmits: c.maxRetransmits }),
      }),
    );
    return { pc, channels };
  }

  /** werift falls back to a public STUN server with none configured: not unless asked (see above). */
  #noDefaultStun(pc: RTCPeerConnection): void {
    if (this.#opts.iceServers.some((u) => u.startsWith('stun:'))) return;
    for (const t of pc.iceTransports) (t.connection as unknown as IceConnectionInternals).stunServer = undefined;
  }

  #opened(pc: RTCPeerConnection, channels: RTCDataChannel[]): Promise<Transport> {
    return withTimeout(
      this.#opts.clock,
      Promise.all(channels.map(opened)).then(() => {
        const sctp = pc.sctpTransport?.sctp as unknown as SctpInternals | undefined;
        const counters = sctp ? instrument(sctp) : { dataSent: 0, retransmits: 0 };
        const queued = queueDepth(pc);
        const handles = Object.fromEntries(
          channels.map((dc) => [dc.label as ChannelLabel, wrap(dc, dc.label === 'data' ? queued : () => 0)]),
        ) as Record<ChannelLabel, ChannelHandle>;
        return new DataChannelTransport({
          engine: this.name,
          channels: handles,
          telemetry: telemetry(pc, sctp, counters),
          lowWaterBytes: 16 * 1024,
          highWaterBytes: 64 * 1024,
          clock: this.#opts.clock,
        });
      }),
      this.#opts.connectTimeoutMs,
      engineTimeout('data channels open', this.#opts.connectTimeoutMs),
    ).catch(async (error: unknown) => {
      await pc.close().catch(() => undefined);
      throw error;
    });
  }
}

function gathered(pc: RTCPeerConnection): Promise<void> {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const sub = pc.iceGatheringStateChange.subscribe((s) => {
      if (s === 'complete') {
        sub.unSubscribe();
        resolve();
      }
    });
  });
}

function opened(dc: RTCDataChannel): Promise<void> {
  if (dc.readyState === 'open') return Promise.resolve();
  return new Promise((resolve, reject) => {
    dc.stateChanged.subscribe((s) => {
      if (s === 'open') resolve();
      if (s === 'closed') reject(new Error(`${dc.label} closed before opening`));
    });
  });
}

/**
 * werift's send path does work per queued message on every send (each send starts a
 * flush over the whole queue), so thousands of small queued messages cost O(n²). We
 * count each queued message as 1 KiB on top of its bytes, which bounds the queue at
 * about 64 messages under the 64 KiB high-water mark.
 */
function queueDepth(pc: RTCPeerConnection): () => number {
  const transport = pc.sctpTransport as unknown as { dataChannelQueue?: unknown[]; sctp?: { outboundQueue?: unknown[] } } | undefined;
  return () => (transport?.dataChannelQueue?.length ?? 0) + (transport?.sctp?.outboundQueue?.length ?? 0);
}

const QUEUED_MESSAGE_WEIGHT = 1024;

function wrap(dc: RTCDataChannel, queued: () => number): ChannelHandle {
  return {
    label: dc.label,
    get isOpen() {
      return dc.readyState === 'open';
    },
    get bufferedAmount() {
      return dc.bufferedAmount + queued() * QUEUED_MESSAGE_WEIGHT;
    },
    send: (bytes) => dc.send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)),
    setLowThreshold: (n) => {
      dc.bufferedAmountLowThreshold = n;
    },
    onLow: (cb) => void dc.bufferedAmountLow.subscribe(cb),
    onMessage: (cb) =>
      void dc.onMessage.subscribe((m) => {
        if (typeof m !== 'string') cb(new Uint8Array(m.buffer, m.byteOffset, m.byteLength));
      }),
    onClose: (cb) =>
      void dc.stateChanged.subscribe((s) => {
        if (s === 'closed') cb();
      }),
    close: () => dc.close(),
  };
}

/** Count DATA chunks and their retransmissions, and fix the maxRetransmits: 0 bug, on one association. */
function instrument(sctp: SctpInternals): { dataSent: number; retransmits: number } {
  const counters = { dataSent: 0, retransmits: 0 };
  const sendChunk = sctp.sendChunk.bind(sctp);
  sctp.sendChunk = (chunk) => {
    if (chunk.type === DATA_CHUNK_TYPE) {
      counters.dataSent++;
      if ((chunk.sentCount ?? 1) > 1) counters.retransmits++;
    }
    return sendChunk(chunk);
  };
  sctp.maybeAbandon = (chunk) => {
    if (chunk.abandoned) return true;
    const abandon =
      (chunk.maxRetransmits !== undefined && chunk.maxRetransmits !== null && chunk.maxRetransmits < (chunk.sentCount ?? 0)) ||
      // werift sets `expiry` from its own wall clock (Date.now() seconds), so it is compared on that clock
      (chunk.expiry !== undefined && chunk.expiry !== null && chunk.expiry < Date.now() / 1000);
    if (!abandon) return false;
    const at = sctp.sentQueue.indexOf(chunk);
    if (at < 0) return false;
    // every fragment of this one message: back to its FIRST_FRAG, forward to its LAST_FRAG
    for (let pos = at; pos >= 0; pos--) {
      const c = sctp.sentQueue[pos];
      if (!c || (pos !== at && c.flags & LAST_FRAG)) break;
      c.abandoned = true;
      c.retransmit = false;
      if (c.flags & FIRST_FRAG) break;
    }
    for (let pos = at; pos < sctp.sentQueue.length; pos++) {
      const c = sctp.sentQueue[pos];
      if (!c) break;
      c.abandoned = true;
      c.retransmit = false;
      if (c.flags & LAST_FRAG) break;
    }
    return true;
  };
  return counters;
}

function telemetry(pc: RTCPeerConnection, sctp: SctpInternals | undefined, counters: { dataSent: number; retransmits: number }): PeerTelemetry {
  let pairRttMs: number | undefined;
  // retransmission share over the last refresh interval (a lifetime ratio would never recover)
  let mark = { dataSent: 0, retransmits: 0 };
  let recentLoss: number | undefined;
  const lossRate = (): Measurement | undefined => (recentLoss === undefined ? undefined : { value: recentLoss, source: 'werift.sctp.retransmits/dataChunksSent (last 1 s)' });
  return {
    lossRate,
    snapshot() {
      const extra: Record<string, Measurement> = {};
      if (sctp) {
        if (sctp.srtt !== undefined) extra.sctpSrttMs = { value: sctp.srtt * 1000, source: 'werift.sctp.srtt' };
        extra.sctpRtoMs = { value: sctp.rto * 1000, source: 'werift.sctp.rto' };
        extra.sctpCwndBytes = { value: sctp.cwnd, source: 'werift.sctp.cwnd' };
        extra.sctpFlightSizeBytes = { value: sctp.flightSize, source: 'werift.sctp.flightSize' };
        extra.sctpDataChunksSent = { value: counters.dataSent, source: 'werift.sctp.sendChunk' };
        extra.sctpRetransmits = { value: counters.retransmits, source: 'werift.sctp.sendChunk(sentCount>1)' };
      }
      if (pairRttMs !== undefined) extra.candidatePairRttMs = { value: pairRttMs, source: 'werift.getStats.candidate-pair' };
      const rttMs =
        pairRttMs !== undefined
          ? { value: pairRttMs, source: 'werift.getStats.candidate-pair.currentRoundTripTime' }
          : sctp?.srtt !== undefined
            ? { value: sctp.srtt * 1000, source: 'werift.sctp.srtt' }
            : undefined;
      const loss = lossRate();
      return { ...(rttMs ? { rttMs } : {}), ...(loss ? { lossRate: loss } : {}), extra };
    },
    async refresh() {
      const sent = counters.dataSent - mark.dataSent;
      recentLoss = sent >= 20 ? (counters.retransmits - mark.retransmits) / sent : undefined;
      mark = { ...counters };
      const report = await pc.getStats();
      for (const s of report.values() as Iterable<{ type?: string; state?: string; nominated?: boolean; currentRoundTripTime?: number }>) {
        if (s.type === 'candidate-pair' && s.currentRoundTripTime !== undefined && (s.nominated || s.state === 'succeeded')) {
          pairRttMs = s.currentRoundTripTime * 1000;
        }
      }
    },
    close() {
      void pc.close().catch(() => undefined);
    },
  };
}

/**
 * Startup check that the werift internals read above exist in the installed version.
 * Returns the missing pieces (empty when all is well).
 */
export async function weriftSelfTest(): Promise<string[]> {
  const missing: string[] = [];
  const a = new RTCPeerConnection({ iceServers: [], iceUseIpv4: false, iceUseIpv6: false, iceAdditionalHostAddresses: ['127.0.0.1'], iceInterfaceAddresses: { udp4: '127.0.0.1' } });
  try {
    // creating a channel builds the ICE and SCTP objects; nothing is gathered or sent
    a.createDataChannel('probe', { negotiated: true, id: 0 });
    const conn = a.iceTransports[0]?.connection as unknown as IceConnectionInternals | undefined;
    if (!conn || !('stunServer' in conn)) missing.push('iceTransports[0].connection.stunServer');
    const sctp = a.sctpTransport?.sctp as unknown as Partial<SctpInternals> | undefined;
    if (!sctp) missing.push('sctpTransport.sctp');
    else {
      for (const k of ['rto', 'cwnd', 'flightSize'] as const) if (typeof sctp[k] !== 'number') missing.push(`sctp.${k}`);
      if (!Array.isArray((sctp as { outboundQueue?: unknown }).outboundQueue)) missing.push('sctp.outboundQueue');
      if (!Array.isArray((a.sctpTransport as unknown as { dataChannelQueue?: unknown }).dataChannelQueue)) missing.push('sctpTransport.dataChannelQueue');
      if (!('srtt' in sctp)) missing.push('sctp.srtt');
      if (typeof sctp.sendChunk !== 'function') missing.push('sctp.sendChunk');
      if (typeof sctp.maybeAbandon !== 'function') missing.push('sctp.maybeAbandon');
      if (!Array.isArray(sctp.sentQueue)) missing.push('sctp.sentQueue');
    }
  } finally {
    await a.close().catch(() => undefined);
  }
  return missing;
}
