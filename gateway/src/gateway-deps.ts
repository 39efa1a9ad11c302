import type { Clock } from '@mirrorstream/receiver/protocol';
import type { Logger } from 'pino';
import type { FailoverPolicy } from './failover/policy.js';
import type { Backend } from './storage/backend.js';
import type { WebRtcEngine } from './transports/webrtc/index.js';
import type { LoopDelaySource } from './signaling/admission.js';

/** Collaborators that are not configuration: injected so tests and embedders can replace them. */
export interface GatewayDeps {
  clock?: Clock;
  logger?: Logger;
  failoverPolicy?: FailoverPolicy;
  /** A WebRTC engine to use instead of the one `config.webrtc.engine` names. */
  webrtcEngine?: WebRtcEngine;
  /** Where streams, chunks and cursors are kept (default: the one `config.log` names). */
  backend?: Backend;
  /** What admission control reads the event loop's delay from (tests: a fake). */
  loopDelay?: LoopDelaySource;
}
