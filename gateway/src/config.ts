import { isIP } from 'node:net';
import { z } from 'zod';
import { DEFAULT_MAX_FRAME_BYTES, MAX_FRAME_BYTES_LIMIT, MirrorstreamError } from '@mirrorstream/receiver/protocol';

/**
 * The one gateway configuration schema: strict (unknown keys are an error), defaults in
 * the schema, units in the names. `parseConfig` never mutates its input and returns a
 * frozen object. Every key and section carries its description (`.describe()`, last in its
 * chain): the CLI's help and docs/configuration.md are generated from them.
 */
export const retentionSchema = z
  .strictObject({
    maxChunks: z.number().int().min(1).max(10_000_000).default(100_000).describe('Chunks kept per stream.'),
    maxBytes: z.number().int().min(1024).max(16 * 1024 ** 3).default(64 * 1024 ** 2).describe('Bytes kept per stream.'),
    maxAgeMs: z.number().int().min(1).max(7 * 24 * 3600_000).default(60_000).describe('Age after which a retained chunk is dropped.'),
  })
  .prefault({})
  .describe('What a stream keeps for replay to a receiver that resumes or takes over (a stream may set its own); the newest chunk is always kept.');

export const heartbeatSchema = z
  .strictObject({
    intervalMs: z.number().int().min(10).max(60_000).default(250).describe(
      'How often the gateway sends HEARTBEAT to an endpoint a decision waits on: one carrying a stream with somewhere to fail over to, the next in line, a hedging or degraded one (as adaptive probing picks them).',
    ),
    standbyIntervalMs: z.number().int().min(10).max(60_000).optional().describe(
      'Heartbeat interval of every other endpoint (a standby further down a list, the only endpoint of a stream): its death is found within a few of these. WELCOME tells receivers this interval: 4 × it is the most an SDK waits on a silent gateway (HEARTBEAT\'s cadence makes that shorter where probes or heartbeats are faster). Default: 1 s, or intervalMs where that is longer.',
    ),
    phiSuspect: z.number().positive().default(3).describe('Phi at which an endpoint is `suspect` (not promoted, but kept if already active).'),
    phiDead: z.number().positive().default(8).describe('Phi at which an endpoint is `dead` (an active endpoint is replaced); above phiSuspect.'),
    minStdDevMs: z.number().positive().default(50).describe('Floor for the inter-arrival standard deviation, so a very regular loopback link does not get a hair trigger.'),
    acceptablePauseMs: z.number().min(0).default(0).describe('Pause always tolerated on top of the observed mean (GC, tab throttling).'),
    windowSize: z.number().int().min(2).max(10_000).default(100).describe('Inter-arrival samples kept per endpoint.'),
    closeDeadAfterMs: z.number().int().min(0).max(600_000).default(10_000).describe(
      'A connection whose endpoint stays `dead` this long is closed, so the receiver dials a new one: its path may be wedged one way only (the receiver still hears probes, so its own silence watch never fires), and a new connection heals that. 0: never.',
    ),
  })
  .refine((h) => h.phiDead > h.phiSuspect, { message: 'phiDead must be greater than phiSuspect' })
  .refine((h) => h.standbyIntervalMs === undefined || h.standbyIntervalMs >= h.intervalMs, { message: 'standbyIntervalMs must be at least intervalMs' })
  // default: 1 s, or intervalMs where that is longer
  .transform((h) => ({ ...h, standbyIntervalMs: h.standbyIntervalMs ?? Math.max(1_000, h.intervalMs) }))
  .prefault({})
  .describe('Heartbeats to endpoints and the phi-accrual failure detector that judges their silence.');

export const failoverSchema = z
  .strictObject({
    reconnectGraceMs: z.number().int().min(0).max(60_000).default(0).describe(
      'How long an active endpoint whose connection closed keeps its role while it may come back on another transport (e.g. WebTransport → WebRTC) and resume. 0: fail over at once.',
    ),
    startupGraceMs: z.number().int().min(0).max(60_000).default(1_000).describe(
      'A new stream waits up to this long for its higher-priority endpoints to connect before it picks its first active one (no needless first switch when a lower one is quicker).',
    ),
    hedge: z.boolean().default(true).describe(
      'Hedged delivery (failover mode): while the active endpoint is silent or suspect, the next healthy standby also receives the stream from the last acked seq + 1. Its death commits the switch (`hedge-commit`, nothing replayed); an answer ends the hedge. false: switch on death only.',
    ),
  })
  .prefault({})
  .describe('Switching the active endpoint of a failover stream.');

