import dgram from 'node:dgram';
import { MirrorstreamError, pollUntil, splitCandidates } from '@mirrorstream/receiver/protocol';
import nodeDataChannel from 'node-datachannel';
import type { Measurement, Transport } from '../transport.js';
import { ChannelClosedError, CHANNELS, preparedOffer, stripMdnsCandidates, type ChannelHandle, type ChannelLabel } from './channel.js';
import type { EngineOptions, WebRtcDialOffer, WebRtcEngine, WebRtcOffer } from './engine.js';
import { engineTimeout } from './engine.js';
import { DataChannelTransport, type PeerTelemetry } from './transport.js';

type PeerConnection = InstanceType<typeof nodeDataChannel.PeerConnection>;
type DataChannel = ReturnType<PeerConnection['createDataChannel']>;

/**
 * node-datachannel (libdatachannel, native; its prebuilt binary ships inside the npm
 * package). Measured here 60-70 MB/s for 16 KiB messages on loopback vs werift's 12-15.
 * Uses the native API: its callbacks are single-slot setters, so each is set once here.
 */
export class NodeDataChannelEngine implements WebRtcEngine {
  readonly name = 'node-datachannel';
  readonly #opts: EngineOptions;
  #seq = 0;
  /** One idle peer connection per ICE port: it keeps the port's socket bound between sessions. */
  readonly #keepers: PeerConnection[];

  private constructor(opts: EngineOptions, keepers: PeerConnection[]) {
    this.#opts = opts;
    this.#keepers = keepers;
  }

  /**
   * With ICE ports, each one is claimed here, before any session: libjuice binds a mux port
   * when the first session on it gathers and lets it go when the last one ends, and a port
   * some other process took meanwhile made gathering throw on a native thread, which aborts
   * the whole process. So a port in use is MS_ICE_PORT_IN_USE now (checked with a bind of our
   * own), and a keeper connection holds each port for the engine's lifetime.
   */
  static async open(opts: EngineOptions): Promise<NodeDataChannelEngine> {
    const keepers: PeerConnection[] = [];
    if (opts.icePort) {
      try {
        for (let i = 0; i < (opts.icePortCount ?? 1); i++) {
          const port = opts.icePort + i;
          await assertUdpPortFree(port, opts.bindAddress);
          keepers.push(keeper(port, opts.bindAddress));
        }
      } catch (error) {
        for (const k of keepers) k.close();
        throw error;
      }
    }
    return new NodeDataChannelEngine(opts, keepers);
  }

