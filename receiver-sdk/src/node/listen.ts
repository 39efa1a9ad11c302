import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type ServerOptions as HttpsServerOptions } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { FrameLink } from '../link.js';
import { RealClock } from '../protocol/clock.js';
import { MirrorstreamError, type ErrorCode } from '../protocol/errors.js';
import { ReceiverCore } from '../receiver.js';
import type { ReceiverCoreOptions } from '../receiver-types.js';
import { answerOffer, type AnsweredSession } from '../transports/webrtc-answer.js';
import type { NodeDataChannelModule } from '../transports/webrtc-native.js';

export interface ListenOptions extends Omit<ReceiverCoreOptions, 'dial' | 'reconnect' | 'transports' | 'fatalCodes'> {
  /** The secret a gateway must present (`Authorization: Bearer <token>`); the same one goes into the stream's endpoint entry. */
  token: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: a free port (see `url`). */
  port?: number;
  /** Where gateways POST their offer; default `/`. */
  path?: string;
  /** Serve https with these (`key`, `cert`, …); without: http. */
  tls?: Pick<HttpsServerOptions, 'key' | 'cert' | 'ca' | 'pfx' | 'passphrase'>;
  /** node-datachannel options (`bindAddress`, `portRangeBegin`/`End`, …) and W3C `iceServers`. */
  rtcConfig?: Record<string, unknown>;
  /** ICE gathering, then the channels opening, each within this (default 10 s). */
  connectTimeoutMs?: number;
  /** Offers being answered at once; more get 503 with Retry-After (default 4). */
  maxPendingSessions?: number;
}

const MAX_OFFER_BYTES = 64 * 1024;

/**
 * A receiver that listens: gateways dial it (POST of a WebRTC offer to `url`, WHIP-style, with
 * the token), it answers, and from the open connection on it is the same receiver as one that
 * dials (HELLO with its resume positions, ordering, acks, heartbeats, GAP/RESET/END, GOAWAY).
 * Several gateway instances may dial it over its life (HA): the newest connection wins, the
 * older one is closed, and delivery resumes from what this receiver has.
 */
export class ListeningReceiver extends ReceiverCore {
  readonly #server: Server;
  readonly #o: Required<Pick<ListenOptions, 'token' | 'path' | 'connectTimeoutMs' | 'maxPendingSessions'>> & ListenOptions;
  readonly #load: () => Promise<NodeDataChannelModule>;
  readonly #tokenDigest: Buffer;
  readonly #sessions = new Map<string, AnsweredSession>();
  #pending = 0;
  #url = '';
  /** The lifecycle's dial waiting for the next gateway, if it waits. */
  #waiter: ((link: FrameLink) => void) | undefined;
  #queued: FrameLink | undefined;
  #current: FrameLink | undefined;
  #closed = false;

  constructor(options: ListenOptions, load: () => Promise<NodeDataChannelModule>) {
    // the dial is this object's own method: `this` exists only after super()
    const self: { next?: () => Promise<FrameLink> } = {};
    super({
      ...options,
      transports: ['webrtc'],
      dial: () => self.next!(),
      // "dialing" is waiting for the next gateway to connect: nothing to back off from
      reconnect: { nextRetryDelayMs: () => 0 },
      // one gateway's error (say, it has this endpoint under another id) ends its connection only
      fatalCodes: [],
    });
    const path = options.path ?? '/';
    if (!path.startsWith('/')) throw new MirrorstreamError('MS_CONFIG_INVALID', 'path must start with /');
    if (!options.token) throw new MirrorstreamError('MS_CONFIG_INVALID', 'token is required');
    self.next = () => this.#nextLink();
    this.#o = { connectTimeoutMs: 10_000, maxPendingSessions: 4, ...options, path };
    this.#load = load;
    this.#tokenDigest = digest(options.token);
    const handler = (req: IncomingMessage, res: ServerResponse): void => void this.#handle(req, res);
    this.#server = options.tls ? createHttpsServer(options.tls, handler) : createHttpServer(handler);
    this.#server.headersTimeout = 5_000;
    this.#server.requestTimeout = 10_000;
  }

  /** Where gateways dial this receiver (the `url` of its endpoint entry). */
  get url(): string {
    return this.#url;
  }