export const failbackSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Return to a recovered higher-priority endpoint once it has been healthy for stableMs.'),
    stableMs: z.number().int().min(0).max(3600_000).default(5_000).describe('How long a recovered higher-priority endpoint must stay healthy before the stream fails back to it.'),
  })
  .prefault({})
  .describe('Going back to a higher-priority endpoint that recovered.');

export const healthSchema = z
  .strictObject({
    probeIntervalMs: z.number().int().min(5).max(10_000).default(20).describe('Probe (HEARTBEAT on the unreliable channel) interval: loss and RTT samples.'),
    carrierProbeIntervalMs: z.number().int().min(5).max(10_000).default(10).describe(
      'Probe interval of an endpoint active on a stream that has another endpoint to fail over to: its silence is judged this finely.',
    ),
    standbyProbeIntervalMs: z.number().int().min(5).max(60_000).default(1_000).describe(
      'Probe interval of an endpoint no decision is waiting on: a standby that is not next in line, or the active endpoint of a stream with no other endpoint (its loss measured over 10 probes). Next-in-line standbys, hedging ones, degraded ones proving recovery on a stream with another endpoint and active ones that may switch transport are probed every probeIntervalMs.',
    ),
    reportIntervalMs: z.number().int().min(100).max(60_000).default(1_000).describe(
      'How often a receiver is asked to send RECEIVER_REPORT where a decision waits on its endpoint (the endpoints heartbeated every heartbeat.intervalMs). Told in HEARTBEAT to SDKs from 0.2.2 on; older ones report every second; a receiver\'s own reportIntervalMs may make it slower.',
    ),
    standbyReportIntervalMs: z.number().int().min(100).max(600_000).default(5_000).describe(
      'How often every other receiver is asked to report (a standby further down a list, the only endpoint of a stream): its reports feed no failover decision, and each is a message the gateway receives.',
    ),
    silenceFloorMs: z.number().int().min(1).max(60_000).default(15).describe(
      'An endpoint active on a stream is silent (suspect) when a probe has waited for its echo, with nothing else heard, longer than max(silenceFloorMs, silenceRttFactor × RTT p99).',
    ),
    silenceRttFactor: z.number().min(1).max(100).default(2).describe('The RTT p99 factor of the silence limit (see silenceFloorMs).'),
    windowMs: z.number().int().min(100).max(60_000).default(1_000).describe('Measurement window for probe loss/RTT and delivery ratio.'),
    degradeAfterMs: z.number().int().min(0).max(60_000).default(250).describe('A breach must last this long before the verdict turns degraded.'),
    recoverAfterMs: z.number().int().min(0).max(600_000).default(3_000).describe('No breach for this long before a degraded endpoint is healthy again.'),
    maxRttMs: z.number().positive().default(250).describe('RTT above which the path is in breach.'),
    maxLossRatio: z.number().min(0).max(1).default(0.05).describe('Probe loss ratio above which the path is in breach.'),
    maxAckLagMs: z.number().positive().default(1_000).describe('Age of the oldest sent-but-unacked chunk on the active endpoint above which the path is in breach.'),
    minDeliveryRatio: z.number().min(0).max(1).default(0.8).describe('Acked bytes/s (plus what the overflow policy skipped for it) over input bytes/s on the active endpoint, while the stream produces, below which the path is in breach; judged on backpressure streams only.'),
  })
  // the scheduler picks a rate by role; a slower rate for a more urgent role would invert it
  .refine((h) => h.carrierProbeIntervalMs <= h.probeIntervalMs && h.probeIntervalMs <= h.standbyProbeIntervalMs, {
    message: 'probe intervals must satisfy carrierProbeIntervalMs <= probeIntervalMs <= standbyProbeIntervalMs',
  })
  .refine((h) => h.reportIntervalMs <= h.standbyReportIntervalMs, { message: 'standbyReportIntervalMs must be at least reportIntervalMs' })
  .prefault({})
  .describe('Path health from probes and acks, and when an endpoint counts as degraded. Probe intervals must satisfy carrierProbeIntervalMs <= probeIntervalMs <= standbyProbeIntervalMs.');

