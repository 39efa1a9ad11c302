#!/usr/bin/env node
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { pino } from 'pino';
import { MirrorstreamError } from '@mirrorstream/receiver/protocol';
import { ConfigError, layeredConfig, parseConfig, parseConfigFile, type GatewayConfigInput } from './config.js';
import { Gateway } from './gateway.js';
import { serve } from './http/server.js';
import { webrtcSelfTest } from './transports/webrtc/index.js';
import { warmUp } from './warm-up.js';

/**
 * `mirrorstream`: flags and environment variables map to the config schema here and
 * nowhere else. Precedence, highest first: flags, environment variables, the `--config`
 * JSON file (any key of the schema, nested as in the README's configuration table), defaults.
 */
function int(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError('not an integer');
  return n;
}

const program = new Command()
  .name('mirrorstream')
  .description('Sequenced stream gateway with prioritized receivers and health-based failover')
  .option('--config <file>', 'JSON configuration file, checked by the same schema; environment variables and flags override it (env MIRRORSTREAM_CONFIG)')
  .option('--host <host>', 'address to listen on (env MIRRORSTREAM_HOST)')
  .option('--port <port>', 'HTTP port, 0 for any free port (env MIRRORSTREAM_PORT)', int)
  .option('--no-warm-up', 'announce itself without the warm-up session against its own HTTP port first (env MIRRORSTREAM_WARM_UP=false)')
  .option('--trust-proxy <list>', 'comma-separated proxies whose X-Forwarded-For counts for per-address limits: IPs, subnets, loopback (env MIRRORSTREAM_TRUST_PROXY)')
  .option('--api-key <key>', 'bearer key for the control API, 16+ chars (env MIRRORSTREAM_API_KEY); generated if absent')
  .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (env MIRRORSTREAM_LOG_LEVEL)')
  .option('--heartbeat-interval-ms <ms>', 'heartbeat interval (env MIRRORSTREAM_HEARTBEAT_INTERVAL_MS)', int)
  .option('--failback-stable-ms <ms>', 'healthy time before failing back (env MIRRORSTREAM_FAILBACK_STABLE_MS)', int)
  .option('--retention-max-chunks <n>', 'chunks kept per stream for replay', int)
  .option('--retention-max-bytes <n>', 'bytes kept per stream for replay', int)
  .option('--retention-max-age-ms <ms>', 'age after which retained chunks are dropped', int)
  .option('--webrtc-engine <engine>', 'node-datachannel | werift (env MIRRORSTREAM_WEBRTC_ENGINE)')
  .option('--webrtc-bind-address <ip>', 'gather and bind only this address, e.g. 127.0.0.1 (env MIRRORSTREAM_WEBRTC_BIND_ADDRESS)')
  .option('--webrtc-ice-port <port>', 'WebRTC sessions on UDP ports from this one (ICE UDP mux); default: a port per session (env MIRRORSTREAM_WEBRTC_ICE_PORT)', int)
  .option('--webrtc-ice-port-count <n>', 'how many consecutive ICE ports from --webrtc-ice-port, default 8 (env MIRRORSTREAM_WEBRTC_ICE_PORT_COUNT)', int)
  .option('--token-secret <secret>', 'HS256 secret for endpoint tokens, 32+ chars (env MIRRORSTREAM_TOKEN_SECRET)')
  .option('--nats <urls>', 'keep streams in NATS JetStream: comma-separated nats://host:port (env MIRRORSTREAM_NATS_URL); default: in memory')
  .option('--nats-replicas <n>', 'JetStream replicas of every stream and KV bucket (env MIRRORSTREAM_NATS_REPLICAS)', int)
  .option('--nats-lease-ms <ms>', 'how long a stream owner holds its lease; a takeover comes about this long after it dies (env MIRRORSTREAM_NATS_LEASE_MS)', int)
  .option('--signaling-per-address <n>', 'signaling requests per client address per 10 s, 0 = no limit (env MIRRORSTREAM_SIGNALING_PER_ADDRESS)', int)
  .option('--tokens-per-address <n>', 'token requests per client address per 10 s, 0 = no limit (env MIRRORSTREAM_TOKENS_PER_ADDRESS)', int)
  .option('--max-sessions <n>', 'signaling sessions open at once in the gateway (env MIRRORSTREAM_MAX_SESSIONS)', int);

