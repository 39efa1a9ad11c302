/**
 * mirrorstream demo: a gateway, two synthetic feeds, and a page for each that runs three
 * receivers with the browser SDK: market ticks at 50/s (/demo/), and live video (/demo/video/:
 * VP8 in three layers from Debian's ffmpeg, video-source.ts, on a stream with the `layers`
 * overflow policy, played with the SDK's VideoPlayer). Each viewer gets its own failover stream
 * with its own three endpoints (deleted when the page has been gone for a while), state as
 * server-sent events, and each receiver's WebRTC path runs through netsim relays its
 * sliders control (loss, delay, rate cap, kill).
 *
 *   npm run demo            # http://127.0.0.1:8090/demo/  (MIRRORSTREAM_DEMO_PORT)
 *
 * A stock browser hides its host candidates behind `.local` names: then only the gateway's
 * side is relayed, and the one candidate pair ICE can form runs through the relay (see
 * netsim's ImpairedLink), so the sliders work in any browser, no flags. That relay listens on
 * this machine's own address (its first non-loopback IPv4 one), where the browser's hidden
 * candidates are: Firefox pairs no loopback remote candidate with them (its ICE failed on a
 * 127.0.0.1 relay), Chromium pairs either. The packets never leave the machine. A machine
 * with no such address gets the relay on 127.0.0.1 (Chromium only).
 */
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { createGateway, createHttpApp, createMetrics, type Gateway } from '../gateway/src/index.js';
import { toHttpError } from '../gateway/src/http/errors.js';
import { ImpairedLink, loopbackHostCandidates, ownAddresses, type Impairment } from '../netsim/index.js';
import { startVideoSource, type VideoSource } from './video-source.js';

const ENDPOINTS = ['primary', 'backup1', 'backup2'] as const;
const FEEDS = ['ticks', 'video'] as const;
type Feed = (typeof FEEDS)[number];
/**
 * The video stream's overflow policy: an endpoint whose oldest unsent frame waits longer than
 * this drops a layer (the player shows pictures 250 ms after they arrive, so a wait of this
 * much still plays on time), and climbs back by one per 2 s of small backlog.
 */
export const VIDEO_MAX_BACKLOG_MS = 150;
type Role = (typeof ENDPOINTS)[number];
/** Viewers at once; each has its own stream, three endpoints and six relays at most. */
const MAX_VIEWERS = 20;

export interface Demo {
  url: string;
  gateway: Gateway;
  close(): Promise<void>;
}

export interface DemoOptions {
  /** A viewer's session is deleted this long after its page's event stream closed (a reload keeps it). */
  sessionGraceMs?: number;
  /** Uniform [0, 1) source for the relays' loss and jitter; default `Math.random` (tests pass a seeded one). */
  random?: () => number;
}

/** One viewer's page: its own stream and endpoints, relays and kill switches. */
interface Viewer {
  readonly id: string;
  readonly feed: Feed;
  readonly stream: string;
  readonly links: Map<Role, ImpairedLink>;
  readonly killed: Set<Role>;
  /** The sliders' settings per path: a reconnect's new relays get them too. */
  readonly impairments: Map<Role, Partial<Impairment>>;
  /** Open event streams (tabs); cleanup starts when the last one closes. */
  watchers: number;
  cleanup: NodeJS.Timeout | undefined;
}