export const rateSchema = z
  .strictObject({
    minPaceBytesPerSec: z.number().int().min(1024).default(1024 * 1024).describe('Pacing floor: a new path starts here and ramps with its acks.'),
    paceGain: z.number().min(1).max(100).default(2).describe('Pacing rate = gain × max(delivered rate, input rate).'),
    paceBurstMs: z.number().int().min(1).max(10_000).default(50).describe('Pacing bucket depth, in ms of the current rate.'),
    ingestWaitMs: z.number().int().min(0).max(600_000).default(2_000).describe('How long an HTTP ingest waits on a backpressured stream before answering 429.'),
  })
  .prefault({})
  .describe('Send pacing per connection and ingest backpressure.');

export const webrtcSchema = z
  .strictObject({
    engine: z.enum(['node-datachannel', 'werift']).default('node-datachannel').describe('node-datachannel (native, faster) or werift (pure TypeScript). Both pass the same conformance suite.'),
    bindAddress: z.string().min(1).optional().describe('Gather and bind only this address (e.g. 127.0.0.1); unset: every interface. A stock Firefox cannot reach a gateway bound to loopback only: it pairs no loopback candidate with its own (non-loopback) ones.'),
    iceServers: z.array(z.string().regex(/^stun:[^\s]+:\d+$/)).max(8).default([]).describe('`stun:host:port` URLs. Empty by default: host candidates only, nothing leaves the machine.'),
    connectTimeoutMs: z.number().int().min(100).max(120_000).default(10_000).describe('How long ICE gathering and the data channels may take to come up.'),
    icePort: z.number().int().min(1).max(65_535).optional().describe(
      'WebRTC sessions on a few fixed UDP ports (ICE UDP mux, node-datachannel engine): ports icePort .. icePort + icePortCount - 1, sessions dealt round-robin. Each port is one socket and one ICE thread for its sessions instead of a socket per session (whose thread polls them all on every packet), and a firewall opens a known range. Unset: each session binds its own ephemeral port.',
    ),
    icePortCount: z.number().int().min(1).max(64).default(8).describe('How many consecutive ports from icePort (each ICE thread then serves a share of the sessions).'),
  })
  .refine((w) => w.icePort === undefined || w.engine === 'node-datachannel', { message: 'icePort (ICE UDP mux) needs the node-datachannel engine' })
  .refine((w) => w.icePort === undefined || w.icePort + w.icePortCount - 1 <= 65_535, { message: 'icePort + icePortCount - 1 must be a port (at most 65535)' })
  .prefault({})
  .describe('The WebRTC transport (data channels).');

export const webtransportSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Serve WebTransport beside WebRTC.'),
    port: z.number().int().min(0).max(65_535).default(0).describe('Its own TLS port (0: any free port; receivers learn the URL from signaling).'),
    certFile: z.string().min(1).optional().describe('TLS certificate (PEM), with keyFile; without them a self-signed ECDSA certificate is generated and its SHA-256 handed out.'),
    keyFile: z.string().min(1).optional().describe('TLS private key (PEM) of certFile.'),
  })
  .refine((w) => (w.certFile === undefined) === (w.keyFile === undefined), { message: 'certFile and keyFile go together' })
  .prefault({})
  .describe('The WebTransport (HTTP/3) listener.');

/** A host name (`collector-1.example`, `*.example.com`) or an address or subnet (`10.0.0.0/8`, `::1`) the gateway may dial. */
const dialAllowSchema = z
  .string()
  .min(1)
  .max(253)
  .refine(
    (v) => {
      const [ip, bits, ...rest] = v.split('/');
      if (rest.length > 0) return false;
      const family = isIP(ip ?? '');
      if (family !== 0) return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128));
      return bits === undefined && /^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$/.test(v);
    },
    { message: 'an allowed dial target is a host name (a leading *. matches subdomains), an IP address or a subnet (10.0.0.0/8)' },
  );

