import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { importQuietly, MirrorstreamError, MISSING_HTTP3_NOISE, type Clock } from '@mirrorstream/receiver/protocol';
import { loadTls, type TlsMaterial } from './cert.js';
import { WebTransportTransport, type WebTransportBackend, type WtSession } from './transport.js';

export interface WebTransportConfig {
  port: number;
  certFile?: string | undefined;
  keyFile?: string | undefined;
}

export interface WebTransportInfo {
  backend: WebTransportBackend;
  url: string;
  certificate_sha256: string;
  self_signed: boolean;
}

export interface WebTransportTicket {
  url: string;
  backend: WebTransportBackend;
  /** For `new WebTransport(url, { serverCertificateHashes })` with a self-signed cert. */
  certificate_hashes: { algorithm: 'sha-256'; value: string }[];
  expires_at: string;
  /**
   * The same session through the gateway's HTTP port (the browser's WebSocket tunnel), relative
   * to the gateway's base URL: behind a TLS-terminating proxy the page's own origin carries it.
   */
  tunnel_path: string;
  /**
   * The gateway generated the listener's certificate: a browser trusts it only through
   * `serverCertificateHashes` (native WebTransport over HTTP/3), never on the WebSocket tunnel.
   */
  self_signed: boolean;
  /** DELETE this (with the endpoint token) to give the ticket back unused: its signaling slot is freed at once. */
  cancel_path: string;
}

/** Where the HTTP port relays a tunnel session: this listener on loopback, and its certificate. */
export interface TunnelTarget {
  host: string;
  port: number;
  /** SHA-256 of the listener's certificate (DER), to pin the loopback TLS hop. */
  certificateSha256: Uint8Array;
}

/** The listener's session path; the HTTP port's tunnel (http/tunnel.ts) answers on it too. */
export const WEBTRANSPORT_PATH = '/v1/wt';
const PATH = WEBTRANSPORT_PATH;
const TICKET_TTL_MS = 30_000;

interface WtServer {
  ready: Promise<unknown>;
  startServer(): void;
  stopServer(): void;
  address(): { port: number; host: string } | null;
  sessionStream(path: string): ReadableStream<WtServerSession>;
  setRequestCallback(cb: (req: { header: Record<string, string> }) => Promise<{ status: number; path?: string; userData?: unknown }>): void;
}

interface WtServerSession extends WtSession {
  ready: Promise<unknown>;
  userData?: { endpointId?: string; release?: () => void };
  incomingBidirectionalStreams: ReadableStream<{ readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array> }>;
  createUnidirectionalStream(): Promise<WritableStream<Uint8Array>>;
}

/**
 * The WebTransport listener (its own TLS port). Backend: HTTP/3 via
 * @fails-components/webtransport-transport-http3-quiche where that optional native
 * package is installed (with HTTP/2 beside it), else the library's HTTP/2 WebTransport,
 * which Node receivers use directly and browsers through the library's WebSocket-tunnel
 * client. Sessions are admitted by a single-use ticket from signaling, so endpoint
 * tokens never travel in URLs.
 */
export class WebTransportService {
  readonly info: WebTransportInfo;
  readonly #server: WtServer;
  readonly #tls: TlsMaterial;
  /** Unused tickets; each holds a signaling slot, given back at expiry or when its session ends. */
  readonly #tickets = new Map<string, { endpointId: string; expires: number; release: () => void; relayed?: boolean }>();
  readonly #clock: Clock;
  readonly #local: { host: string; port: number };
  #stopped = false;

  private constructor(server: WtServer, tls: TlsMaterial, info: WebTransportInfo, clock: Clock, local: { host: string; port: number }) {
    this.#server = server;
    this.#tls = tls;
    this.info = info;
    this.#clock = clock;
    this.#local = local;
  }