export async function startDemo(port = 0, host = '127.0.0.1', options: DemoOptions = {}): Promise<Demo> {
  const graceMs = options.sessionGraceMs ?? 30_000;
  const gateway = createGateway({
    logLevel: 'warn',
    host,
    webrtc: { bindAddress: '127.0.0.1' },
    webtransport: { enabled: false },
    failback: { stableMs: 4_000 },
    health: { recoverAfterMs: 2_000 },
  });
  const apiKey = 'demo-key-not-for-production';
  const browserRelayHost = ownAddresses()[0] ?? '127.0.0.1';
  const metrics = createMetrics(gateway);
  const app = createHttpApp(gateway, { apiKey, metrics });
  const demo = express.Router();
  const viewers = new Map<string, Viewer>();
  const gatewayBase = (req: express.Request): string => `${req.protocol}://${req.get('host') ?? host}`;
  const endpointId = (v: Viewer, role: Role): string => `${v.id}-${role}`;
  const isRole = (r: string): r is Role => (ENDPOINTS as readonly string[]).includes(r);
  const notFound = (res: express.Response, what: string): void => void res.status(404).json({ error: { code: 'MS_STREAM_NOT_FOUND', message: what } });

  const drop = async (v: Viewer): Promise<void> => {
    viewers.delete(v.id);
    clearTimeout(v.cleanup);
    await Promise.resolve(gateway.deleteStream(v.stream)).catch(() => undefined);
    for (const l of v.links.values()) await l.close();
    if (v.feed === 'video' && ![...viewers.values()].some((w) => w.feed === 'video')) await stopVideo();
  };
  const state = (v: Viewer): unknown => ({
    session: v.id,
    feed: v.feed,
    stream: gateway.streamHealth(v.stream),
    endpoints: ENDPOINTS.map((r) => gateway.endpointHealth(endpointId(v, r))),
    // relay counters: every packet of a path crosses its relay (the e2e test checks them)
    relays: Object.fromEntries([...v.links].map(([r, l]) => [r, l.relays.map((x) => x.stats())])),
  });

  demo.use('/', express.static(fileURLToPath(new URL('./page/', import.meta.url))));
  // a new viewer: its own stream on the shared feed, cleaned up when its page goes away
  demo.post('/api/session', async (req, res) => {
    const feed = String(req.query.feed ?? 'ticks');
    if (!(FEEDS as readonly string[]).includes(feed)) {
      res.status(400).json({ error: { code: 'MS_BAD_REQUEST', message: `feed must be one of ${FEEDS.join(', ')}` } });
      return;
    }
    if (viewers.size >= MAX_VIEWERS) {
      res.status(429).set('retry-after', '30').json({ error: { code: 'MS_RATE_LIMITED', message: `the demo serves ${MAX_VIEWERS} viewers at once` } });
      return;
    }
    const id = randomBytes(4).toString('hex');
    const v: Viewer = { id, feed: feed as Feed, stream: `${feed}-${id}`, links: new Map(), killed: new Set(), impairments: new Map(), watchers: 0, cleanup: undefined };
    if (v.feed === 'video') {
      try {
        startVideo();
      } catch (error) {
        res.status(503).json({ error: { code: 'MS_TRANSPORT_UNAVAILABLE', message: `the video source cannot start: ${(error as Error).message}` } });
        return;
      }
    }
    viewers.set(v.id, v);
    // no event stream within the grace (the page never loaded): dropped like a closed one
    v.cleanup = setTimeout(() => void drop(v), graceMs);
    gateway.createStream({
      stream_id: v.stream,
      endpoint_list: ENDPOINTS.map((r) => endpointId(v, r)),
      ...(v.feed === 'video' ? { policy: { overflow: 'layers', max_backlog_ms: VIDEO_MAX_BACKLOG_MS } } : {}),
    });
    const tokens = Object.fromEntries(await Promise.all(ENDPOINTS.map(async (r) => [r, (await gateway.issueToken(endpointId(v, r), { ttl_s: 86_400 })).token] as const)));
    res.status(201).json({ session: v.id, feed: v.feed, stream: v.stream, endpoints: ENDPOINTS, ids: Object.fromEntries(ENDPOINTS.map((r) => [r, endpointId(v, r)])), tokens });
  });
  // the page's state as a stream of server-sent events, twice a second
  demo.get('/api/:session/events', (req, res) => {
    const v = viewers.get(String(req.params.session));
    if (!v) return notFound(res, 'no such demo session (it ended): reload the page');
    clearTimeout(v.cleanup);
    v.watchers++;
    res.set({ 'content-type': 'text/event-stream', 'cache-control': 'no-store' }).flushHeaders();
    const push = (): void => void res.write(`data: ${JSON.stringify(state(v))}\n\n`);
    push();
    const timer = setInterval(push, 500);
    req.on('close', () => {
      clearInterval(timer);
      if (--v.watchers === 0 && viewers.has(v.id)) v.cleanup = setTimeout(() => void drop(v), graceMs);
    });
  });
  demo.get('/api/:session/state', (req, res) => {
    const v = viewers.get(String(req.params.session));
    if (!v) return notFound(res, 'no such demo session');
    res.json(state(v));
  });
  // the page's WebRTC signaling comes here: the offer and answer get relayed candidates
  demo.post('/api/:session/signal/:endpoint', express.text({ type: 'application/sdp', limit: 64 * 1024 }), async (req, res) => {
    const v = viewers.get(String(req.params.session));
    const role = String(req.params.endpoint);
    if (!v || !isRole(role)) return notFound(res, 'not a demo session endpoint');
    if (v.killed.has(role)) {
      res.status(503).json({ error: { code: 'MS_TRANSPORT_CLOSED', message: `${role} is killed in the demo` } });
      return;
    }
    await v.links.get(role)?.close();
    const link = new ImpairedLink({ browserRelayHost, ...(options.random ? { random: options.random } : {}) });
    v.links.set(role, link);
    // a stock browser offers only `.local` host candidates (dropped here): the link then relays the gateway's side only
    const offer = loopbackHostCandidates(String(req.body ?? ''));
    const target = `${gatewayBase(req)}/v1/endpoints/${endpointId(v, role)}/webrtc`;
    const answer = await link.fetch(target, { method: 'POST', headers: { 'content-type': 'application/sdp', authorization: req.get('authorization') ?? '' }, body: offer });
    link.set(v.impairments.get(role) ?? {});
    const location = answer.headers.get('location');
    res.status(answer.status).type(answer.headers.get('content-type') ?? 'application/sdp');
    if (location) res.location(location);
    res.send(await answer.text());
  });
  demo.post('/api/:session/impair/:endpoint', express.json(), async (req, res) => {
    const v = viewers.get(String(req.params.session));
    const role = String(req.params.endpoint);
    const link = v && isRole(role) ? v.links.get(role) : undefined;
    if (!v || !isRole(role) || !link) return notFound(res, 'no live link for this endpoint');
    const body = (req.body ?? {}) as { lossPct?: number; delayMs?: number; rateKBps?: number; kill?: boolean };
    const clamp = (x: unknown, max: number): number => (typeof x === 'number' && Number.isFinite(x) ? Math.min(max, Math.max(0, x)) : 0);
    if (body.kill === true) v.killed.add(role);
    if (body.kill === false) v.killed.delete(role);
    const impairment = { lossPct: clamp(body.lossPct, 100), delayMs: clamp(body.delayMs, 5_000), rateBytesPerSec: clamp(body.rateKBps, 100_000) * 1000, blackhole: v.killed.has(role) };
    v.impairments.set(role, impairment);
    link.set(impairment);
    res.json({ ok: true });
  });
  // bad input to the demo's own routes (a body that is not JSON, say) gets the API's coded JSON error
  demo.use((err: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    const { status, body } = toHttpError(err);
    res.status(status).json(body);
  });
  // express 5 keeps the app's routes; mount the demo before the API's 404 handler
  const root = express();
  root.use('/demo', demo);
  root.use(app);

  // one feed, published to every viewer's stream
  let px = 100;
  let n = 0;
  const feed = setInterval(() => {
    px = Math.max(1, px * (1 + (Math.random() - 0.5) * 0.002));
    const tick = JSON.stringify({ sym: 'ACME', px: Number(px.toFixed(3)), n: ++n, t: Date.now() });
    for (const v of viewers.values()) if (v.feed === 'ticks') void gateway.publish(v.stream, tick, { key: 'ACME', waitMs: 0 }).catch(() => undefined);
  }, 20);

  // the video source runs while a video viewer is there; a picture's layers go out as one batch
  let video: VideoSource | undefined;
  function startVideo(): void {
    video ??= startVideoSource((picture) => {
      const chunks = picture.map((p) => ({ payload: p.payload, layer: p.layer }));
      for (const v of viewers.values()) if (v.feed === 'video') void gateway.publishBatch(v.stream, chunks, { waitMs: 0 }).catch(() => undefined);
    }, (message) => {
      console.error(`mirrorstream demo: the video source stopped: ${message}`);
      video = undefined;
    });
  }
  async function stopVideo(): Promise<void> {
    const source = video;
    video = undefined;
    await source?.close();
  }

  const { createServer } = await import('node:http');
  const server = createServer(root);
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  const addr = server.address();
  const url = `http://${host}:${typeof addr === 'object' && addr ? addr.port : port}`;
  return {
    url,
    gateway,
    close: async () => {
      clearInterval(feed);
      for (const v of [...viewers.values()]) await drop(v);
      await stopVideo();
      metrics.close();
      await gateway.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const demo = await startDemo(Number(process.env.MIRRORSTREAM_DEMO_PORT ?? 8090));
  console.log(`mirrorstream demo: ${demo.url}/demo/ (market ticks) and ${demo.url}/demo/video/ (live video)`);
  process.on('SIGINT', () => void demo.close().then(() => process.exit(0)));
}
