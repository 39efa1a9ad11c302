import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import { MirrorstreamError } from '@mirrorstream/receiver';
import type { Gateway } from '../gateway.js';
import { idSchema, parseInput, reorderSchema, type AddEndpointInput, type StreamSpecInput } from '../streams/spec.js';
import { chunkFromRaw, chunksFromJson, chunksFromMsgpack } from './chunks.js';
import { toHttpError } from './errors.js';

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

const MSGPACK_TYPES = ['application/msgpack', 'application/x-msgpack', 'application/vnd.msgpack'];

/**
 * The HTTP API: parse and validate the request, call the gateway, map errors through
 * one table. No stream logic lives here.
 */
export function createHttpApp(gateway: Gateway, options: { apiKey: string }): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  const limit = gateway.config.maxBodyBytes;

  app.get('/healthz', (_req, res) => {
    const status = gateway.status();
    res.status(status.status === 'ok' ? 200 : 503).json({ ...status, version: '0.1.0' });
  });

  const v1 = express.Router();
  v1.use(requireApiKey(options.apiKey));
  v1.use(express.json({ limit, type: ['application/json', 'application/*+json'] }));
  v1.use(express.raw({ limit, type: [...MSGPACK_TYPES, 'application/octet-stream'] }));

  v1.post('/streams', (req, res) => {
    const info = gateway.createStream(jsonBody(req) as StreamSpecInput);
    res.status(201).location(`/v1/streams/${encodeURIComponent(info.stream_id)}`).json(info);
  });
  v1.get('/streams', (_req, res) => {
    res.json({ streams: gateway.listStreams() });
  });
  v1.get('/streams/:id', (req, res) => {
    res.json(gateway.getStream(id(req)));
  });
  v1.delete('/streams/:id', (req, res) => {
    gateway.deleteStream(id(req));
    res.status(204).end();
  });
  v1.post('/streams/:id/endpoints', (req, res) => {
    res.status(201).json(gateway.addEndpoint(id(req), jsonBody(req) as AddEndpointInput));
  });
  v1.delete('/streams/:id/endpoints/:endpoint_id', (req, res) => {
    res.json(gateway.removeEndpoint(id(req), id(req, 'endpoint_id')));
  });
  v1.put('/streams/:id/endpoints', (req, res) => {
    const { endpoint_list } = parseInput(reorderSchema, jsonBody(req), 'reorder body');
    res.json(gateway.reorderEndpoints(id(req), endpoint_list));
  });
  v1.post('/streams/:id/chunks', async (req, res) => {
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
    res.json(await gateway.publishBatch(streamId, chunks));
  });
  v1.get('/streams/:id/health', (req, res) => {
    res.json(gateway.streamHealth(id(req)));
  });
  v1.get('/endpoints', (_req, res) => {
    res.json({ endpoints: gateway.listEndpoints() });
  });
  v1.get('/endpoints/:id/health', (req, res) => {
    res.json(gateway.endpointHealth(id(req)));
  });

  app.use('/v1', v1);
  app.use((req, _res, next) => next(new MirrorstreamError('MS_NOT_FOUND', `no route ${req.method} ${req.path.slice(0, 200)}`)));
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const { status, body } = toHttpError(err);
    if (status >= 500) gateway.log.error({ err, path: req.path }, 'request failed');
    if (res.headersSent) return;
    res.status(status).json(body);
  });
  return app;
}

/** Start the HTTP API; port 0 picks a free port. */
export async function serve(gateway: Gateway, options: HttpServerOptions): Promise<RunningServer> {
  const app = createHttpApp(gateway, options);
  const server = createServer(app);
  const host = options.host ?? gateway.config.host;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? gateway.config.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function requireApiKey(apiKey: string) {
  const expected = createHash('sha256').update(apiKey).digest();
  return (req: Request, _res: Response, next: NextFunction): void => {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    const given = createHash('sha256')
      .update(match?.[1] ?? '')
      .digest();
    if (!match || !timingSafeEqual(given, expected)) {
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