  static async start(opts: {
    config: WebTransportConfig;
    host: string;
    maxFrameBytes: number;
    log: Logger;
    clock: Clock;
    onSession: (transport: WebTransportTransport, endpointId: string) => void;
  }): Promise<WebTransportService> {
    const backend = await detectBackend();
    const tls = await loadTls(opts.config.certFile, opts.config.keyFile, opts.host);
    const lib = await loadLibrary();
    const ServerClass = backend === 'http3' ? lib.HttpServer : lib.Http2Server;
    const server = new ServerClass({
      port: opts.config.port,
      host: opts.host,
      secret: randomBytes(32).toString('hex'),
      cert: tls.cert,
      privKey: tls.key,
      ...(backend === 'http3' ? { reliability: 'both' } : {}),
    }) as unknown as WtServer;
    const sessions = server.sessionStream(PATH);
    server.startServer();
    await server.ready;
    const addr = server.address();
    const port = addr?.port ?? opts.config.port;
    const hostForUrl = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
    const service = new WebTransportService(server, tls, {
      backend,
      url: `https://${hostForUrl}:${port}${PATH}`,
      certificate_sha256: Buffer.from(tls.sha256).toString('base64'),
      self_signed: tls.selfSigned,
    }, opts.clock, { host: loopbackFor(opts.host), port });
    server.setRequestCallback(async ({ header }) => service.#admit(header[':path'] ?? ''));
    void service.#acceptLoop(sessions, opts);
    return service;
  }

  /**
   * A single-use session URL for one endpoint (the caller checked its token). `release`
   * is called once the ticket expired unused, or once its session ended.
   */
  ticket(endpointId: string, release: () => void = () => undefined): WebTransportTicket {
    if (this.#stopped) throw new MirrorstreamError('MS_GATEWAY_CLOSED', 'WebTransport is stopped');
    const now = this.#clock.now();
    const ticket = randomBytes(18).toString('base64url');
    this.#tickets.set(ticket, { endpointId, expires: now + TICKET_TTL_MS, release });
    this.#clock.setTimeout(() => {
      const unused = this.#tickets.get(ticket);
      this.#tickets.delete(ticket);
      unused?.release();
    }, TICKET_TTL_MS + 1);
    return {
      url: `${this.info.url}?ticket=${ticket}`,
      backend: this.info.backend,
      certificate_hashes: [{ algorithm: 'sha-256', value: Buffer.from(this.#tls.sha256).toString('base64') }],
      self_signed: this.#tls.selfSigned,
      expires_at: new Date(now + TICKET_TTL_MS).toISOString(),
      tunnel_path: `${PATH}?ticket=${ticket}`,
      cancel_path: `/v1/endpoints/${encodeURIComponent(endpointId)}/webtransport/${ticket}`,
    };
  }

  /**
   * Give back a ticket no session used yet (its receiver could not reach the listener): its
   * signaling slot is free at once, not at expiry. False if `endpointId` holds no such ticket.
   */
  cancel(endpointId: string, ticket: string): boolean {
    const entry = this.#tickets.get(ticket);
    if (!entry || entry.endpointId !== endpointId) return false;
    this.#tickets.delete(ticket);
    entry.release();
    return true;
  }

  /** A tunnel relay for `path` ended: a ticket it carried that no session took is given back. */
  relayEnded(path: string): void {
    const ticket = ticketOf(path);
    const entry = this.#tickets.get(ticket);
    if (entry?.relayed) this.cancel(entry.endpointId, ticket);
  }

  /**
   * Where to relay a tunnel request for `path` (`/v1/wt?ticket=…`), if it carries a live
   * ticket. The listener admits the ticket as for a direct session; one relay per ticket, so a
   * second request with it is refused here, with an answer, not cut off by the listener.
   */
  tunnelTarget(path: string): TunnelTarget {
    if (this.#stopped) throw new MirrorstreamError('MS_GATEWAY_CLOSED', 'WebTransport is stopped');
    const entry = this.#tickets.get(ticketOf(path));
    if (!entry || entry.relayed || entry.expires < this.#clock.now()) throw new MirrorstreamError('MS_UNAUTHORIZED', 'no such WebTransport ticket, or it expired or was used');
    entry.relayed = true;
    return { ...this.#local, certificateSha256: this.#tls.sha256 };
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#server.stopServer();
  }

  #admit(path: string): { status: number; path?: string; userData?: unknown } {
    const ticket = ticketOf(path);
    const entry = this.#tickets.get(ticket);
    this.#tickets.delete(ticket);
    if (!entry || entry.expires < this.#clock.now() || !path.startsWith(PATH)) {
      entry?.release();
      return { status: 401 };
    }
    return { status: 200, path: PATH, userData: { endpointId: entry.endpointId, release: entry.release } };
  }

  async #acceptLoop(
    sessions: ReadableStream<WtServerSession>,
    opts: { maxFrameBytes: number; log: Logger; clock: Clock; onSession: (t: WebTransportTransport, endpointId: string) => void },
  ): Promise<void> {
    const reader = sessions.getReader();
    for (;;) {
      const { value: session, done } = await reader.read().catch(() => ({ value: undefined, done: true as const }));
      if (done || !session) return;
      void this.#setUp(session, opts).catch((error: unknown) => {
        session.userData?.release?.();
        opts.log.warn({ err: error }, 'WebTransport session did not come up');
        try {
          session.close({ closeCode: 1, reason: 'setup failed' });
        } catch {
          // already gone
        }
      });
    }
  }

  async #setUp(session: WtServerSession, opts: { maxFrameBytes: number; clock: Clock; onSession: (t: WebTransportTransport, endpointId: string) => void }): Promise<void> {
    session.closed.catch(() => undefined);
    await session.ready;
    const endpointId = session.userData?.endpointId;
    if (!endpointId) throw new Error('session without an admitted endpoint');
    // the receiver opens the control stream; we open the data stream
    const bidi = await session.incomingBidirectionalStreams.getReader().read();
    if (bidi.done || !bidi.value) throw new Error('no control stream');
    const data = await session.createUnidirectionalStream();
    const transport = new WebTransportTransport({ session, backend: this.info.backend, control: bidi.value, data, maxFrameBytes: opts.maxFrameBytes, clock: opts.clock });
    const release = session.userData?.release;
    if (release) void transport.closed.then(release);
    opts.onSession(transport, endpointId);
  }
}

function ticketOf(path: string): string {
  const q = path.indexOf('?');
  return new URLSearchParams(q >= 0 ? path.slice(q + 1) : '').get('ticket') ?? '';
}

/** The address this process reaches a listener bound to `host` on (every interface: loopback). */
function loopbackFor(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '::1';
  return host;
}

interface Library {
  HttpServer: new (args: Record<string, unknown>) => unknown;
  Http2Server: new (args: Record<string, unknown>) => unknown;
}

async function loadLibrary(): Promise<Library> {
  // the library's own lines about a missing HTTP/3 backend are dropped: the gateway logs one of its own
  return (await importQuietly(() => import('@fails-components/webtransport'), MISSING_HTTP3_NOISE, (lib) => lib.quicheLoaded)) as unknown as Library;
}

/** HTTP/3 needs the optional native quiche backend; it cannot be installed everywhere. */
export async function detectBackend(): Promise<WebTransportBackend> {
  try {
    await import('@fails-components/webtransport-transport-http3-quiche' as string);
    return 'http3';
  } catch {
    return 'http2';
  }
}
