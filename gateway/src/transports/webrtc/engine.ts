import type { Clock, TimerHandle } from '@mirrorstream/receiver/protocol';
import type { Transport } from '../transport.js';

/** A WebRTC engine answers one SDP offer; the transport resolves once the data channels are open. */
export interface WebRtcOffer {
  answerSdp: string;
  transport: Promise<Transport>;
}

export interface WebRtcEngine {
  readonly name: 'werift' | 'node-datachannel';
  answer(offerSdp: string): Promise<WebRtcOffer>;
}

export interface EngineOptions {
  /** Only this address is gathered and bound (e.g. 127.0.0.1); undefined: every interface. */
  bindAddress: string | undefined;
  /** `stun:host:port` URLs; empty means host candidates only, and no lookup leaves the machine. */
  iceServers: readonly string[];
  connectTimeoutMs: number;
  /** Connect timeouts and the transports' timers run on it. */
  clock: Clock;
}

export function withTimeout<T>(clock: Clock, p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: TimerHandle | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = clock.setTimeout(() => reject(new Error(`${what}: no result after ${ms} ms`)), ms);
    }),
  ]).finally(() => clock.clearTimeout(timer));
}
