import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { MirrorstreamError } from '@mirrorstream/receiver/protocol';
import type { Gateway } from '../gateway.js';
import { idSchema, parseInput, reorderSchema, type AddEndpointInput, type PolicyInput, type StreamSpecInput } from '../streams/spec.js';
import { chunkFromRaw, chunksFromJson, chunksFromMsgpack, MSGPACK_TYPES } from './chunks.js';
import { toHttpError } from './errors.js';
import { openApiDocument } from './openapi.js';
import { ROUTES, tokenRequestSchema, type ApiRoute } from './routes.js';
import { IngestStream } from './ingest-stream.js';
import { serveTunnel } from './tunnel.js';
import { answerParserErrors, jsonDepthLimit, perAddressLimit, serverOptions } from './guards.js';
import { createMetrics, type GatewayMetrics } from '../telemetry/metrics.js';

export interface HttpServerOptions {
  /** Bearer key required on every /v1 route. */
  apiKey: string;
  host?: string;
  port?: number;
}

export interface RunningServer {
  readonly url: string;
  readonly port: number;
  readonly server: Server;
  close(): Promise<void>;
}

/** This package's version, from its package.json. */
const GATEWAY_VERSION = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;

/**
 * The HTTP API: parse and validate the request, call the gateway, map errors through
 * one table. No stream logic lives here. Every route is one of the route table (routes.ts),
 * which `GET /openapi.json` documents.
 */
