import { randomUUID } from 'node:crypto';
import { MirrorstreamError, type Clock } from '@mirrorstream/receiver/protocol';
import type { Logger } from 'pino';
import type { WebRtcConfig } from '../config.js';
import { assertOpen, type Closing } from '../core/lifecycle.js';
import { idSchema, parseInput } from '../streams/spec.js';
import type { Transport } from '../transports/transport.js';
import { createWebRtcEngine, looksLikeDataOffer, type WebRtcEngine } from '../transports/webrtc/index.js';
import type { SessionBudget } from './budget.js';
import type { EndpointTokens } from './tokens.js';

export interface WebRtcSession {
  session_id: string;
  endpoint_id: string;
  answer_sdp: string;
}

export interface WebRtcSessionsOptions {
  config: WebRtcConfig;
  clock: Clock;
  log: Logger;
  tokens: EndpointTokens;
  budget: SessionBudget;
  /** Use this engine instead of the one `config.engine` names. */
  engine?: WebRtcEngine | undefined;
  /** Hand a transport whose channels opened to the gateway. */
  accept(transport: Transport, auth: { endpointId: string; sessionId: string }): void;
  closing: Closing;
}

/**
 * WHEP-style WebRTC signaling: the token is checked before the engine sees anything, the
 * engine answers the receiver's SDP offer, and the session (its transport once up) is
 * kept until the receiver DELETEs it or the transport closes. The engine is loaded at the
 * first offer.
 */
export class WebRtcSessions {
  readonly #o: WebRtcSessionsOptions;
  #engine: Promise<WebRtcEngine> | undefined;
  readonly #sessions = new Map<string, { endpointId: string; transport: Transport | undefined; closed: boolean }>();
  #pending = 0;

  /** Offers answered whose connection is not up (or failed) yet: admission's handshake budget. */
  get pendingHandshakes(): number {
    return this.#pending;
  }

  constructor(options: WebRtcSessionsOptions) {
    this.#o = options;
    if (options.engine) this.#engine = Promise.resolve(options.engine);
  }

  async open(endpointId: string, token: string | undefined, offerSdp: string): Promise<WebRtcSession> {
    assertOpen(this.#o.closing);
    parseInput(idSchema, endpointId, 'endpoint id');
    await this.#o.tokens.verify(token, endpointId);
    if (!looksLikeDataOffer(offerSdp)) {
      throw new MirrorstreamError('MS_BAD_REQUEST', 'body must be an SDP offer (v=0 ...) with an m=application SCTP section, at most 64 KiB');
    }
    const release = this.#o.budget.take(endpointId, 'webrtc');
    let offer;
    try {
      const engine = await this.start();
      offer = { ...(await engine.answer(offerSdp)), engine: engine.name };
    } catch (error) {
      release();
      if (error instanceof MirrorstreamError) throw error;
      // the offer passed our shape check, so this may as well be the engine's own fault: the
      // client gets a 400, the operator a warning with the engine's error
      this.#o.log.warn({ endpointId, err: error }, 'the WebRTC engine rejected an offer');
      throw new MirrorstreamError('MS_BAD_REQUEST', `the WebRTC engine rejected the offer: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    const sessionId = randomUUID();
    const session = { endpointId, transport: undefined as Transport | undefined, closed: false };
    this.#sessions.set(sessionId, session);
    this.#pending++;
    void offer.transport.finally(() => this.#pending--).catch(() => undefined);
    offer.transport.then(
      (transport) => {
        void transport.closed.then(release);
        if (session.closed || this.#o.closing()) {
          transport.close(session.closed ? 'session deleted' : 'gateway closing');
          return;
        }
        session.transport = transport;
        void transport.closed.then(() => this.#sessions.delete(sessionId));
        this.#o.accept(transport, { endpointId, sessionId });
      },
      (error: unknown) => {
        release();
        this.#sessions.delete(sessionId);
        this.#o.log.warn({ endpointId, err: error }, 'WebRTC session did not come up');
      },
    );
    this.#o.log.info({ endpointId, session: sessionId, engine: offer.engine }, 'WebRTC offer answered');
    return { session_id: sessionId, endpoint_id: endpointId, answer_sdp: offer.answerSdp };
  }

  /**
   * Load the engine (the first offer does it otherwise). With ICE ports the engine claims them
   * here, so a port taken by another process is MS_ICE_PORT_IN_USE at start, not a session
   * later; a failed load is tried again by the next call.
   */
  start(): Promise<WebRtcEngine> {
    this.#engine ??= createWebRtcEngine(this.#o.config, this.#o.clock).catch((error: unknown) => {
      this.#engine = undefined;
      throw error;
    });
    return this.#engine;
  }

  /** End a session (WHEP DELETE). */
  async close(endpointId: string, token: string | undefined, sessionId: string): Promise<void> {
    await this.#o.tokens.verify(token, endpointId);
    const session = this.#sessions.get(sessionId);
    if (!session || session.endpointId !== endpointId) throw new MirrorstreamError('MS_SESSION_NOT_FOUND', `no session ${sessionId.slice(0, 64)} for ${endpointId}`);
    session.closed = true;
    this.#sessions.delete(sessionId);
    session.transport?.close('session deleted');
  }

  closeAll(reason: string): void {
    for (const session of this.#sessions.values()) {
      session.closed = true;
      session.transport?.close(reason);
    }
    this.#sessions.clear();
  }

  /** Close every session and let go of the engine's own resources (its ICE ports). */
  async stop(reason: string): Promise<void> {
    this.closeAll(reason);
    const engine = await this.#engine?.catch(() => undefined);
    engine?.close?.();
  }
}
