import { isIP } from 'node:net';
import { z } from 'zod';
import { DEFAULT_MAX_FRAME_BYTES, MAX_FRAME_BYTES_LIMIT, MirrorstreamError } from '@mirrorstream/receiver/protocol';

/**
 * The one gateway configuration schema: strict (unknown keys are an error), defaults in
 * the schema, units in the names. `parseConfig` never mutates its input and returns a
 * frozen object.
 */
export const retentionSchema = z
  .strictObject({
    maxChunks: z.number().int().min(1).max(10_000_000).default(100_000),
    maxBytes: z.number().int().min(1024).max(16 * 1024 ** 3).default(64 * 1024 ** 2),
    maxAgeMs: z.number().int().min(1).max(7 * 24 * 3600_000).default(60_000),
  })
  .prefault({});

export const heartbeatSchema = z
  .strictObject({
    /**
     * How often the gateway sends HEARTBEAT to an endpoint a decision waits on: one carrying a
     * stream with somewhere to fail over to, the next in line, a hedging or degraded one (as
     * adaptive probing picks them).
     */
    intervalMs: z.number().int().min(10).max(60_000).default(250),
    /**
     * Heartbeat interval of every other endpoint (a standby further down a list, the only
     * endpoint of a stream): its death is found within a few of these. WELCOME tells receivers
     * this interval: 4 × it is the most an SDK waits on a silent gateway (HEARTBEAT's cadence
     * makes that shorter where probes or heartbeats are faster).
     * Default: 1 s, or intervalMs where that is longer.
     */
    standbyIntervalMs: z.number().int().min(10).max(60_000).optional(),
    /** Phi at which an endpoint is `suspect` (not promoted, but kept if already active). */
    phiSuspect: z.number().positive().default(3),
    /** Phi at which an endpoint is `dead` (an active endpoint is replaced). */
    phiDead: z.number().positive().default(8),
    /** Floor for the inter-arrival standard deviation, so a very regular loopback link does not get a hair trigger. */
    minStdDevMs: z.number().positive().default(50),
    /** Pause always tolerated on top of the observed mean (GC, tab throttling). */
    acceptablePauseMs: z.number().min(0).default(0),
    /** Inter-arrival samples kept per endpoint. */
    windowSize: z.number().int().min(2).max(10_000).default(100),
    /**
     * A connection whose endpoint stays `dead` this long is closed, so the receiver dials a new
     * one: its path may be wedged one way only (the receiver still hears probes, so its own
     * silence watch never fires), and a new connection heals that. 0: never.
     */
    closeDeadAfterMs: z.number().int().min(0).max(600_000).default(10_000),
  })
  .refine((h) => h.phiDead > h.phiSuspect, { message: 'phiDead must be greater than phiSuspect' })
  .refine((h) => h.standbyIntervalMs === undefined || h.standbyIntervalMs >= h.intervalMs, { message: 'standbyIntervalMs must be at least intervalMs' })
  // default: 1 s, or intervalMs where that is longer
  .transform((h) => ({ ...h, standbyIntervalMs: h.standbyIntervalMs ?? Math.max(1_000, h.intervalMs) }))
  .prefault({});

export const failoverSchema = z
  .strictObject({
    /**
     * How long an active endpoint whose connection closed keeps its role while it may
     * come back on another transport (e.g. WebTransport → WebRTC) and resume. 0: fail
     * over at once.
     */
    reconnectGraceMs: z.number().int().min(0).max(60_000).default(0),
    /**
     * A new stream waits up to this long for its higher-priority endpoints to connect before
     * it picks its first active one (no needless first switch when a lower one is quicker).
     */
    startupGraceMs: z.number().int().min(0).max(60_000).default(1_000),
    /**
     * Hedged delivery (failover mode): while the active endpoint is silent or suspect, the
     * next healthy standby also receives the stream from the last acked seq + 1. Its death
     * commits the switch (`hedge-commit`, nothing replayed); an answer ends the hedge.
     * false: today's switch on death only.
     */
    hedge: z.boolean().default(true),
  })
  .prefault({});

