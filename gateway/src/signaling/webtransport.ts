import { MirrorstreamError, type Clock } from '@mirrorstream/receiver/protocol';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config.js';
import { assertOpen, type Closing } from '../core/lifecycle.js';
import { idSchema, parseInput } from '../streams/spec.js';
import type { Transport } from '../transports/transport.js';
import { WebTransportService, type TunnelTarget, type WebTransportInfo, type WebTransportTicket } from '../transports/webtransport/server.js';
import type { SessionBudget } from './budget.js';
import type { EndpointTokens } from './tokens.js';

export interface WebTransportSignalingOptions {
  config: GatewayConfig;
  clock: Clock;
  log: Logger;
  tokens: EndpointTokens;
  budget: SessionBudget;
  accept(transport: Transport, auth: { endpointId: string }): void;
  closing: Closing;
}

/**
 * WebTransport signaling: the listener (started on first use, or by the CLI at start) and
 * single-use session tickets for token holders, so tokens never travel in URLs.
 */
export class WebTransportSignaling {
  readonly #o: WebTransportSignalingOptions;
  #service: Promise<WebTransportService> | undefined;
  #info: WebTransportInfo | undefined;

  constructor(options: WebTransportSignalingOptions) {
    this.#o = options;
  }

  /** Backend, URL and certificate hash, once started. */
  get info(): WebTransportInfo | undefined {
    return this.#info;
  }

  start(): Promise<WebTransportInfo> {
    assertOpen(this.#o.closing);
    return this.#start().then((s) => s.info);
  }

  /** A single-use session URL (and cert hash) for a token holder. */
  async open(endpointId: string, token: string | undefined): Promise<WebTransportTicket> {
    assertOpen(this.#o.closing);
    parseInput(idSchema, endpointId, 'endpoint id');
    await this.#o.tokens.verify(token, endpointId);
    const service = await this.#start();
    const release = this.#o.budget.take(endpointId, 'webtransport');
    try {
      return service.ticket(endpointId, release);
    } catch (error) {
      release();
      throw error;
    }
  }

  /** Give back a ticket its receiver could not use (MS_SESSION_NOT_FOUND if it holds no such unused ticket). */
  async cancel(endpointId: string, token: string | undefined, ticket: string): Promise<void> {
    parseInput(idSchema, endpointId, 'endpoint id');
    await this.#o.tokens.verify(token, endpointId);
    const service = await this.#service?.catch(() => undefined);
    if (!service?.cancel(endpointId, ticket)) throw new MirrorstreamError('MS_SESSION_NOT_FOUND', `no unused WebTransport ticket ${ticket.slice(0, 64)} for ${endpointId}`);
  }

  /** A tunnel relay for `path` ended: its ticket, if no session took it, is given back. */
  relayEnded(path: string): void {
    void this.#service?.then((s) => s.relayEnded(path)).catch(() => undefined);
  }

  /** Where the HTTP port relays a browser tunnel request for `path`, if its ticket is live. */
  async tunnelTarget(path: string): Promise<TunnelTarget> {
    assertOpen(this.#o.closing);
    if (!this.#o.config.webtransport.enabled) throw new MirrorstreamError('MS_NOT_FOUND', 'WebTransport is disabled in this gateway');
    // no listener (not started, or it failed to): no ticket was handed out
    const service = await this.#service?.catch(() => undefined);
    if (!service) throw new MirrorstreamError('MS_UNAUTHORIZED', 'no such WebTransport ticket');
    return service.tunnelTarget(path);
  }

  async stop(): Promise<void> {
    if (this.#service) (await this.#service.catch(() => undefined))?.stop();
  }

  #start(): Promise<WebTransportService> {
    const { config, log } = this.#o;
    if (!config.webtransport.enabled) throw new MirrorstreamError('MS_NOT_FOUND', 'WebTransport is disabled in this gateway');
    this.#service ??= WebTransportService.start({
      config: config.webtransport,
      host: config.host,
      maxFrameBytes: config.maxFrameBytes,
      log: log.child({ module: 'webtransport' }),
      clock: this.#o.clock,
      onSession: (transport, endpointId) => {
        if (this.#o.closing()) transport.close('gateway closing');
        else this.#o.accept(transport, { endpointId });
      },
    }).then((service) => {
      this.#info = service.info;
      const { backend, url, certificate_sha256: certificateSha256, self_signed: selfSigned } = service.info;
      log.info(
        { backend, url, certificateSha256, selfSigned },
        backend === 'http3'
          ? 'WebTransport backend: HTTP/3 (quiche) with HTTP/2 beside it'
          : 'WebTransport backend: HTTP/2 (optional @fails-components/webtransport-transport-http3-quiche is not installed); browsers use the WebSocket tunnel',
      );
      return service;
    });
    return this.#service;
  }
}
