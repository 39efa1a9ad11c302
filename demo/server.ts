/**
 * mirrorstream demo: a gateway, a synthetic market feed (ticks at 50/s) on a failover
 * stream with three endpoints, and a page (/demo/) that runs the three receivers with
 * the browser SDK. Each receiver's WebRTC path runs through a netsim relay pair the page's
 * sliders control (loss, delay, rate cap, kill).
 *
 *   npm run demo            # http://127.0.0.1:8090/demo/  (MIRRORSTREAM_DEMO_PORT)
 *
 * A stock browser hides its host candidates behind `.local` names: then only the gateway's
 * side is relayed, and the one candidate pair ICE can form runs through the relay (see
 * netsim's ImpairedLink), so the sliders work in any browser, no flags.
 */
import { fileURLToPath } from 'node:url';
import express from 'express';
import { createGateway, createHttpApp, createMetrics, type Gateway } from '../gateway/src/index.js';
import { ImpairedLink, loopbackHostCandidates } from '../netsim/index.js';

const ENDPOINTS = ['primary', 'backup1', 'backup2'] as const;
const STREAM = 'ticks';

export interface Demo {
  url: string;
  gateway: Gateway;
  close(): Promise<void>;
}

export async function startDemo(port = 0, host = '127.0.0.1'): Promise<Demo> {
  const gateway = createGateway({
    logLevel: 'warn',
    host,
    webrtc: { bindAddress: '127.0.0.1' },
    webtransport: { enabled: false },
    failback: { stableMs: 4_000 },
    health: { recoverAfterMs: 2_000 },
  });
  const apiKey = 'demo-key-not-for-production';
  const metrics = createMetrics(gateway);
  const app = createHttpApp(gateway, { apiKey, metrics });
  const demo = express.Router();
  const links = new Map<string, ImpairedLink>();
  const killed = new Set<string>();
  const gatewayBase = (req: express.Request): string => `${req.protocol}://${req.get('host') ?? host}`;

  demo.use('/', express.static(fileURLToPath(new URL('./page/', import.meta.url))));
  demo.get('/api/config', async (_req, res) => {
    const tokens = Object.fromEntries(await Promise.all(ENDPOINTS.map(async (id) => [id, (await gateway.issueToken(id, { ttl_s: 86_400 })).token] as const)));
    res.json({ stream: STREAM, endpoints: ENDPOINTS, tokens });
  });
  // the page's WebRTC signaling comes here: the offer and answer get relayed candidates
  demo.post('/api/signal/:endpoint', express.text({ type: 'application/sdp', limit: 64 * 1024 }), async (req, res) => {
    const id = String(req.params.endpoint);
    if (!ENDPOINTS.includes(id as (typeof ENDPOINTS)[number])) {
      res.status(404).json({ error: { code: 'MS_ENDPOINT_NOT_FOUND', message: 'not a demo endpoint' } });
      return;
    }
    if (killed.has(id)) {
      res.status(503).json({ error: { code: 'MS_TRANSPORT_CLOSED', message: `${id} is killed in the demo` } });
      return;
    }
    await links.get(id)?.close();
    const link = new ImpairedLink();
    links.set(id, link);
    // a stock browser offers only `.local` host candidates (dropped here): the link then relays the gateway's side only
    const offer = loopbackHostCandidates(String(req.body ?? ''));
    const target = `${gatewayBase(req)}/v1/endpoints/${id}/webrtc`;
    const answer = await link.fetch(target, { method: 'POST', headers: { 'content-type': 'application/sdp', authorization: req.get('authorization') ?? '' }, body: offer });
    const location = answer.headers.get('location');
    res.status(answer.status).type(answer.headers.get('content-type') ?? 'application/sdp');
    if (location) res.location(location);
    res.send(await answer.text());
  });
  demo.post('/api/impair/:endpoint', express.json(), async (req, res) => {
    const id = String(req.params.endpoint);
    const body = (req.body ?? {}) as { lossPct?: number; delayMs?: number; rateKBps?: number; kill?: boolean };
    const link = links.get(id);
    if (!link) {
      res.status(404).json({ error: { code: 'MS_ENDPOINT_NOT_FOUND', message: 'no live link for this endpoint' } });
      return;
    }
    const clamp = (v: unknown, max: number): number => (typeof v === 'number' && Number.isFinite(v) ? Math.min(max, Math.max(0, v)) : 0);
    if (body.kill === true) killed.add(id);
    if (body.kill === false) killed.delete(id);
    link.set({ lossPct: clamp(body.lossPct, 100), delayMs: clamp(body.delayMs, 5_000), rateBytesPerSec: clamp(body.rateKBps, 100_000) * 1000, blackhole: killed.has(id) });
    res.json({ ok: true });
  });
  demo.get('/api/state', (_req, res) => {
    // relay counters: every packet of a path crosses its relay (the e2e test checks them against the browser's own)
    const relays = Object.fromEntries([...links].map(([id, l]) => [id, l.relays.map((r) => r.stats())]));
    res.json({ stream: gateway.streamHealth(STREAM), endpoints: ENDPOINTS.map((id) => gateway.endpointHealth(id)), relays });
  });
  // express 5 keeps the app's routes; mount the demo before the API's 404 handler
  const root = express();
  root.use('/demo', demo);
  root.use(app);

  gateway.createStream({ stream_id: STREAM, endpoint_list: [...ENDPOINTS] });
  let px = 100;
  let n = 0;
  const feed = setInterval(() => {
    px = Math.max(1, px * (1 + (Math.random() - 0.5) * 0.002));
    void gateway.publish(STREAM, JSON.stringify({ sym: 'ACME', px: Number(px.toFixed(3)), n: ++n, t: Date.now() }), { key: 'ACME', waitMs: 0 }).catch(() => undefined);
  }, 20);

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
      metrics.close();
      await gateway.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      for (const l of links.values()) await l.close();
    },
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const demo = await startDemo(Number(process.env.MIRRORSTREAM_DEMO_PORT ?? 8090));
  console.log(`mirrorstream demo: ${demo.url}/demo/`);
  process.on('SIGINT', () => void demo.close().then(() => process.exit(0)));
}