export const failbackSchema = z
  .strictObject({
    /** Return to a recovered higher-priority endpoint once it has been healthy this long. */
    enabled: z.boolean().default(true),
    stableMs: z.number().int().min(0).max(3600_000).default(5_000),
  })
  .prefault({});

export const healthSchema = z
  .strictObject({
    /** Probe (HEARTBEAT on the unreliable channel) interval: loss and RTT samples. */
    probeIntervalMs: z.number().int().min(5).max(10_000).default(20),
    /** Probe interval of an endpoint active on a stream that has another endpoint to fail over to: its silence is judged this finely. */
    carrierProbeIntervalMs: z.number().int().min(5).max(10_000).default(10),
    /**
     * Probe interval of an endpoint no decision is waiting on: a standby that is not next in
     * line, or the active endpoint of a stream with no other endpoint: by default at the
     * standby heartbeat rate, its loss measured over 10 probes. Next-in-line standbys, hedging ones, degraded ones proving recovery and
     * active ones that may switch transport are probed every probeIntervalMs.
     */
    standbyProbeIntervalMs: z.number().int().min(5).max(60_000).default(1_000),
    /**
     * An endpoint active on a stream is silent (suspect) when a probe has waited for its echo,
     * with nothing else heard, longer than max(silenceFloorMs, silenceRttFactor × RTT p99).
     */
    silenceFloorMs: z.number().int().min(1).max(60_000).default(15),
    silenceRttFactor: z.number().min(1).max(100).default(2),
    /** Measurement window for probe loss/RTT and delivery ratio. */
    windowMs: z.number().int().min(100).max(60_000).default(1_000),
    /** A breach must last this long before the verdict turns degraded. */
    degradeAfterMs: z.number().int().min(0).max(60_000).default(250),
    /** No breach for this long before a degraded endpoint is healthy again. */
    recoverAfterMs: z.number().int().min(0).max(600_000).default(3_000),
    maxRttMs: z.number().positive().default(250),
    maxLossRatio: z.number().min(0).max(1).default(0.05),
    /** Oldest sent-but-unacked chunk on the active endpoint. */
    maxAckLagMs: z.number().positive().default(1_000),
    /** Acked bytes/s over input bytes/s on the active endpoint, while the stream produces. */
    minDeliveryRatio: z.number().min(0).max(1).default(0.8),
  })
  // the scheduler picks a rate by role; a slower rate for a more urgent role would invert it
  .refine((h) => h.carrierProbeIntervalMs <= h.probeIntervalMs && h.probeIntervalMs <= h.standbyProbeIntervalMs, {
    message: 'probe intervals must satisfy carrierProbeIntervalMs <= probeIntervalMs <= standbyProbeIntervalMs',
  })
  .prefault({});

export const rateSchema = z
  .strictObject({
    /** Pacing floor: a new path starts here and ramps with its acks. */
    minPaceBytesPerSec: z.number().int().min(1024).default(1024 * 1024),
    /** Pacing rate = gain x max(delivered rate, input rate). */
    paceGain: z.number().min(1).max(100).default(2),
    /** Pacing bucket depth, ms of the current rate. */
    paceBurstMs: z.number().int().min(1).max(10_000).default(50),
    /** How long an HTTP ingest waits on a backpressured stream before answering 429. */
    ingestWaitMs: z.number().int().min(0).max(600_000).default(2_000),
  })
  .prefault({});