  /** Bind, then wait for gateways (resolves once listening). */
  async listen(): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#o.port ?? 0, this.#o.host ?? '127.0.0.1', () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    const { address, port } = this.#server.address() as AddressInfo;
    const host = address.includes(':') ? `[${address}]` : address;
    this.#url = `${this.#o.tls ? 'https' : 'http'}://${host}:${port}${this.#o.path}`;
    // "connected" once a gateway dialed and said WELCOME; until then status is connecting
    this.connect().catch(() => undefined);
    return this;
  }

  /** Stop listening, close the connection and every session. */
  override close(): Promise<void> {
    this.#closed = true;
    super.close();
    for (const s of this.#sessions.values()) s.close();
    this.#sessions.clear();
    this.#queued?.close('receiver closed');
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  #nextLink(): Promise<FrameLink> {
    const queued = this.#queued;
    this.#queued = undefined;
    if (queued && !queued.isClosed) return Promise.resolve(this.#take(queued));
    return new Promise((resolve, reject) => {
      if (this.#closed) return reject(new MirrorstreamError('MS_TRANSPORT_CLOSED', 'receiver closed'));
      this.#waiter = (link) => resolve(this.#take(link));
    });
  }

  #take(link: FrameLink): FrameLink {
    this.#current = link;
    link.on('close', () => {
      if (this.#current === link) this.#current = undefined;
    });
    return link;
  }

  /** A gateway's connection is up: it becomes the receiver's connection (the newest wins). */
  #arrived(link: FrameLink): void {
    if (this.#closed) return link.close('receiver closed');
    const waiter = this.#waiter;
    if (waiter) {
      this.#waiter = undefined;
      return waiter(link);
    }
    this.#queued?.close('a newer gateway connection came');
    this.#queued = link;
    // the gateway on the current link no longer dials us (another instance took over, or it restarted)
    this.#current?.close('another gateway connected');
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const path = new URL(req.url ?? '/', 'http://listener').pathname;
      const base = this.#o.path.endsWith('/') ? this.#o.path : `${this.#o.path}/`;
      const sessionId = path.startsWith(`${base}sessions/`) ? path.slice(`${base}sessions/`.length) : undefined;
      if (path !== this.#o.path && sessionId === undefined) return fail(res, 404, 'MS_NOT_FOUND', 'no such path here');
      if (!this.#authorized(req)) {
        res.setHeader('www-authenticate', 'Bearer');
        return fail(res, 401, 'MS_UNAUTHORIZED', 'missing or wrong token');
      }
      if (sessionId !== undefined) {
        if (req.method !== 'DELETE') return fail(res, 405, 'MS_NOT_FOUND', 'sessions take DELETE only');
        const session = this.#sessions.get(sessionId);
        if (!session) return fail(res, 404, 'MS_SESSION_NOT_FOUND', 'no such session');
        this.#sessions.delete(sessionId);
        session.close();
        res.writeHead(204).end();
        return;
      }
      if (req.method !== 'POST') return fail(res, 405, 'MS_NOT_FOUND', 'POST a WebRTC offer here');
      await this.#offer(req, res, base);
    } catch (error) {
      fail(res, 500, 'MS_INTERNAL', error instanceof Error ? error.message : String(error));
    }
  }

  async #offer(req: IncomingMessage, res: ServerResponse, base: string): Promise<void> {
    if ((req.headers['content-type'] ?? '').split(';')[0]!.trim() !== 'application/sdp') return fail(res, 415, 'MS_UNSUPPORTED_MEDIA_TYPE', 'the offer must be application/sdp');
    const body = await readBody(req, MAX_OFFER_BYTES);
    if (body === undefined) return fail(res, 413, 'MS_PAYLOAD_TOO_LARGE', `the offer is larger than ${MAX_OFFER_BYTES} bytes`);
    if (!/^v=0\r?\n/.test(body) || !/\r?\nm=application \d+ [A-Z/]*SCTP/.test(body)) return fail(res, 400, 'MS_BAD_REQUEST', 'not an SDP offer with a data channel section');
    if (this.#closed) return fail(res, 503, 'MS_GATEWAY_CLOSED', 'this receiver is closing');
    if (this.#pending >= this.#o.maxPendingSessions) {
      res.setHeader('retry-after', '1');
      return fail(res, 503, 'MS_TOO_MANY_SESSIONS', 'too many sessions being set up; retry');
    }
    this.#pending++;
    let session: AnsweredSession;
    try {
      const ndc = await this.#load().catch((error: unknown) => {
        throw new MirrorstreamError('MS_TRANSPORT_UNAVAILABLE', 'a listening receiver needs node-datachannel: npm install node-datachannel', { cause: error });
      });
      session = await answerOffer(body, { ndc, clock: this.#o.clock ?? new RealClock(), timeoutMs: this.#o.connectTimeoutMs, name: `listen-${this.endpointId}`, ...(this.#o.rtcConfig ? { rtcConfig: this.#o.rtcConfig } : {}) });
    } catch (error) {
      this.#pending--;
      if (error instanceof MirrorstreamError && error.code === 'MS_TRANSPORT_UNAVAILABLE') return fail(res, 503, error.code, error.message);
      return fail(res, 400, 'MS_BAD_REQUEST', `the offer could not be answered: ${error instanceof Error ? error.message : String(error)}`);
    }
    const id = randomUUID();
    this.#sessions.set(id, session);
    session.link.then(
      (link) => {
        this.#pending--;
        link.on('close', () => this.#sessions.delete(id));
        if (!this.#sessions.has(id)) return link.close('session deleted');
        this.#arrived(link);
      },
      () => {
        this.#pending--;
        this.#sessions.delete(id);
      },
    );
    res.writeHead(201, { 'content-type': 'application/sdp', location: `${base}sessions/${id}` }).end(session.answerSdp);
  }

  #authorized(req: IncomingMessage): boolean {
    const header = req.headers.authorization ?? '';
    const token = header.startsWith('Bearer ') ? header.slice('Bearer '.length) : undefined;
    return token !== undefined && timingSafeEqual(digest(token), this.#tokenDigest);
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function fail(res: ServerResponse, status: number, code: ErrorCode, message: string): void {
  if (res.headersSent) return void res.destroy();
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code, message } }));
}

/**
 * The body as text, or undefined when it is longer than `max` bytes. A longer body is read
 * on (and dropped) up to 16 × max, so the client gets its 413 instead of a reset connection;
 * beyond that the connection is cut.
 */
function readBody(req: IncomingMessage, max: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (part: Buffer) => {
      size += part.length;
      if (size <= max) parts.push(part);
      else if (size > 16 * max) req.destroy();
    });
    req.once('end', () => resolve(size > max ? undefined : Buffer.concat(parts).toString('utf8')));
    req.once('error', reject);
    req.once('close', () => resolve(size > max ? undefined : Buffer.concat(parts).toString('utf8')));
  });
}
