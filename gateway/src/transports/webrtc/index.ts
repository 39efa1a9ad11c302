import type { Clock } from '@mirrorstream/receiver/protocol';
import type { WebRtcConfig } from '../../config.js';
import type { WebRtcEngine } from './engine.js';

export type { WebRtcEngine, WebRtcOffer } from './engine.js';
export { stripMdnsCandidates, preparedOffer, looksLikeDataOffer, CHANNELS } from './channel.js';

/** Load the configured engine; the other engine's module is never imported. */
export async function createWebRtcEngine(config: WebRtcConfig, clock: Clock): Promise<WebRtcEngine> {
  const opts = { bindAddress: config.bindAddress, iceServers: config.iceServers, connectTimeoutMs: config.connectTimeoutMs, icePort: config.icePort, icePortCount: config.icePortCount, clock };
  if (config.engine === 'werift') {
    const { WeriftEngine } = await import('./werift-engine.js');
    return new WeriftEngine(opts);
  }
  const { NodeDataChannelEngine } = await import('./ndc-engine.js');
  return NodeDataChannelEngine.open(opts);
}

/** Missing werift internals (empty when all is well, or when the engine is not werift). */
export async function webrtcSelfTest(config: WebRtcConfig): Promise<string[]> {
  if (config.engine !== 'werift') return [];
  const { weriftSelfTest } = await import('./werift-engine.js');
  return weriftSelfTest();
}