export const webrtcSchema = z
  .strictObject({
    /** node-datachannel (native, faster) or werift (pure TypeScript). Both pass the same conformance suite. */
    engine: z.enum(['node-datachannel', 'werift']).default('node-datachannel'),
    /** Gather and bind only this address (e.g. 127.0.0.1); default: every interface. */
    bindAddress: z.string().min(1).optional(),
    /** `stun:host:port` URLs. Empty by default: host candidates only, nothing leaves the machine. */
    iceServers: z.array(z.string().regex(/^stun:[^\s]+:\d+$/)).max(8).default([]),
    /** How long ICE gathering and the data channels may take to come up. */
    connectTimeoutMs: z.number().int().min(100).max(120_000).default(10_000),
    /**
     * WebRTC sessions on a few fixed UDP ports (ICE UDP mux, node-datachannel engine): ports
     * icePort .. icePort + icePortCount - 1, sessions dealt round-robin. Each port is one socket
     * and one ICE thread for its sessions instead of a socket per session (whose thread polls
     * them all on every packet), and a firewall opens a known range. Unset: each session binds
     * its own ephemeral port.
     */
    icePort: z.number().int().min(1).max(65_535).optional(),
    /** How many consecutive ports from icePort (each ICE thread then serves a share of the sessions). */
    icePortCount: z.number().int().min(1).max(64).default(8),
  })
  .refine((w) => w.icePort === undefined || w.engine === 'node-datachannel', { message: 'icePort (ICE UDP mux) needs the node-datachannel engine' })
  .refine((w) => w.icePort === undefined || w.icePort + w.icePortCount - 1 <= 65_535, { message: 'icePort + icePortCount - 1 must be a port (at most 65535)' })
  .prefault({});

export const webtransportSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    /** Its own TLS port (0: any free port; receivers learn the URL from signaling). */
    port: z.number().int().min(0).max(65_535).default(0),
    /** PEM files; without them a self-signed ECDSA cert is generated and its SHA-256 handed out. */
    certFile: z.string().min(1).optional(),
    keyFile: z.string().min(1).optional(),
  })
  .refine((w) => (w.certFile === undefined) === (w.keyFile === undefined), { message: 'certFile and keyFile go together' })
  .prefault({});

export const natsSchema = z
  .strictObject({
    /** `nats://host:port` URLs of the NATS cluster (any subset; the client learns the rest). */
    servers: z.array(z.string().regex(/^(nats|tls):\/\/[^\s/]+$/, 'a NATS URL is nats://host:port')).max(16).default([]),
    /** JetStream replicas of every stream log and KV bucket (1, or 3 on a 3-node cluster). */
    replicas: z.number().int().min(1).max(5).default(1),
    /** Prefix of the JetStream streams and KV buckets, so several deployments can share one NATS account. */
    prefix: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/).default('ms'),
    /** How long one JetStream or KV request may take before it counts as an outage (MS_LOG_UNAVAILABLE). */
    requestTimeoutMs: z.number().int().min(100).max(60_000).default(5_000),
    /**
     * A stream's owner (the instance deciding its roles) holds a lease this long and renews
     * it every quarter; if the owner dies, another instance takes over within about this
     * plus a quarter of it. Instances' clocks must agree to well within a quarter of it.
     */
    leaseMs: z.number().int().min(400).max(60_000).default(2_000),
    /**
     * Instance presence on core NATS: every instance says it is alive every `intervalMs`; one
     * not heard for `goneMs` is gone (its leases are taken over, its receivers count as
     * disconnected); an instance that has not heard itself for `selfMs` stops deciding first.
     */
    presence: z
      .strictObject({
        intervalMs: z.number().int().min(20).max(10_000).default(100),
        goneMs: z.number().int().min(100).max(60_000).default(300),
        selfMs: z.number().int().min(50).max(60_000).default(200),
      })
      .refine((p) => p.intervalMs * 2 <= p.selfMs && p.selfMs < p.goneMs, { message: 'presence needs 2 x intervalMs <= selfMs < goneMs' })
      .prefault({}),
  })
  .prefault({});

/**
 * Where streams keep their chunks, specs and cursors: `memory` (the embedded default, gone
 * with the process) or `jetstream` (NATS JetStream: durable, shared by several instances).
 */
export const logSchema = z
  .strictObject({
    kind: z.enum(['memory', 'jetstream']).default('memory'),
    nats: natsSchema,
  })
  .refine((l) => l.kind !== 'jetstream' || l.nats.servers.length > 0, { message: 'log.kind "jetstream" needs log.nats.servers', path: ['nats', 'servers'] })
  .prefault({});

export const tokensSchema = z
  .strictObject({
    /** HS256 secret for endpoint tokens (32+ chars); generated per process when absent, so tokens die with it. */
    secret: z.string().min(32).optional(),
    /** Default endpoint token lifetime. */
    ttlS: z.number().int().min(1).max(30 * 24 * 3600).default(3600),
  })
  .prefault({});

