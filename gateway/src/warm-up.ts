import type { Logger } from 'pino';
import type { Gateway } from './gateway.js';

/** The warm-up session must be up within this, or the instance starts without it. */
const WARM_UP_TIMEOUT_MS = 5_000;

/**
 * One receiver session against this instance's own HTTP port before it announces itself (CLI,
 * `warmUp`): the SDK's Node receiver dials WebRTC through the signaling route, says HELLO, gets
 * WELCOME and closes. A fresh instance runs that path cold (JIT, first native sessions), and in
 * a rolling restart its first receivers are the ones a draining instance has just sent over:
 * measured here, the restart step onto a fresh instance paused delivery 207–278 ms without this
 * and 81–127 ms with it (`test/integration/multi-instance.test.ts`, rolling restart). The
 * endpoint (`warm-up-<instance id>`) is in no stream and is forgotten when it disconnects. A
 * warm-up that fails is logged; the instance serves all the same.
 */
export async function warmUp(gateway: Gateway, url: string, log: Logger): Promise<void> {
  const started = performance.now();
  const endpointId = `warm-up-${gateway.status().instance_id}`.slice(0, 128);
  const { Receiver } = await import('@mirrorstream/receiver/node');
  const { token } = await gateway.issueToken(endpointId, { ttl_s: 60 });
  const bindAddress = gateway.config.webrtc.bindAddress;
  const receiver = new Receiver({
    gatewayUrl: url,
    endpointId,
    token,
    transports: ['webrtc'],
    connectTimeoutMs: WARM_UP_TIMEOUT_MS,
    // a dial that fails is tried again once, then the warm-up gives up
    reconnect: { nextRetryDelayMs: ({ attempt }) => (attempt <= 2 ? 100 : null) },
    ...(bindAddress ? { rtcConfig: { bindAddress } } : {}),
  });
  receiver.on('error', () => undefined);
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      receiver.connect(),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`not connected within ${WARM_UP_TIMEOUT_MS} ms`)), WARM_UP_TIMEOUT_MS))),
    ]);
    log.info({ endpointId, durationMs: Math.round(performance.now() - started) }, 'warm-up session connected and closed (WebRTC through the HTTP port)');
  } catch (error) {
    log.warn({ endpointId, err: error }, 'warm-up session failed: serving without it (receivers may not connect over WebRTC here)');
  } finally {
    clearTimeout(timer);
    receiver.close();
  }
}
