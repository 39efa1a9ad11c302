import { parseConfig, type GatewayConfigInput } from './config.js';
import { Gateway, type GatewayDeps } from './gateway.js';

export type GatewayOptions = GatewayConfigInput & GatewayDeps;

/** Build a gateway from a config (validated, frozen) plus optional collaborators. */
export function createGateway(options: GatewayOptions = {}): Gateway {
  const { clock, logger, failoverPolicy, webrtcEngine, streamLogs, ...config } = options;
  return new Gateway(parseConfig(config), { clock, logger, failoverPolicy, webrtcEngine, streamLogs });
}