/** Limits that keep one client (or a flood of them) from exhausting the gateway. */
export const limitsSchema = z
  .strictObject({
    /** JSON request bodies nested deeper than this are refused (400) before anything walks them. */
    maxJsonDepth: z.number().int().min(4).max(1_000).default(64),
    /** A request head must arrive within this (408 after); against slow-header clients. */
    headersTimeoutMs: z.number().int().min(1_000).max(600_000).default(10_000),
    /** A whole request (head and body) must arrive within this (408 after). */
    requestTimeoutMs: z.number().int().min(1_000).max(3_600_000).default(60_000),
    /**
     * Signaling sessions (WebRTC offers answered, WebTransport tickets) per endpoint that may
     * be open at once: the current one, a replacement overlapping it, and a retry.
     */
    sessionsPerEndpoint: z.number().int().min(1).max(100).default(3),
    /** Signaling sessions open at once in the whole gateway. */
    maxSessions: z.number().int().min(1).max(1_000_000).default(20_000),
    /** The window of the per-address rate limits below. */
    rateWindowMs: z.number().int().min(100).max(3_600_000).default(10_000),
    /** Signaling requests (offers, WebTransport tickets, session deletes) per client address per window; 0: no limit. */
    signalingPerAddress: z.number().int().min(0).default(50),
    /** Token requests per client address per window; 0: no limit. */
    tokensPerAddress: z.number().int().min(0).default(1_000),
  })
  .refine((l) => l.headersTimeoutMs <= l.requestTimeoutMs, { message: 'headersTimeoutMs must not exceed requestTimeoutMs', path: ['headersTimeoutMs'] })
  .prefault({});

/**
 * Bytes a DATA frame adds around its payload at most: stream id (128 chars), key (256
 * chars, up to 4 bytes each in UTF-8), seq, timestamp, layer and the msgpack headers.
 */
export const DATA_FRAME_OVERHEAD_BYTES = 2048;

/** An address, a subnet (`10.0.0.0/8`) or one of proxy-addr's names for a proxy the gateway trusts. */
const trustedProxySchema = z.string().refine(
  (v) => {
    if (v === 'loopback' || v === 'linklocal' || v === 'uniquelocal') return true;
    const [ip, bits, ...rest] = v.split('/');
    const family = isIP(ip ?? '');
    if (family === 0 || rest.length > 0) return false;
    // a /0 (everyone) is refused, as Express's proxy-addr does
    return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) >= 1 && Number(bits) <= (family === 4 ? 32 : 128));
  },
  { message: 'a trusted proxy is an IP address, a subnet (10.0.0.0/8) or loopback, linklocal, uniquelocal' },
);

