import type { Clock } from '@mirrorstream/receiver/protocol';
import type { Transport } from '../transport.js';

/** A WebRTC engine answers one SDP offer; the transport resolves once the data channels are open. */
export interface WebRtcOffer {
  answerSdp: string;
  transport: Promise<Transport>;
}

/**
 * The gateway's own offer (dial-out to a listening receiver): send `offerSdp`, then hand the
 * listener's answer to `complete`, which resolves once the data channels are open. `abort`
 * lets the peer go when no answer comes.
 */
export interface WebRtcDialOffer {
  offerSdp: string;
  complete(answerSdp: string): Promise<Transport>;
  abort(): void;
}

export interface WebRtcEngine {
  readonly name: 'werift' | 'node-datachannel';
  answer(offerSdp: string): Promise<WebRtcOffer>;
  /** Make an offer (ICE gathered) for a receiver that listens; the same channels and transport as `answer`. */
  offer(): Promise<WebRtcDialOffer>;
  /** Let go of what the engine holds beyond its sessions (node-datachannel: its ICE ports). */
  close?(): void;
}

export interface EngineOptions {
  /** Only this address is gathered and bound (e.g. 127.0.0.1); undefined: every interface. */
  bindAddress: string | undefined;
  /** `stun:host:port` URLs; empty means host candidates only, and no lookup leaves the machine. */
  iceServers: readonly string[];
  connectTimeoutMs: number;
  /** Sessions on the UDP ports icePort .. icePort + icePortCount - 1 (ICE UDP mux), round-robin; undefined: a port per session. */
  icePort?: number | undefined;
  icePortCount?: number;
  /** Connect timeouts and the transports' timers run on it. */
  clock: Clock;
}

/** The error of an engine step that took too long. */
export function engineTimeout(what: string, ms: number): () => Error {
  return () => new Error(`${what}: no result after ${ms} ms`);
}
