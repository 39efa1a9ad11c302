import { withTimeout } from '@mirrorstream/receiver/protocol';
import type { Logger } from 'pino';
import type { Gateway } from './gateway.js';

/**
 * The warm-up session must be up within this, or the instance starts without it. Generous on
 * purpose: the instance is not announced yet, and on a loaded 2-core machine a cold first dial
 * (JIT, native session setup) took over 2 s, so a tight bound made the warm-up fail exactly when
 * it helps most.
 */
const WARM_UP_TIMEOUT_MS = 10_000;
/** Each dial phase (ICE gathering, channels open) within this, so two retries fit in the time above. */
const DIAL_TIMEOUT_MS = 3_000;

/**
 * One receiver session against this instance's own HTTP port before it announces itself (CLI,
 * `warmUp`): the SDK's Node receiver dials WebRTC through the signaling route, says HELLO, gets
 * WELCOME and closes. A fresh instance runs that path cold (JIT, first native sessions), and in
 * a rolling restart its first receivers are the ones a draining instance has just sent over:
 * measured here, the restart step onto a fresh instance paused delivery 160–351 ms without this
 * and 93–178 ms with it (low CPU steal; `test/integration/multi-instance.test.ts`, rolling
 * restart). The endpoint (`warm-up-<instance id>`) is in no stream; this instance forgets it
 * when it disconnects. Never throws: a warm-up that fails is logged, and the instance serves.
 */
export async function warmUp(gateway: Gateway, url: string, log: Logger): Promise<void> {
  const started = performance.now();
  const endpointId = `warm-up-${gateway.status().instance_id}`.slice(0, 128);
  let receiver: { close(): void } | undefined;
  try {
    const { Receiver } = await import('@mirrorstream/receiver/node');
    const { token } = await gateway.issueToken(endpointId, { ttl_s: 60 });
    const bindAddress = gateway.config.webrtc.bindAddress;
    const rx = new Receiver({
      gatewayUrl: url,
      endpointId,
      token,
      transports: ['webrtc'],
      connectTimeoutMs: DIAL_TIMEOUT_MS,
      // up to two more dials after a failed one (a first dial can fail on the known
      // node-datachannel candidate race), then the warm-up gives up
      reconnect: { nextRetryDelayMs: ({ attempt }) => (attempt < 2 ? 100 : null) },
      ...(bindAddress ? { rtcConfig: { bindAddress } } : {}),
    });
    receiver = rx;
    rx.on('error', () => undefined);
    await withTimeout(gateway.clock, rx.connect(), WARM_UP_TIMEOUT_MS, () => new Error(`not connected within ${WARM_UP_TIMEOUT_MS} ms`));
    log.info({ endpointId, durationMs: Math.round(performance.now() - started) }, 'warm-up session connected (WebRTC through the HTTP port); closing it');
  } catch (error) {
    log.warn({ endpointId, err: error }, 'warm-up session failed: serving without it (receivers may not connect over WebRTC here)');
  } finally {
    receiver?.close();
  }
}