export const gatewayConfigSchema = z.strictObject({
  host: z.string().min(1).default('127.0.0.1'),
  port: z.number().int().min(0).max(65_535).default(8080),
  /**
   * Proxies (a TLS-terminating nginx, a load balancer) whose X-Forwarded-For the gateway
   * believes, so per-address limits count the client, not the proxy. Empty: none (the
   * address limits then count every client behind a proxy as one).
   */
  trustProxy: z.array(trustedProxySchema).max(32).default([]),
  /**
   * CLI: before it announces itself, one WebRTC receiver session against its own HTTP port
   * (warm-up.ts), so its first real receivers do not meet cold code.
   */
  warmUp: z.boolean().default(true),
  /** Bearer key for the control API; `undefined` means the CLI generates one. */
  apiKey: z.string().min(16).optional(),
  maxFrameBytes: z.number().int().min(1024).max(MAX_FRAME_BYTES_LIMIT).default(DEFAULT_MAX_FRAME_BYTES),
  /** Largest accepted HTTP request body (chunk batches). */
  maxBodyBytes: z.number().int().min(1024).max(256 * 1024 ** 2).default(8 * 1024 ** 2),
  /** Largest single chunk payload; must fit in a DATA frame. */
  maxChunkBytes: z.number().int().min(1).max(64 * 1024 ** 2).default(512 * 1024),
  /** Stop writing to a connection while its transport buffers more than this. */
  sendHighWaterBytes: z.number().int().min(1024).default(256 * 1024),
  /** Gateway housekeeping tick: failure-detector checks, fail-back timers, age eviction. */
  tickMs: z.number().int().min(1).max(10_000).default(50),
  /** How long `close()` waits for active endpoints to ack what was published. */
  drainTimeoutMs: z.number().int().min(0).default(5_000),
  /** How long an accepted connection may take to send HELLO. */
  helloTimeoutMs: z.number().int().min(1).default(10_000),
  /**
   * How long a publish's idempotency key is remembered per stream, so a retry within it
   * appends nothing twice (with JetStream: its duplicate window, never above a stream's max age).
   */
  idempotencyWindowMs: z.number().int().min(1_000).max(24 * 3600_000).default(120_000),
  /** Switch records kept per stream for the health API. */
  switchHistory: z.number().int().min(1).max(10_000).default(50),
  retention: retentionSchema,
  heartbeat: heartbeatSchema,
  failback: failbackSchema,
  failover: failoverSchema,
  health: healthSchema,
  rate: rateSchema,
  webrtc: webrtcSchema,
  webtransport: webtransportSchema,
  tokens: tokensSchema,
  limits: limitsSchema,
  log: logSchema,
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
})
  // receivers refuse frames above the advertised maxFrameBytes, so every chunk must fit in one
  .refine((c) => c.maxChunkBytes + DATA_FRAME_OVERHEAD_BYTES <= c.maxFrameBytes, {
    message: `maxChunkBytes + ${DATA_FRAME_OVERHEAD_BYTES} (DATA frame overhead) must not exceed maxFrameBytes`,
    path: ['maxChunkBytes'],
  });

export type GatewayConfigInput = z.input<typeof gatewayConfigSchema>;
export type GatewayConfig = Readonly<z.output<typeof gatewayConfigSchema>>;
export type RetentionConfig = z.output<typeof retentionSchema>;
export type HeartbeatConfig = z.output<typeof heartbeatSchema>;
export type WebRtcConfig = z.output<typeof webrtcSchema>;
export type HealthConfig = z.output<typeof healthSchema>;
export type FailbackConfig = z.output<typeof failbackSchema>;
export type LogConfig = z.output<typeof logSchema>;
export type NatsConfig = z.output<typeof natsSchema>;
export type LimitsConfig = z.output<typeof limitsSchema>;

/** Validate and freeze; throws MirrorstreamError MS_CONFIG_INVALID with every problem listed. */
export function parseConfig(input: GatewayConfigInput = {}): GatewayConfig {
  const result = gatewayConfigSchema.safeParse(input);
  if (!result.success) {
    throw new ConfigError(z.prettifyError(result.error));
  }
  return deepFreeze(result.data);
}

/**
 * Layers of configuration, lowest precedence first (a JSON file, then environment variables,
 * then flags): objects merge key by key, anything else (numbers, strings, arrays) from the
 * higher layer replaces the lower one; an undefined leaf leaves the lower layer's value.
 * The result still goes through parseConfig, so a file is checked by the same schema.
 */
export function layeredConfig(...layers: unknown[]): GatewayConfigInput {
  const merge = (lower: unknown, higher: unknown): unknown => {
    if (higher === undefined) return lower;
    if (!isPlainObject(higher) || !isPlainObject(lower)) return higher;
    const out: Record<string, unknown> = { ...lower };
    // defineProperty: a "__proto__" key stays a key (the schema rejects it), not a prototype
    for (const [k, v] of Object.entries(higher)) Object.defineProperty(out, k, { value: merge(out[k], v), enumerable: true, writable: true, configurable: true });
    return out;
  };
  const merged = layers.reduce<unknown>((acc, layer) => merge(acc, layer), {});
  return merged as GatewayConfigInput;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A `--config` file: JSON, checked by the gateway's schema once layered (MS_CONFIG_INVALID when it cannot be read or parsed). */
export function parseConfigFile(path: string, text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`config file ${path} is not valid JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (!isPlainObject(value)) throw new ConfigError(`config file ${path} must hold a JSON object`);
  return value;
}

export class ConfigError extends MirrorstreamError {
  constructor(message: string) {
    super('MS_CONFIG_INVALID', message);
    this.name = 'ConfigError';
  }
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
