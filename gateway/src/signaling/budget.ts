import { MirrorstreamError } from '@mirrorstream/receiver/protocol';
import type { AdmissionKind } from './admission.js';

/**
 * How many signaling sessions may be open at once, per endpoint and in total. A session
 * takes a slot when signaling answers it (a WebRTC offer, a WebTransport ticket) and
 * gives it back when its transport closes, or when it never comes up. So a flood of
 * offers with one valid token costs at most `perEndpoint` peer connections.
 */
export class SessionBudget {
  readonly #perEndpoint: number;
  readonly #total: number;
  readonly #open = new Map<string, number>();
  #count = 0;

  readonly #admit: (kind: AdmissionKind) => void;

  /** `admit`: admission control for an endpoint with no session open (throws to refuse it). */
  constructor(limits: { sessionsPerEndpoint: number; maxSessions: number }, admit: (kind: AdmissionKind) => void = () => undefined) {
    this.#perEndpoint = limits.sessionsPerEndpoint;
    this.#total = limits.maxSessions;
    this.#admit = admit;
  }

  get open(): number {
    return this.#count;
  }

  /** Take a slot for a session over `kind`; returns its release (idempotent). Throws MS_TOO_MANY_SESSIONS (429, retryable) when none is left. */
  take(endpointId: string, kind: AdmissionKind): () => void {
    const mine = this.#open.get(endpointId) ?? 0;
    // an endpoint with a session open is served already (a replacement, a transport switch)
    if (mine === 0) this.#admit(kind);
    if (mine >= this.#perEndpoint) {
      throw new MirrorstreamError('MS_TOO_MANY_SESSIONS', `endpoint ${endpointId} already has ${mine} signaling sessions open (limits.sessionsPerEndpoint); retry once one closed`, { retryable: true });
    }
    if (this.#count >= this.#total) {
      throw new MirrorstreamError('MS_TOO_MANY_SESSIONS', `the gateway has ${this.#count} signaling sessions open (limits.maxSessions)`, { retryable: true });
    }
    this.#open.set(endpointId, mine + 1);
    this.#count++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#count--;
      const left = (this.#open.get(endpointId) ?? 1) - 1;
      if (left <= 0) this.#open.delete(endpointId);
      else this.#open.set(endpointId, left);
    };
  }
}