export function createHttpApp(gateway: Gateway, options: { apiKey: string; metrics?: GatewayMetrics }): express.Express {
  const app = express();
  // without `metrics` the app makes its own, which listens to the gateway for as long as the gateway lives
  const metrics = options.metrics ?? createMetrics(gateway);
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  // req.ip (the per-address limits' key) is the client's from X-Forwarded-For set by these proxies only
  app.set('trust proxy', gateway.config.trustProxy.length > 0 ? [...gateway.config.trustProxy] : false);
  const limit = gateway.config.maxBodyBytes;
  const limits = gateway.config.limits;

  // alive: 200 for as long as the process serves, draining included (a liveness probe must not
  // restart a gateway that is handing its receivers over)
  const onApp = serveRoute(app, '');
  onApp(ROUTES.health, (_req, res) => {
    res.json({ ...gateway.status(), version: GATEWAY_VERSION });
  });

  // ready: 503 while draining or while the stream log cannot store (a load balancer takes the
  // instance out of rotation); open like /healthz
  onApp(ROUTES.readiness, async (_req, res) => {
    const r = await gateway.readiness();
    res.status(r.ready ? 200 : 503).json(r);
  });

  // Open like /healthz: Prometheus scrapers rarely carry bearer keys, and the text holds
  // only counts, rates and ids, never payloads or tokens.
  onApp(ROUTES.metrics, async (_req, res) => {
    res.type(metrics.contentType).send(await metrics.text());
  });

  // the contract, made on first request (open like /healthz: it holds no secret)
  let contract: object | undefined;
  onApp(ROUTES.openApi, (_req, res) => {
    res.json((contract ??= openApiDocument(GATEWAY_VERSION)));
  });

  // the browser build of the receiver SDK, for pages served by anyone (the demo, e2e tests): ROUTES.browserSdk
  const sdkDir = browserSdkDir();
  if (sdkDir) app.use('/sdk', express.static(sdkDir, { fallthrough: true, maxAge: 0 }));

  app.use('/v1', signalingRouter(gateway));

  const v1 = express.Router();
  v1.use(requireApiKey(options.apiKey));
  v1.use(express.json({ limit, type: ['application/json', 'application/*+json'] }));
  v1.use(jsonDepthLimit(limits.maxJsonDepth));
  v1.use(express.raw({ limit, type: [...MSGPACK_TYPES, 'application/octet-stream'] }));

  const onV1 = serveRoute(v1, '/v1');
  onV1(ROUTES.createStream, async (req, res) => {
    const info = await gateway.createStream(jsonBody(req) as StreamSpecInput);
    res.status(201).location(`/v1/streams/${encodeURIComponent(info.stream_id)}`).json(info);
  });
  onV1(ROUTES.listStreams, (_req, res) => {
    res.json({ streams: gateway.listStreams() });
  });
  onV1(ROUTES.getStream, (req, res) => {
    res.json(gateway.getStream(id(req)));
  });
  onV1(ROUTES.deleteStream, async (req, res) => {
    await gateway.deleteStream(id(req));
    res.status(204).end();
  });
  onV1(ROUTES.addEndpoint, async (req, res) => {
    res.status(201).json(await gateway.addEndpoint(id(req), jsonBody(req) as AddEndpointInput));
  });
  onV1(ROUTES.removeEndpoint, async (req, res) => {
    res.json(await gateway.removeEndpoint(id(req), id(req, 'endpoint_id')));
  });
  onV1(ROUTES.reorderEndpoints, async (req, res) => {
    const { endpoint_list } = parseInput(reorderSchema, jsonBody(req), 'reorder body');
    res.json(await gateway.reorderEndpoints(id(req), endpoint_list));
  });
  onV1(ROUTES.publishChunks, async (req, res) => {
    const streamId = id(req);
    const type = req.headers['content-type'] ?? '';
    let chunks;
    if (req.is('application/json') || req.is('application/*+json')) chunks = chunksFromJson(req.body);
    else if (MSGPACK_TYPES.some((t) => req.is(t))) chunks = chunksFromMsgpack(bodyBytes(req));
    else if (req.is('application/octet-stream')) chunks = chunkFromRaw(bodyBytes(req), req.query);
    else {
      throw new MirrorstreamError(
        'MS_UNSUPPORTED_MEDIA_TYPE',
        `content-type ${JSON.stringify(type).slice(0, 80)} not accepted: use application/json, application/msgpack or application/octet-stream`,
      );
    }
    const idempotencyKey = req.get('idempotency-key');
    res.json(await gateway.publishBatch(streamId, chunks, { waitMs: gateway.config.rate.ingestWaitMs, idempotencyKey }));
  });
  onV1(ROUTES.setPolicy, async (req, res) => {
    res.json(await gateway.setPolicy(id(req), jsonBody(req) as PolicyInput));
  });
  onV1(ROUTES.streamHealth, (req, res) => {
    res.json(gateway.streamHealth(id(req)));
  });
  onV1(ROUTES.listEndpoints, (_req, res) => {
    res.json({ endpoints: gateway.listEndpoints() });
  });
  onV1(ROUTES.endpointHealth, (req, res) => {
    res.json(gateway.endpointHealth(id(req)));
  });
  onV1(ROUTES.issueToken, perAddressLimit(limits.tokensPerAddress, limits.rateWindowMs, 'token'), async (req, res) => {
    const body = req.body === undefined || (typeof req.body === 'object' && Object.keys(req.body as object).length === 0) ? {} : jsonBody(req);
    const { ttl_s } = parseInput(tokenRequestSchema, body, 'token request');
    res.status(201).json(await gateway.issueToken(id(req), ttl_s === undefined ? {} : { ttl_s }));
  });

  app.use('/v1', v1);
  app.use((req, _res, next) => next(new MirrorstreamError('MS_NOT_FOUND', `no route ${req.method} ${req.path.slice(0, 200)}`)));
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const { status, body } = toHttpError(err);
    // bad input is the client's: below error level, so no client can fill the error log; nor can
    // an admission refusal, the gateway's answer when full (counted in
    // mirrorstream_admission_refused_total): one overloaded bench stage made 6 907 of them, each
    // an error with its stack
    const refusal = err instanceof MirrorstreamError && err.code === 'MS_OVERLOADED';
    if (status >= 500 && !refusal) gateway.log.error({ err, path: req.path }, 'request failed');
    else gateway.log.debug({ code: body.error.code, path: req.path.slice(0, 200) }, 'request refused');
    if (res.headersSent) return;
    // a retryable outage (log unavailable, closing, backpressure): tell clients when to come back
    if (err instanceof MirrorstreamError && err.retryAfterMs !== undefined) res.set('retry-after', String(Math.max(1, Math.ceil(err.retryAfterMs / 1000))));
    else if (err instanceof MirrorstreamError && err.retryable && (status === 503 || status === 429) && !res.get('retry-after')) res.set('retry-after', '1');
    res.status(status).json(body);
  });
  return app;
}

/** Start the HTTP API; port 0 picks a free port. */
export async function serve(gateway: Gateway, options: HttpServerOptions): Promise<RunningServer> {
  const metrics = createMetrics(gateway);
  const app = createHttpApp(gateway, { apiKey: options.apiKey, metrics });
  const server = createServer(serverOptions(gateway.config.limits), app);
  answerParserErrors(server, gateway.log);
  const ingest = new IngestStream(gateway, gateway.log.child({ module: 'ingest-stream' }));
  const keyMatches = apiKeyMatcher(options.apiKey);
  const tunnels = serveTunnel(server, app, gateway, gateway.log.child({ module: 'tunnel' }), {
    matches: (req) => IngestStream.isIngestRequest(req),
    handle: (req, socket, head) => ingest.handle(req, socket, head, keyMatches(req.headers.authorization)),
  });
  const host = options.host ?? gateway.config.host;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? gateway.config.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((error: unknown) => {
    metrics.close();
    throw error;
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        metrics.close();
        server.close(() => resolve());
        server.closeAllConnections();
        tunnels.closeAll();
        ingest.closeAll();
      }),
  };
}