export const dialOutSchema = z
  .strictObject({
    allow: z.array(dialAllowSchema).max(256).default(['127.0.0.0/8', '::1', 'localhost']).describe(
      'Hosts the gateway may dial for listening endpoints: host names (`*.example.com` matches subdomains), IP addresses and subnets. A name not listed is allowed when every address it resolves to is in a listed subnet (checked again at each dial, so DNS cannot move a dial elsewhere). Default: loopback only.',
    ),
    connectTimeoutMs: z.number().int().min(100).max(120_000).default(5_000).describe('How long the offer POST to a listener may take (TCP connect, TLS handshake, answer).'),
    backoffInitialMs: z.number().int().min(10).max(60_000).default(200).describe('First wait before re-dialing a listener that failed or closed; doubles per failure, with full jitter.'),
    backoffMaxMs: z.number().int().min(100).max(600_000).default(5_000).describe('Longest wait between dials of one listener.'),
    caFile: z.string().min(1).optional().describe('PEM file of CA certificates to trust for https listeners, in place of the system CAs.'),
    pinSha256: z
      .array(z.string().regex(/^[A-Fa-f0-9]{64}$|^([A-Fa-f0-9]{2}:){31}[A-Fa-f0-9]{2}$/))
      .max(16)
      .default([])
      .describe('SHA-256 fingerprints of listener certificates (hex, colons optional). When set, an https listener must present a certificate with one of them, and that is the check (a pinned self-signed certificate is accepted).'),
  })
  .refine((d) => d.backoffMaxMs >= d.backoffInitialMs, { message: 'backoffMaxMs must be at least backoffInitialMs' })
  .prefault({})
  .describe('The gateway dialing listening endpoints (an endpoint_list entry with url and token).');

export const natsSchema = z
  .strictObject({
    servers: z.array(z.string().regex(/^(nats|tls):\/\/[^\s/]+$/, 'a NATS URL is nats://host:port')).max(16).default([]).describe(
      '`nats://host:port` URLs of the NATS cluster (any subset; the client learns the rest).',
    ),
    replicas: z.number().int().min(1).max(5).default(1).describe('JetStream replicas of every stream log and KV bucket (1, or 3 on a 3-node cluster).'),
    prefix: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/).default('ms').describe('Prefix of the JetStream streams and KV buckets, so several deployments can share one NATS account.'),
    requestTimeoutMs: z.number().int().min(100).max(60_000).default(5_000).describe('How long one JetStream or KV request may take before it counts as an outage (MS_LOG_UNAVAILABLE).'),
    leaseMs: z.number().int().min(400).max(60_000).default(2_000).describe(
      'A stream\'s owner (the instance deciding its roles) holds a lease this long and renews it every quarter; if the owner dies, another instance takes over within about this plus a quarter of it. Instances\' clocks must agree to well within a quarter of it.',
    ),
    presence: z
      .strictObject({
        intervalMs: z.number().int().min(20).max(10_000).default(100).describe('How often every instance says it is alive.'),
        goneMs: z.number().int().min(100).max(60_000).default(300).describe('An instance not heard for this long is gone: its leases are taken over, its receivers count as disconnected.'),
        selfMs: z.number().int().min(50).max(60_000).default(200).describe('An instance that has not heard itself for this long stops deciding first.'),
      })
      .refine((p) => p.intervalMs * 2 <= p.selfMs && p.selfMs < p.goneMs, { message: 'presence needs 2 x intervalMs <= selfMs < goneMs' })
      .prefault({})
      .describe('Instance presence on core NATS; needs 2 × intervalMs <= selfMs < goneMs.'),
  })
  .prefault({})
  .describe('NATS JetStream, used when log.kind is jetstream.');

export const logSchema = z
  .strictObject({
    kind: z.enum(['memory', 'jetstream']).default('memory').describe('`memory` or `jetstream` (needs log.nats.servers).'),
    nats: natsSchema,
  })
  .refine((l) => l.kind !== 'jetstream' || l.nats.servers.length > 0, { message: 'log.kind "jetstream" needs log.nats.servers', path: ['nats', 'servers'] })
  .prefault({})
  .describe('Where streams keep their chunks, specs and cursors: `memory` (the embedded default, gone with the process) or `jetstream` (NATS JetStream: durable, shared by several instances).');

export const tokensSchema = z
  .strictObject({
    secret: z.string().min(32).optional().describe('HS256 secret for endpoint tokens (32+ chars); generated per process when absent, so tokens die with it.'),
    ttlS: z.number().int().min(1).max(30 * 24 * 3600).default(3600).describe('Default endpoint token lifetime, in seconds.'),
  })
  .prefault({})
  .describe('Endpoint tokens (HS256) that receivers present at signaling.');

