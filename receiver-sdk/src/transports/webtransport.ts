import type { Dialer, FrameLink, LinkChannel, LinkEvents } from '../link.js';
import { withTimeout, type Clock } from '../protocol/clock.js';
import { TypedEmitter } from '../protocol/emitter.js';
import { MirrorstreamError } from '../protocol/errors.js';
import { DEFAULT_MAX_FRAME_BYTES } from '../protocol/frames.js';
import { FrameReader, lengthPrefixed } from '../protocol/framing.js';
import { dialTimeout, httpError } from './signaling.js';

/**
 * WebTransport dialer on the W3C `WebTransport` API: browsers' native one, or in Node
 * @fails-components/webtransport's (over HTTP/2 when the gateway has no HTTP/3). The
 * gateway hands out a single-use session URL and the hash of its certificate.
 */
export interface WebTransportTicket {
  url: string;
  backend: 'http3' | 'http2';
  certificate_hashes: { algorithm: 'sha-256'; value: string }[];
  /** The same session through the gateway's HTTP port (the WebSocket tunnel), relative to its base URL (gateways since the tunnel moved there). */
  tunnel_path?: string;
  /** The gateway generated the listener's certificate: no browser trusts it on the tunnel (gateways from 0.2.2). */
  self_signed?: boolean;
  /** DELETE it to give the ticket back unused (gateways from 0.2.2). */
  cancel_path?: string;
}

/**
 * What `selectWebTransport` picks: a constructor, or the WebSocket tunnel's constructor
 * marked as such, which then dials the gateway's own (HTTPS) origin instead of its
 * WebTransport port when it can.
 */
export type WebTransportChoice = WebTransportCtor | { WebTransport: WebTransportCtor; tunnel: true };

/** The subset of the W3C WebTransport interface the dialer uses. */
export interface WebTransportLike {
  readonly ready: Promise<unknown>;
  readonly closed: Promise<unknown>;
  readonly incomingUnidirectionalStreams: ReadableStream<ReadableStream<Uint8Array>>;
  readonly datagrams?: { readable: ReadableStream<Uint8Array> };
  createBidirectionalStream(): Promise<{ readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array> }>;
  close(info?: { closeCode?: number; reason?: string }): void;
}

export type WebTransportCtor = new (url: string, options: Record<string, unknown>) => WebTransportLike;

export interface WebTransportDialOptions {
  gatewayUrl: string;
  endpointId: string;
  token: string | (() => Promise<string>);
  WebTransport?: WebTransportCtor;
  /**
   * Pick (or load) the constructor per ticket instead (browsers: native for HTTP/3, the
   * WebSocket tunnel for HTTP/2; Node: @fails-components, loaded at the first dial).
   */
  selectWebTransport?: (ticket: WebTransportTicket) => WebTransportChoice | Promise<WebTransportChoice>;
  /** Timeouts run on this clock. */
  clock: Clock;
  /** Extra constructor options per ticket (Node: `forceReliable` for the HTTP/2 backend). */
  extraOptions?: (ticket: WebTransportTicket) => Record<string, unknown>;
  connectTimeoutMs?: number;
  /** Frame limit until the gateway's WELCOME names its own. */
  maxFrameBytes?: number;
  fetch?: typeof fetch;
}

export function webtransportDialer(opts: WebTransportDialOptions): Dialer {
  return () => dialWebTransport(opts);
}

