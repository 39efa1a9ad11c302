import { GatewayRotation } from './gateway-rotation.js';
import type { FrameLink } from './link.js';
import { RealClock } from './protocol/clock.js';
import type { MirrorstreamError } from './protocol/errors.js';
import { ReceiverCore, type ReceiverCoreOptions, type ReceiverStatus } from './receiver.js';
import { routeDialer, transportOrder, type RouteDialOptions, type TransportName } from './route-dialers.js';

export type { TransportName } from './route-dialers.js';

export interface ReceiverOptions extends Omit<ReceiverCoreOptions, 'dial' | 'transports'>, RouteDialOptions {
  /**
   * Base URL of the gateway's HTTP API, e.g. `http://127.0.0.1:8080`, or the URLs of several
   * gateway instances: when a connection is lost the receiver dials the next one and
   * resumes there from its last seq (same epoch with a shared durable log).
   */
  gatewayUrl: string | readonly string[];
}

/**
 * The receiver: `new Receiver({gatewayUrl, endpointId, token})`, `await connect()`, then
 * `chunk`, `role`, `gap`, `reset`, `status` events. Ordering, acks, heartbeats and resume
 * come from ReceiverCore; this class only picks the gateway and the transport (GatewayRotation
 * over the dialers of route-dialers.ts).
 */
/**
 * (transport, gateway URL) pairs that cannot work in this page or process, shared by every
 * Receiver here: the first to learn it (e.g. no WebTransport path a browser can trust) spares
 * the others the signaling requests. A reload (or a new process) starts afresh.
 */
const STEPPED_ASIDE = new Map<string, MirrorstreamError>();

export class Receiver extends ReceiverCore {
  readonly #rotation: GatewayRotation<TransportName>;

  /** The transport of the current (or last) connection. */
  get transport(): TransportName | undefined {
    return this.#rotation.current?.transport;
  }

  /** The gateway instance of the current (or last) connection. */
  get gatewayUrl(): string | undefined {
    return this.#rotation.current?.url;
  }

  constructor(options: ReceiverOptions) {
    const clock = options.clock ?? new RealClock();
    const order = transportOrder(options);
    const urls = typeof options.gatewayUrl === 'string' ? [options.gatewayUrl] : options.gatewayUrl;
    const rotation = new GatewayRotation(urls, order, routeDialer(options, clock), STEPPED_ASIDE);
    super({ ...options, clock, dial: rotation.dial, transports: order });
    this.#rotation = rotation;
  }

  protected override linkAdopted(link: FrameLink): void {
    this.#rotation.adopted(link);
  }

  /** A transport that stepped aside (it cannot work here) is told once, with the status that follows. */
  protected override statusDetail(status: ReceiverStatus, detail: string): string {
    const note = this.#rotation.asideNote();
    return note ? `${detail} (${note})` : detail;
  }
}