program.parse();
const flags = program.opts<{
  config?: string;
  host?: string;
  port?: number;
  trustProxy?: string;
  warmUp?: boolean;
  apiKey?: string;
  logLevel?: GatewayConfigInput['logLevel'];
  heartbeatIntervalMs?: number;
  failbackStableMs?: number;
  retentionMaxChunks?: number;
  retentionMaxBytes?: number;
  retentionMaxAgeMs?: number;
  webrtcEngine?: 'node-datachannel' | 'werift';
  webrtcBindAddress?: string;
  webrtcIcePort?: number;
  webrtcIcePortCount?: number;
  tokenSecret?: string;
  nats?: string;
  natsReplicas?: number;
  natsLeaseMs?: number;
  signalingPerAddress?: number;
  tokensPerAddress?: number;
  maxSessions?: number;
}>();
const env = process.env;
const envInt = (name: string): number | undefined => (env[name] === undefined || env[name] === '' ? undefined : Number(env[name]));
// anything but true/false goes to the schema as it is, which names it in MS_CONFIG_INVALID
const envBool = (name: string): boolean | undefined => (env[name] === undefined || env[name] === '' ? undefined : env[name] === 'true' ? true : env[name] === 'false' ? false : (env[name] as unknown as boolean));

const input: GatewayConfigInput = {
  host: flags.host ?? env.MIRRORSTREAM_HOST ?? undefined,
  port: flags.port ?? envInt('MIRRORSTREAM_PORT'),
  trustProxy: list(flags.trustProxy ?? (env.MIRRORSTREAM_TRUST_PROXY || undefined)),
  // commander's warmUp is true unless --no-warm-up is given, so only false is a flag's word
  warmUp: flags.warmUp === false ? false : envBool('MIRRORSTREAM_WARM_UP'),
  apiKey: flags.apiKey ?? (env.MIRRORSTREAM_API_KEY || undefined),
  logLevel: flags.logLevel ?? (env.MIRRORSTREAM_LOG_LEVEL as GatewayConfigInput['logLevel']),
  heartbeat: { intervalMs: flags.heartbeatIntervalMs ?? envInt('MIRRORSTREAM_HEARTBEAT_INTERVAL_MS') },
  failback: { stableMs: flags.failbackStableMs ?? envInt('MIRRORSTREAM_FAILBACK_STABLE_MS') },
  webrtc: {
    engine: flags.webrtcEngine ?? (env.MIRRORSTREAM_WEBRTC_ENGINE as 'node-datachannel' | 'werift' | undefined),
    bindAddress: flags.webrtcBindAddress ?? (env.MIRRORSTREAM_WEBRTC_BIND_ADDRESS || undefined),
    icePort: flags.webrtcIcePort ?? envInt('MIRRORSTREAM_WEBRTC_ICE_PORT'),
    icePortCount: flags.webrtcIcePortCount ?? envInt('MIRRORSTREAM_WEBRTC_ICE_PORT_COUNT'),
  },
  tokens: { secret: flags.tokenSecret ?? (env.MIRRORSTREAM_TOKEN_SECRET || undefined) },
  log: natsLog(flags.nats ?? (env.MIRRORSTREAM_NATS_URL || undefined), flags.natsReplicas ?? envInt('MIRRORSTREAM_NATS_REPLICAS'), flags.natsLeaseMs ?? envInt('MIRRORSTREAM_NATS_LEASE_MS')),
  limits: {
    signalingPerAddress: flags.signalingPerAddress ?? envInt('MIRRORSTREAM_SIGNALING_PER_ADDRESS'),
    tokensPerAddress: flags.tokensPerAddress ?? envInt('MIRRORSTREAM_TOKENS_PER_ADDRESS'),
    maxSessions: flags.maxSessions ?? envInt('MIRRORSTREAM_MAX_SESSIONS'),
  },
  retention: {
    maxChunks: flags.retentionMaxChunks,
    maxBytes: flags.retentionMaxBytes,
    maxAgeMs: flags.retentionMaxAgeMs,
  },
};