export const admissionSchema = z
  .strictObject({
    maxLoopDelayMs: z.number().int().min(0).max(60_000).default(50).describe(
      "Past this p99 event-loop delay (ms, per window) new endpoints are refused with 503 MS_OVERLOADED (and after windowsToClose such windows /readyz says overloaded); the endpoints it serves keep their sessions. 0: no such budget (maxNewPerSecond then holds unscaled). A late loop delays every connection's heartbeats, probes and sends.",
    ),
    admitLoopDelayMs: z.number().int().min(1).max(60_000).default(40).describe(
      "The event-loop p99 (ms, the worse of the last two windows) at which new endpoints stop being admitted: the admission rate is maxNewPerSecond × (1 − p99 / admitLoopDelayMs). Below maxLoopDelayMs (taken as maxLoopDelayMs where above it): an endpoint's steady cost shows in the loop only after it connected, and the endpoints admitted meanwhile must still fit under maxLoopDelayMs.",
    ),
    webtransportAdmitLoopDelayMs: z.number().int().min(1).max(60_000).default(25).describe(
      "admitLoopDelayMs for new WebTransport sessions (taken as admitLoopDelayMs where above it): they stop being admitted at this event-loop p99, and take from a rate scaled by the headroom under it as well as from the common one. Over HTTP/2 and the WebSocket tunnel a WebTransport endpoint costs the loop more than a WebRTC one (its transport runs in JavaScript) and each heartbeat crosses several turns on both sides: in the fan-out bench its heartbeat p99 was 2-2.5 × the loop p99 (113 ms at a loop p99 of 47 ms), and admitting WebTransport up to 25 ms held it at 24-65 ms. It applies to every WebTransport backend; the native HTTP/3 one was not measured.",
    ),
    minSessions: z.number().int().min(0).max(1_000_000).default(50).describe(
      "The loop budgets (maxLoopDelayMs, admitLoopDelayMs) apply from this many signaling sessions open. A gateway serving fewer is never full: its loop's lateness is not their cost (a busy host, a GC, its own start-up) and refusing endpoints would shed none of it (at 1 000 endpoints the fan-out bench's loop p99 was 22 ms over WebRTC, 43 ms over WebTransport: 50 add 1-2 ms). maxNewPerSecond (unscaled) and maxPendingHandshakes still apply. 0: from the first session.",
    ),
    windowMs: z.number().int().min(100).max(60_000).default(1_000).describe('The window the event-loop delay is measured over.'),
    windowsToClose: z.number().int().min(1).max(60).default(2).describe('Windows in a row over maxLoopDelayMs before the gateway says it is overloaded (/readyz, Retry-After retryAfterS); one late window (a GC pause) only pauses admissions for that window.'),
    maxNewPerSecond: z.number().int().min(0).max(100_000).default(200).describe(
      'New endpoints admitted per second with an idle event loop; the rate falls with the loop\'s headroom (× (1 − p99 / admitLoopDelayMs), p99 the worse of the last two windows), so a crowd is taken in about as fast as the loop shows it can carry. Beyond the rate: 503 MS_OVERLOADED, Retry-After 1 s, or with a crowd waiting a time spread evenly over the span the rate needs for as many as were refused in the last window (at most 30 s). 0: no rate limit.',
    ),
    maxPendingHandshakes: z.number().int().min(0).max(100_000).default(200).describe(
      'WebRTC handshakes under way at once (offers answered, not yet connected); beyond, new endpoints get 503 MS_OVERLOADED: a crowd arriving together is admitted as fast as handshakes complete. 0: no limit.',
    ),
    retryAfterS: z.number().int().min(1).max(3_600).default(5).describe('Retry-After (seconds) on MS_OVERLOADED while overloaded (the event loop over budget windowsToClose windows in a row); refusals that pass soon (one late window, the admission rate, the handshake budget) carry 1 s, or with a crowd waiting a time spread over the span the admission rate needs for it (at most 30 s). The SDK waits that long, plus up to half again at random, unless another instance has room.'),
  })
  .prefault({})
  .describe('Admission control: the budgets past which the gateway refuses new endpoints and keeps serving those it has (docs/operations.md).');