async function dialWebTransport(opts: WebTransportDialOptions): Promise<FrameLink> {
  const doFetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
  const token = typeof opts.token === 'string' ? opts.token : await opts.token();
  const base = opts.gatewayUrl.replace(/\/+$/, '');
  const res = await doFetch(`${base}/v1/endpoints/${encodeURIComponent(opts.endpointId)}/webtransport`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
  });
  if (res.status !== 201) throw await httpError(res);
  const ticket = (await res.json()) as WebTransportTicket;
  // a ticket this attempt does not use holds one of the endpoint's signaling slots until it
  // expires: given back at once, so a receiver whose transport keeps failing never locks itself out
  const giveBack = (): void => {
    if (typeof ticket.cancel_path === 'string' && ticket.cancel_path.startsWith('/v1/')) {
      void doFetch(`${base}${ticket.cancel_path}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } }).catch(() => undefined);
    }
  };
  let wt: WebTransportLike | undefined;
  try {
    const choice = (await opts.selectWebTransport?.(ticket)) ?? opts.WebTransport;
    if (!choice) throw new MirrorstreamError('MS_TRANSPORT_UNAVAILABLE', 'no WebTransport here: pass one, or import @mirrorstream/receiver/node in Node');
    const tunnel = typeof choice !== 'function';
    const Ctor = tunnel ? choice.WebTransport : choice;
    const url = sessionUrl(ticket, base, tunnel);
    if (tunnel && url === ticket.url && ticket.self_signed === true) throw untrusted(base);
    wt = new Ctor(url, {
      serverCertificateHashes: ticket.certificate_hashes.map((h) => ({ algorithm: h.algorithm, value: base64ToBytes(h.value) })),
      ...opts.extraOptions?.(ticket),
    });
    wt.closed.catch(() => undefined);
    const timeoutMs = opts.connectTimeoutMs ?? 10_000;
    await withTimeout(opts.clock, wt.ready, timeoutMs, dialTimeout('WebTransport ready', timeoutMs));
  } catch (error) {
    wt?.close();
    giveBack();
    throw error instanceof MirrorstreamError ? error : new MirrorstreamError('MS_TRANSPORT_CLOSED', `WebTransport: ${String(error)}`, { retryable: true, cause: error });
  }
  const control = await wt.createBidirectionalStream();
  return new WebTransportLink(wt, control, ticket.backend, opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES);
}

/**
 * A browser has no WebTransport path it can trust here: the tunnel (a WebSocket) cannot pin a
 * certificate, and this gateway URL is not the https origin that would carry it. Not retried:
 * the receiver goes on with its next transport and leaves this one aside.
 */
function untrusted(base: string): MirrorstreamError {
  return new MirrorstreamError(
    'MS_TRANSPORT_UNAVAILABLE',
    `WebTransport: no path this browser can trust from ${base.slice(0, 100)}: the gateway's WebTransport listener has a certificate it generated, which a browser accepts only over HTTP/3; serve the gateway over https (a TLS proxy in front of its HTTP port carries the tunnel) or give the listener a trusted certificate (webtransport.certFile)`,
  );
}

class WebTransportLink extends TypedEmitter<LinkEvents> implements FrameLink {
  readonly #wt: WebTransportLike;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #readers = new Set<FrameReader>();
  #maxFrameBytes: number;
  #closed = false;

  constructor(
    wt: WebTransportLike,
    control: { readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array> },
    backend: 'http3' | 'http2',
    maxFrameBytes: number,
  ) {
    super();
    this.#wt = wt;
    this.#maxFrameBytes = maxFrameBytes;
    this.#writer = control.writable.getWriter();
    void this.#read(control.readable, 'control');
    void this.#acceptDataStreams();
    if (backend === 'http3' && wt.datagrams) void this.#readDatagrams(wt.datagrams.readable);
    wt.closed.then(
      () => this.close('session closed'),
      () => this.close('session failed'),
    );
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  setMaxFrameBytes(bytes: number): void {
    this.#maxFrameBytes = bytes;
    for (const r of this.#readers) r.maxFrameBytes = bytes;
  }

  /**
   * True once the control stream took the bytes (its writer's write resolved), false if it
   * failed (the link then closes). Writes are queued in call order. Everything the receiver
   * sends (HELLO, ACK, heartbeats, reports) is control traffic.
   */
  async send(bytes: Uint8Array, _channel: LinkChannel): Promise<boolean> {
    if (this.#closed) return false;
    try {
      await this.#writer.write(lengthPrefixed(bytes));
      return true;
    } catch {
      this.close('control stream write failed');
      return false;
    }
  }

  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#wt.close({ closeCode: 0, reason: reason.slice(0, 100) });
    } catch {
      // already closed
    }
    this.emit('close', reason);
  }

  async #acceptDataStreams(): Promise<void> {
    const reader = this.#wt.incomingUnidirectionalStreams.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || !value) return;
        void this.#read(value, 'data');
      }
    } catch {
      this.close('incoming streams failed');
    }
  }

  async #read(stream: ReadableStream<Uint8Array>, channel: LinkChannel): Promise<void> {
    const reader = stream.getReader();
    const frames = new FrameReader(this.#maxFrameBytes);
    this.#readers.add(frames);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const frame of frames.push(value)) this.emit('message', frame, channel);
      }
      if (channel === 'control') this.close('control stream ended');
    } catch (error) {
      this.close(error instanceof Error ? `${channel} stream: ${error.message}` : `${channel} stream failed`);
    } finally {
      this.#readers.delete(frames);
    }
  }

  async #readDatagrams(readable: ReadableStream<Uint8Array>): Promise<void> {
    const reader = readable.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        this.emit('message', value, 'data-unreliable');
      }
    } catch {
      // datagrams end with the session
    }
  }
}

/**
 * The tunnel is a `wss://` WebSocket to the URL's host and port. When the gateway's base URL is
 * HTTPS (a TLS-terminating proxy in front of it, or TLS of its own) the tunnel goes there, the
 * origin the page already trusts; otherwise to the WebTransport listener's URL, whose
 * certificate the browser must trust.
 */
export function sessionUrl(ticket: WebTransportTicket, base: string, tunnel: boolean): string {
  const path = ticket.tunnel_path;
  if (!tunnel || typeof path !== 'string' || !path.startsWith('/v1/wt?')) return ticket.url;
  // a relative base (a page's own origin) resolves against the page
  const here = (globalThis as { location?: { href?: string } }).location?.href;
  let url: URL;
  try {
    url = new URL(`${base}${path}`, here);
  } catch {
    return ticket.url;
  }
  return url.protocol === 'https:' ? url.toString() : ticket.url;
}

function base64ToBytes(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