  close(): void {
    for (const k of this.#keepers.splice(0)) k.close();
  }

  async answer(offerSdp: string): Promise<WebRtcOffer> {
    const { pc, channels, failed } = this.#peer();
    const { clock, connectTimeoutMs } = this.#opts;
    try {
      pc.setRemoteDescription(preparedOffer(offerSdp), 'offer');
      pc.setLocalDescription('answer');
      await pollUntil(clock, () => failed() ?? pc.gatheringState() === 'complete', connectTimeoutMs, engineTimeout('ICE gathering', connectTimeoutMs));
    } catch (error) {
      pc.close();
      throw error;
    }
    return { answerSdp: pc.localDescription()?.sdp ?? '', transport: this.#opened(pc, channels, failed) };
  }

  async offer(): Promise<WebRtcDialOffer> {
    const { pc, channels, failed } = this.#peer();
    const { clock, connectTimeoutMs } = this.#opts;
    try {
      pc.setLocalDescription('offer');
      await pollUntil(clock, () => failed() ?? pc.gatheringState() === 'complete', connectTimeoutMs, engineTimeout('ICE gathering', connectTimeoutMs));
    } catch (error) {
      pc.close();
      throw error;
    }
    return {
      // without its candidates, and the answer's added after its description (protocol/sdp.ts)
      offerSdp: splitCandidates(pc.localDescription()?.sdp ?? '').description,
      complete: (answerSdp) => {
        try {
          const { description, candidates } = splitCandidates(stripMdnsCandidates(answerSdp));
          pc.setRemoteDescription(description, 'answer');
          for (const { candidate, mid } of candidates) pc.addRemoteCandidate(candidate, mid);
        } catch (error) {
          pc.close();
          return Promise.reject(error instanceof Error ? error : new Error(String(error)));
        }
        return this.#opened(pc, channels, failed);
      },
      abort: () => pc.close(),
    };
  }

  /** A peer connection with the three negotiated channels; neither side of the offer yet. */
  #peer(): { pc: PeerConnection; channels: { label: ChannelLabel; dc: DataChannel }[]; failed: () => Error | undefined } {
    const pc = new nodeDataChannel.PeerConnection(`gw-${++this.#seq}`, {
      iceServers: this.#opts.iceServers.filter((u) => u.startsWith('stun:')).map((u) => u.slice('stun:'.length)),
      ...(this.#opts.bindAddress ? { bindAddress: this.#opts.bindAddress } : {}),
      ...(this.#opts.icePort ? muxPort(this.#opts.icePort + (this.#seq % (this.#opts.icePortCount ?? 1))) : {}),
      // descriptions are made only when asked (answer or offer): with auto-negotiation,
      // creating the channels below made an answering gateway an offerer first, and its ICE
      // agent then started controlling (a role conflict with the receiver, resolved at
      // random, that sometimes cost a 1 s DTLS retransmission)
      disableAutoNegotiation: true,
    });
    // a registered state callback also lets node exit after close (native handles otherwise linger)
    pc.onStateChange(() => undefined);
    const channels = CHANNELS.map((c) => {
      const dc = pc.createDataChannel(c.label, {
        negotiated: true,
        id: c.id,
        unordered: !c.ordered,
        ...(c.maxRetransmits === undefined ? {} : { maxRetransmits: c.maxRetransmits }),
      });
      return { label: c.label as ChannelLabel, dc };
    });
    const failed = (): Error | undefined => (['failed', 'closed'].includes(pc.state()) ? new Error(`peer connection ${pc.state()}`) : undefined);
    return { pc, channels, failed };
  }

  /** The transport once every channel is open (the peer is closed if they do not open in time). */
  #opened(pc: PeerConnection, channels: { label: ChannelLabel; dc: DataChannel }[], failed: () => Error | undefined): Promise<Transport> {
    const { clock, connectTimeoutMs } = this.#opts;
    return pollUntil(clock, () => failed() ?? channels.every((c) => c.dc.isOpen()), connectTimeoutMs, engineTimeout('data channels open', connectTimeoutMs)).then(
      () =>
        new DataChannelTransport({
          engine: this.name,
          channels: Object.fromEntries(channels.map((c): [ChannelLabel, ChannelHandle] => [c.label, new NdcChannel(c.dc, c.label === 'data')])) as Record<ChannelLabel, ChannelHandle>,
          telemetry: telemetry(pc),
          lowWaterBytes: 64 * 1024,
          highWaterBytes: 1024 * 1024,
          clock,
        }),
      (error: unknown) => {
        pc.close();
        throw error;
      },
    );
  }
}

/*
 * Connecting sessions look at the gathering and channel state (pollUntil) instead of taking
 * the engine's callbacks for it: each node-datachannel callback is a thread-safe function, i.e.
 * a libuv async handle for the connection's lifetime, and libuv scans every such handle on
 * every wake-up of the event loop. Measured here (perf, 500 connections): that scan was the
 * largest item of the gateway's JavaScript thread; a connection now keeps only the callbacks it
 * needs (messages, close, the data channel's low-water mark), 8 instead of 17.
 */

/**
 * A node-datachannel channel as the transport sees it: a class, so a connection's three
 * channels cost three small objects, not a dozen closures each. The engine's low-water event
 * is taken on the data channel only (`lowWater`); the transport's drain poll covers the others.
 * The channel was open when this was made: `isOpen` is ours (no native call per send).
 */
class NdcChannel implements ChannelHandle {
  readonly label: string;
  readonly #dc: DataChannel;
  readonly #lowWater: boolean;
  #closed = false;
  #onClose: (() => void) | undefined;

  constructor(dc: DataChannel, lowWater: boolean) {
    this.#dc = dc;
    this.#lowWater = lowWater;
    this.label = dc.getLabel();
    dc.onClosed(() => {
      this.#closed = true;
      this.#onClose?.();
    });
  }

  get isOpen(): boolean {
    return !this.#closed;
  }

  get bufferedAmount(): number {
    return this.#closed ? 0 : this.#dc.bufferedAmount();
  }

  send(bytes: Uint8Array): void {
    try {
      this.#dc.sendMessageBinary(bytes);
    } catch (error) {
      // closed natively before the close callback reached us (a page that went away)
      if (this.#dc.isOpen()) throw error;
      this.#closed = true;
      throw new ChannelClosedError(this.label);
    }
  }

  setLowThreshold(bytes: number): void {
    if (this.#lowWater) this.#dc.setBufferedAmountLowThreshold(bytes);
  }

  onLow(cb: () => void): void {
    if (this.#lowWater) this.#dc.onBufferedAmountLow(cb);
  }

  onMessage(cb: (bytes: Uint8Array) => void): void {
    this.#dc.onMessage((m) => {
      if (typeof m === 'string') return;
      cb(m instanceof ArrayBuffer ? new Uint8Array(m) : new Uint8Array(m.buffer, m.byteOffset, m.byteLength));
    });
  }

  /** The transport's one close listener. */
  onClose(cb: () => void): void {
    this.#onClose = cb;
  }

  close(): void {
    if (!this.#closed) this.#dc.close();
  }
}

function telemetry(pc: PeerConnection): PeerTelemetry {
  let closed = false;
  return {
    snapshot() {
      if (closed) return { extra: {} };
      const extra: Record<string, Measurement> = {
        bytesSentTotal: { value: pc.bytesSent(), source: 'node-datachannel.bytesSent' },
        bytesReceivedTotal: { value: pc.bytesReceived(), source: 'node-datachannel.bytesReceived' },
      };
      const rtt = pc.rtt();
      // libdatachannel reports the SCTP association's RTT in ms; -1 until it has a sample
      const rttMs = rtt >= 0 ? { value: rtt, source: 'node-datachannel.rtt (usrsctp)' } : undefined;
      return { ...(rttMs ? { rttMs } : {}), extra };
    },
    close() {
      if (closed) return;
      closed = true;
      pc.close();
    },
  };
}

function muxPort(port: number): Record<string, unknown> {
  return { enableIceUdpMux: true, portRangeBegin: port, portRangeEnd: port };
}

/**
 * MS_ICE_PORT_IN_USE unless we can bind `port` (UDP) on `address`; released at once. With no
 * address libjuice binds every interface, IPv6 (dual-stack) where the host has it: so do we,
 * falling back to IPv4 on a host without IPv6.
 */
async function assertUdpPortFree(port: number, address: string | undefined): Promise<void> {
  const bind = (family: 'udp4' | 'udp6', host: string | undefined): Promise<NodeJS.ErrnoException | undefined> =>
    new Promise((resolve) => {
      const socket = dgram.createSocket({ type: family, ipv6Only: false });
      socket.once('error', (error: NodeJS.ErrnoException) => {
        socket.close();
        resolve(error);
      });
      socket.bind(port, host, () => socket.close(() => resolve(undefined)));
    });
  let error = address === undefined ? await bind('udp6', '::') : await bind(address.includes(':') ? 'udp6' : 'udp4', address);
  if (address === undefined && (error?.code === 'EAFNOSUPPORT' || error?.code === 'EADDRNOTAVAIL')) error = await bind('udp4', undefined);
  if (error) {
    throw new MirrorstreamError('MS_ICE_PORT_IN_USE', `ICE port ${port} (UDP${address ? ` on ${address}` : ''}) cannot be bound: ${error.code ?? error.message}; choose free ports with webrtc.icePort / icePortCount`, { cause: error });
  }
}

/** An idle connection on a mux port: gathering binds the port, and it stays bound while this lives. */
function keeper(port: number, address: string | undefined): PeerConnection {
  const pc = new nodeDataChannel.PeerConnection(`ice-port-${port}`, { iceServers: [], ...(address ? { bindAddress: address } : {}), ...muxPort(port), disableAutoNegotiation: true });
  pc.onStateChange(() => undefined);
  // an offer needs something to negotiate; nothing ever answers it
  pc.createDataChannel('ice-port', { negotiated: true, id: 0 });
  pc.setLocalDescription('offer');
  return pc;
}