export const limitsSchema = z
  .strictObject({
    maxJsonDepth: z.number().int().min(4).max(1_000).default(64).describe('JSON request bodies nested deeper than this are refused (400) before anything walks them.'),
    headersTimeoutMs: z.number().int().min(1_000).max(600_000).default(10_000).describe('A request head must arrive within this (408 after); against slow-header clients. At most requestTimeoutMs.'),
    requestTimeoutMs: z.number().int().min(1_000).max(3_600_000).default(60_000).describe('A whole request (head and body) must arrive within this (408 after).'),
    sessionsPerEndpoint: z.number().int().min(1).max(100).default(3).describe(
      'Signaling sessions (WebRTC offers answered, WebTransport tickets) per endpoint that may be open at once: the current one, a replacement overlapping it, and a retry.',
    ),
    maxSessions: z.number().int().min(1).max(1_000_000).default(20_000).describe('Signaling sessions open at once in the whole gateway.'),
    rateWindowMs: z.number().int().min(100).max(3_600_000).default(10_000).describe('The window of the per-address rate limits.'),
    signalingPerAddress: z.number().int().min(0).default(50).describe('Signaling requests (offers, WebTransport tickets, session deletes) per client address per rateWindowMs; 0: no limit.'),
    tokensPerAddress: z.number().int().min(0).default(1_000).describe('Token requests per client address per rateWindowMs; 0: no limit.'),
  })
  .refine((l) => l.headersTimeoutMs <= l.requestTimeoutMs, { message: 'headersTimeoutMs must not exceed requestTimeoutMs', path: ['headersTimeoutMs'] })
  .prefault({})
  .describe('Limits that keep one client (or a flood of them) from exhausting the gateway.');

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
  host: z.string().min(1).default('127.0.0.1').describe('Address the HTTP server listens on (0.0.0.0: every interface).'),
  port: z.number().int().min(0).max(65_535).default(8080).describe('HTTP port (control API, signaling, metrics); 0: any free port.'),
  trustProxy: z.array(trustedProxySchema).max(32).default([]).describe(
    'Proxies (a TLS-terminating nginx, a load balancer) whose X-Forwarded-For the gateway believes, so per-address limits count the client, not the proxy: IP addresses, subnets from /1, `loopback`, `linklocal`, `uniquelocal`. Empty: none (the address limits then count every client behind a proxy as one).',
  ),
  warmUp: z.boolean().default(true).describe(
    'CLI: before it announces itself, one WebRTC receiver session against its own HTTP port, so its first real receivers do not meet cold code (/readyz says `starting` meanwhile).',
  ),
  apiKey: z.string().min(16).optional().describe('Bearer key for the control API (16+ chars); when absent the CLI generates one and prints it.'),
  maxFrameBytes: z.number().int().min(1024).max(MAX_FRAME_BYTES_LIMIT).default(DEFAULT_MAX_FRAME_BYTES).describe('Largest protocol frame; told to receivers in WELCOME, which refuse larger frames.'),
  maxBodyBytes: z.number().int().min(1024).max(256 * 1024 ** 2).default(8 * 1024 ** 2).describe('Largest accepted HTTP request body (chunk batches).'),
  maxChunkBytes: z.number().int().min(1).max(64 * 1024 ** 2).default(512 * 1024).describe(
    `Largest single chunk payload; with ${DATA_FRAME_OVERHEAD_BYTES} bytes of DATA framing it must fit in maxFrameBytes.`,
  ),
  sendHighWaterBytes: z.number().int().min(1024).default(256 * 1024).describe('Stop writing to a connection while its transport buffers more than this.'),
  tickMs: z.number().int().min(1).max(10_000).default(50).describe('Gateway housekeeping tick: failure-detector checks, fail-back timers, age eviction.'),
  drainTimeoutMs: z.number().int().min(0).default(5_000).describe('How long `close()` waits for active endpoints to ack what was published.'),
  helloTimeoutMs: z.number().int().min(1).default(10_000).describe('How long an accepted connection may take to send HELLO.'),
  idempotencyWindowMs: z.number().int().min(1_000).max(24 * 3600_000).default(120_000).describe(
    'How long a publish\'s idempotency key is remembered per stream, so a retry within it appends nothing twice (with JetStream: its duplicate window, never above a stream\'s max age).',
  ),
  switchHistory: z.number().int().min(1).max(10_000).default(50).describe('Switch records kept per stream for the health API.'),
  retention: retentionSchema,
  heartbeat: heartbeatSchema,
  failback: failbackSchema,
  failover: failoverSchema,
  health: healthSchema,
  rate: rateSchema,
  webrtc: webrtcSchema,
  webtransport: webtransportSchema,
  dialOut: dialOutSchema,
  tokens: tokensSchema,
  limits: limitsSchema,
  admission: admissionSchema,
  log: logSchema,
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('Log level (pino).'),
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
export type DialOutConfig = z.output<typeof dialOutSchema>;
export type HealthConfig = z.output<typeof healthSchema>;
export type FailbackConfig = z.output<typeof failbackSchema>;
export type LogConfig = z.output<typeof logSchema>;
export type NatsConfig = z.output<typeof natsSchema>;
export type LimitsConfig = z.output<typeof limitsSchema>;
export type AdmissionConfig = z.output<typeof admissionSchema>;

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