/**
 * WHEP-style signaling, authenticated by the endpoint token (not the API key):
 * POST an SDP offer, get 201 + the answer + Location; DELETE the Location to end it.
 * CORS is open here so pages on other origins can connect (the token is the guard).
 */
function signalingRouter(gateway: Gateway): express.Router {
  const r = express.Router();
  const cors = (_req: Request, res: Response, next: NextFunction): void => {
    res.set({
      'access-control-allow-origin': '*',
      'access-control-allow-methods': 'POST, DELETE, OPTIONS',
      'access-control-allow-headers': 'authorization, content-type',
      'access-control-expose-headers': 'location',
    });
    next();
  };
  const sdpBody = express.text({ type: 'application/sdp', limit: 64 * 1024 });
  const { signalingPerAddress, rateWindowMs } = gateway.config.limits;
  const limited = perAddressLimit(signalingPerAddress, rateWindowMs, 'signaling');
  const on = serveRoute(r, '/v1');
  const preflight = (_req: Request, res: Response): void => {
    res.status(204).end();
  };
  on(ROUTES.webRtcPreflight, cors, preflight);
  on(ROUTES.webRtcSessionPreflight, cors, preflight);
  on(ROUTES.openWebRtcSession, cors, limited, sdpBody, async (req, res) => {
    const endpointId = id(req);
    const token = bearer(req);
    if (!req.is('application/sdp')) {
      await gateway.verifyEndpointToken(endpointId, token);
      throw new MirrorstreamError('MS_UNSUPPORTED_MEDIA_TYPE', 'send the SDP offer with content-type application/sdp');
    }
    const session = await gateway.openWebRtcSession(endpointId, token, typeof req.body === 'string' ? req.body : '');
    res
      .status(201)
      .location(`/v1/endpoints/${encodeURIComponent(endpointId)}/webrtc/${session.session_id}`)
      .type('application/sdp')
      .send(session.answer_sdp);
  });
  on(ROUTES.webTransportPreflight, cors, preflight);
  on(ROUTES.openWebTransportSession, cors, limited, async (req, res) => {
    res.status(201).json(await gateway.openWebTransportSession(id(req), bearer(req)));
  });
  on(ROUTES.webTransportTicketPreflight, cors, preflight);
  on(ROUTES.cancelWebTransportTicket, cors, limited, async (req, res) => {
    await gateway.cancelWebTransportTicket(id(req), bearer(req), String(req.params.ticket ?? ''));
    res.status(204).end();
  });
  on(ROUTES.closeWebRtcSession, cors, limited, async (req, res) => {
    const session = String(req.params.session ?? '');
    await gateway.closeSession(id(req), bearer(req), session);
    res.status(204).end();
  });
  return r;
}

/**
 * Serve routes of the table on a router mounted at `base` (the table's paths are whole):
 * `{name}` path parameters become Express's `:name`.
 */
function serveRoute(router: Pick<express.Router, 'route'>, base: string) {
  return (route: ApiRoute, ...handlers: RequestHandler[]): void => {
    if (!route.path.startsWith(`${base}/`)) throw new Error(`${route.path} is not under ${base}/`);
    router.route(route.path.slice(base.length).replace(/\{(\w+)\}/g, ':$1'))[route.method](...handlers);
  };
}

/** receiver-sdk/dist/browser (built by `npm run build:browser`), if present. */
function browserSdkDir(): string | undefined {
  try {
    return join(dirname(createRequire(import.meta.url).resolve('@mirrorstream/receiver')), 'browser');
  } catch {
    return undefined;
  }
}

function bearer(req: Request): string | undefined {
  return /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
}

/** Whether an Authorization header carries the API key (compared in constant time). */
function apiKeyMatcher(apiKey: string): (header: string | undefined) => boolean {
  const expected = createHash('sha256').update(apiKey).digest();
  return (header) => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
    const given = createHash('sha256')
      .update(match?.[1] ?? '')
      .digest();
    return match !== null && timingSafeEqual(given, expected);
  };
}

function requireApiKey(apiKey: string) {
  const matches = apiKeyMatcher(apiKey);
  return (req: Request, _res: Response, next: NextFunction): void => {
    if (!matches(req.headers.authorization)) {
      next(new MirrorstreamError('MS_UNAUTHORIZED', 'missing or invalid API key (Authorization: Bearer <key>)'));
      return;
    }
    next();
  };
}

function id(req: Request, name = 'id'): string {
  return parseInput(idSchema, req.params[name], name);
}

function jsonBody(req: Request): unknown {
  if (!req.is('application/json') && !req.is('application/*+json')) {
    throw new MirrorstreamError('MS_UNSUPPORTED_MEDIA_TYPE', 'send a JSON body with content-type application/json');
  }
  return req.body;
}

function bodyBytes(req: Request): Uint8Array {
  return req.body instanceof Uint8Array ? req.body : new Uint8Array(0);
}
