import { randomBytes } from 'node:crypto';
import type { Clock } from '@mirrorstream/receiver/protocol';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config.js';
import type { Closing } from '../core/lifecycle.js';
import type { Transport } from '../transports/transport.js';
import type { WebRtcEngine } from '../transports/webrtc/index.js';
import type { TimerQueue } from '../core/timers.js';
import { Admission, eventLoopDelay, type LoopDelaySource } from './admission.js';
import { SessionBudget } from './budget.js';
import { EndpointTokens } from './tokens.js';
import { WebRtcSessions } from './webrtc-sessions.js';
import { WebTransportSignaling } from './webtransport.js';

/** What a receiver talks to before it has a connection: tokens, WebRTC sessions, WebTransport tickets. */
export class Signaling {
  readonly tokens: EndpointTokens;
  readonly webrtc: WebRtcSessions;
  readonly webtransport: WebTransportSignaling;
  readonly admission: Admission;

  constructor(o: {
    config: GatewayConfig;
    clock: Clock;
    timers: TimerQueue;
    log: Logger;
    engine: WebRtcEngine | undefined;
    accept: (transport: Transport, auth: { endpointId: string; sessionId?: string }) => void;
    closing: Closing;
    loopDelay?: LoopDelaySource;
  }) {
    const { config, clock, log, accept, closing } = o;
    this.tokens = new EndpointTokens(config.tokens.secret ?? randomBytes(32).toString('base64url'), config.tokens.ttlS, clock);
    const budget = new SessionBudget(config.limits, (kind) => this.admission.admit(kind));
    this.admission = new Admission({ config: config.admission, timers: o.timers, loopDelay: o.loopDelay ?? eventLoopDelay(), pendingHandshakes: () => this.webrtc.pendingHandshakes, sessionsOpen: () => budget.open });
    this.webrtc = new WebRtcSessions({ config: config.webrtc, clock, log, tokens: this.tokens, budget, engine: o.engine, accept, closing });
    this.webtransport = new WebTransportSignaling({ config, clock, log, tokens: this.tokens, budget, accept, closing });
  }

  async close(reason: string): Promise<void> {
    this.admission.stop();
    await this.webrtc.stop(reason);
    await this.webtransport.stop();
  }
}
