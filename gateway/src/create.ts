import { parseConfig, type GatewayConfigInput } from './config.js';
import { Gateway } from './gateway.js';
import type { GatewayDeps } from './gateway-deps.js';

export type GatewayOptions = GatewayConfigInput & GatewayDeps;

/** Build a gateway from a config (validated, frozen) plus optional collaborators. */
export function createGateway(options: GatewayOptions = {}): Gateway {
  const { clock, logger, failoverPolicy, webrtcEngine, backend, loopDelay, ...config } = options;
  return new Gateway(parseConfig(config), { clock, logger, failoverPolicy, webrtcEngine, backend, loopDelay });
}