try {
  const config = parseConfig(layeredConfig(readConfigFile(flags.config ?? (env.MIRRORSTREAM_CONFIG || undefined)), dropUndefined(input)));
  const logger = pino({ level: config.logLevel });
  const missing = await webrtcSelfTest(config.webrtc);
  if (missing.length > 0) {
    logger.error({ missing }, `werift self-test FAILED: the installed werift lacks internals mirrorstream reads (${missing.join(', ')}); telemetry and send pacing will be wrong — use --webrtc-engine node-datachannel or werift@0.24.4`);
  } else if (config.webrtc.engine === 'werift') {
    logger.info('werift self-test passed: SCTP srtt/rto/cwnd/flightSize, queues and ICE stunServer are where expected');
  }
  logger.info({ engine: config.webrtc.engine, bindAddress: config.webrtc.bindAddress ?? 'all interfaces', icePorts: config.webrtc.icePort ? `${config.webrtc.icePort}-${config.webrtc.icePort + config.webrtc.icePortCount - 1}` : 'one per session' }, 'WebRTC engine');
  const gateway = new Gateway(config, { logger });
  // with JetStream: connect and bring back the stored streams before taking requests
  for (let attempt = 1; ; attempt++) {
    try {
      await gateway.start();
      break;
    } catch (error) {
      if (!(error instanceof MirrorstreamError && error.retryable)) throw error;
      logger.warn({ err: error, attempt }, 'the stream log is not ready yet; retrying');
      await new Promise((r) => setTimeout(r, Math.min(5_000, 250 * attempt)));
    }
  }
  const apiKey = config.apiKey ?? randomBytes(24).toString('base64url');
  const server = await serve(gateway, { apiKey });
  if (config.webtransport.enabled) {
    // started now so the backend and the dev certificate hash show up at once
    await gateway.startWebTransport().catch((error: unknown) => logger.error({ err: error }, 'WebTransport did not start'));
  }
  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    await gateway.close();
    await server.close();
    process.exit(0);
  };
  // (a SIGTERM during the warm-up drains like any other)
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  if (config.warmUp) {
    // /readyz says `starting` meanwhile; a gateway on every interface is dialed on loopback
    const warming = warmUp(gateway, server.url.replace('://0.0.0.0:', '://127.0.0.1:').replace('://[::]:', '://[::1]:'), logger.child({ module: 'warm-up' }));
    gateway.notReadyUntil(warming);
    await warming;
  }
  if (!stopping) logger.info({ url: server.url }, `mirrorstream listening on ${server.url}`);
  if (!config.apiKey) {
    // printed on stdout on purpose: the operator needs it to call the API
    console.log(`MIRRORSTREAM_API_KEY=${apiKey}  (generated; set MIRRORSTREAM_API_KEY to choose one)`);
  }
} catch (error) {
  if (error instanceof MirrorstreamError) {
    console.error(`mirrorstream: ${error.code}: ${error.message}`);
    process.exit(2);
  }
  throw error;
}

/** The `--config` file's settings (none without a file); MS_CONFIG_INVALID when it cannot be read or is not a JSON object. */
function readConfigFile(path: string | undefined): unknown {
  if (path === undefined) return {};
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`config file ${path} cannot be read: ${error instanceof Error ? error.message : String(error)}`);
  }
  return parseConfigFile(path, text);
}

/** A comma-separated list (flag or environment), or undefined when not given. */
function list(value: string | undefined): string[] | undefined {
  return value === undefined ? undefined : value.split(',').map((v) => v.trim()).filter((v) => v.length > 0);
}

/**
 * `--nats a,b` selects the JetStream log with those servers. Replicas and lease apply without
 * it too: the servers may come from the --config file.
 */
function natsLog(urls: string | undefined, replicas: number | undefined, leaseMs: number | undefined): GatewayConfigInput['log'] {
  if (urls === undefined) return { nats: { replicas, leaseMs } };
  return { kind: 'jetstream', nats: { servers: list(urls) ?? [], replicas, leaseMs } };
}

/** Remove undefined leaves so the schema's defaults apply (it is strict about keys, not about absence). */
function dropUndefined<T>(value: T): T {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = dropUndefined(v);
  return out as T;
}
