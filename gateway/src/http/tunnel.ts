import { createHash, timingSafeEqual } from 'node:crypto';
import { ServerResponse, type IncomingMessage, type RequestListener, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { MirrorstreamError } from '@mirrorstream/receiver/protocol';
import type { Gateway } from '../gateway.js';
import { WEBTRANSPORT_PATH } from '../transports/webtransport/server.js';
import { toHttpError } from './errors.js';
import { rawErrorResponse } from './guards.js';

/** The loopback TLS hop to the listener must be up within this. */
const CONNECT_TIMEOUT_MS = 5_000;

/**
 * The browser's WebTransport fallback (the library's WebSocket tunnel) on the HTTP port: a
 * WebSocket upgrade of `/v1/wt?ticket=…` with a live ticket is relayed byte for byte to the
 * gateway's own WebTransport listener over loopback TLS (its certificate pinned), which admits
 * the ticket as for a direct session. So a TLS-terminating proxy in front of the HTTP port
 * fronts the tunnel too, and a page needs no trust in the listener's own certificate.
 */
export function serveTunnel(server: Server, app: RequestListener, gateway: Gateway, log: Logger, other?: OtherUpgrade): { closeAll(): void } {
  // upgraded sockets are the server's no more: `server.close()` would wait for them
  const relays = new Set<Duplex>();
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    if (other?.matches(req)) return other.handle(req, socket, head);
    // with an upgrade listener Node hands every request with an Upgrade header here (curl
    // --http2 sends `Upgrade: h2c`): anything but a WebSocket to the tunnel is plain HTTP
    if (!isTunnelRequest(req)) return serveWithoutUpgrade(req, socket as Socket, head, app);
    relays.add(socket);
    socket.once('close', () => relays.delete(socket));
    relay(req, socket, head, gateway).catch((error: unknown) => {
      log.debug({ err: error }, 'tunnel request refused');
      if (!socket.writable) return socket.destroy();
      const { status, body } = toHttpError(error);
      socket.end(rawErrorResponse(status, body));
    });
  });
  return {
    closeAll: () => {
      for (const socket of relays) socket.destroy();
    },
  };
}

/** Another upgrade the HTTP port serves (the streaming ingest), dispatched here before the tunnel's. */
export interface OtherUpgrade {
  matches(req: IncomingMessage): boolean;
  handle(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

/** The library's tunnel client, unpatched (SDK bundles before 0.2.2, other clients), asks for `//v1/wt`: it joins host and path with a slash of its own. */
function tunnelPath(req: IncomingMessage): string {
  return (req.url ?? '').replace(/^\/+/, '/');
}

function isTunnelRequest(req: IncomingMessage): boolean {
  return tunnelPath(req).split('?', 1)[0] === WEBTRANSPORT_PATH;
}

/**
 * An upgrade request for anything but the tunnel, answered as the plain HTTP request it also
 * is (the upgrade ignored, as without a listener). One with a body is refused instead: the
 * parser let go of the socket, so the body cannot be read.
 */
function serveWithoutUpgrade(req: IncomingMessage, socket: Socket, head: Buffer, app: RequestListener): void {
  if (head.length > 0 || req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined) {
    const { status, body } = toHttpError(new MirrorstreamError('MS_BAD_REQUEST', `Upgrade: ${String(req.headers.upgrade).slice(0, 40)} is not supported here; send the request without it`));
    socket.end(rawErrorResponse(status, body));
    return;
  }
  const res = new ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket);
  res.once('finish', () => {
    res.detachSocket(socket);
    socket.end();
  });
  app(req, res);
}

async function relay(req: IncomingMessage, socket: Duplex, head: Buffer, gateway: Gateway): Promise<void> {
  const path = tunnelPath(req);
  if (req.method !== 'GET' || !/^websocket$/i.test(req.headers.upgrade ?? '')) {
    throw new MirrorstreamError('MS_BAD_REQUEST', `${WEBTRANSPORT_PATH} takes a WebSocket upgrade (GET, Upgrade: websocket)`);
  }
  const target = await gateway.webTransportTunnelTarget(path);
  // from here the ticket is the relay's: when it ends, a ticket no session took is given back
  let upstream: TLSSocket;
  try {
    upstream = await connectPinned(target.host, target.port, target.certificateSha256);
  } catch (error) {
    gateway.webTransportRelayEnded(path);
    throw error;
  }
  if (socket.destroyed) {
    upstream.destroy();
    gateway.webTransportRelayEnded(path);
    return;
  }
  let ended = false;
  const end = (): void => {
    socket.destroy();
    upstream.destroy();
    if (!ended) gateway.webTransportRelayEnded(path);
    ended = true;
  };
  upstream.on('error', end);
  upstream.on('close', end);
  socket.on('close', end);
  upstream.setNoDelay(true);
  upstream.write(requestHead(req, path));
  if (head.length > 0) upstream.write(head);
  socket.pipe(upstream);
  upstream.pipe(socket);
}

/** TLS to the gateway's own listener; its certificate (self-signed or not) must be the one it holds. */
function connectPinned(host: string, port: number, sha256: Uint8Array): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const fail = (reason: string): void => {
      upstream.destroy();
      reject(new MirrorstreamError('MS_TRANSPORT_CLOSED', `WebTransport tunnel: ${reason}`, { retryable: true }));
    };
    // chain checks are replaced by the pin: the listener's certificate is known byte for byte
    const upstream = tlsConnect({ host, port, ALPNProtocols: ['http/1.1'], rejectUnauthorized: false, timeout: CONNECT_TIMEOUT_MS });
    upstream.once('timeout', () => fail('the WebTransport listener did not answer'));
    upstream.once('error', (error) => fail(error.message));
    upstream.once('secureConnect', () => {
      upstream.setTimeout(0);
      const raw = upstream.getPeerCertificate().raw as Buffer | undefined;
      const seen = raw ? createHash('sha256').update(raw).digest() : Buffer.alloc(0);
      if (seen.length !== sha256.length || !timingSafeEqual(seen, sha256)) return fail('the listener presented another certificate');
      upstream.removeAllListeners('error');
      resolve(upstream);
    });
  });
}

/** The request head as the client sent it (headers in their order and case), for the listener to parse. */
function requestHead(req: IncomingMessage, path: string): string {
  let head = `GET ${path} HTTP/1.1\r\n`;
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) head += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
  return `${head}\r\n`;
}
