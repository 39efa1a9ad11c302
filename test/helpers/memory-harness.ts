import { createGateway, ManualClock, MemoryTransport, type Gateway, type GatewayConfigInput } from '../../gateway/src/index.js';
import { ReceiverCore, type Chunk, type FrameLink } from '../../receiver-sdk/src/index.js';

/**
 * A gateway and receivers wired with in-memory transports and one manual clock.
 * `step` advances time and lets the microtask-delivered frames settle: no sleeps.
 */
export interface TestReceiver {
  readonly id: string;
  readonly core: ReceiverCore;
  readonly chunks: Chunk[];
  /** The receiver side of the current connection. */
  link(): MemoryTransport | undefined;
  /** The gateway side of the current connection (rate caps apply to gateway → receiver). */
  gatewaySide(): MemoryTransport | undefined;
  /** Hang: drop all traffic and refuse to reconnect, like a frozen process. */
  freeze(): void;
  /** Come back: allow reconnecting (the hung link stays until the gateway drops it or the new one replaces it). */
  thaw(): void;
  /** Stop like SIGSTOP: the connection stays, traffic both ways is held (nothing lost). */
  pause(): void;
  /** Continue like SIGCONT: what was held arrives, in order. */
  resume(): void;
}

export interface Harness {
  clock: ManualClock;
  gateway: Gateway;
  receiver(id: string): Promise<TestReceiver>;
  settle(): Promise<void>;
  step(ms: number, stepMs?: number): Promise<void>;
  /** Step the clock `stepMs` at a time until `cond()` holds; throw if it does not within `maxMs` of that clock. */
  stepUntil(cond: () => boolean, maxMs: number, what: string, stepMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function settle(): Promise<void> {
  for (let i = 0; i < 4; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * Close a gateway that runs on a manual clock: its drain deadline, then the linger after GOAWAY
 * for receivers that do not close (a raw test client), each wait on that clock. Advance it until
 * the close is through (bounded).
 */
export async function closeOnManualClock(gateway: Gateway, clock: ManualClock): Promise<void> {
  let done = false;
  const closed = gateway.close().finally(() => (done = true));
  for (let i = 0; i < 20 && !done; i++) {
    clock.advance(gateway.config.drainTimeoutMs + 1);
    await settle();
  }
  if (!done) throw new Error('the gateway did not close within 20 drain deadlines of its clock');
  await closed;
}

export function harness(config: GatewayConfigInput = {}): Harness {
  const clock = new ManualClock();
  const gateway = createGateway({ clock, logLevel: 'silent', ...config });
  const receivers: TestReceiver[] = [];

  const h: Harness = {
    clock,
    gateway,
    settle,
    async step(ms: number, stepMs = 10): Promise<void> {
      for (let t = 0; t < ms; t += stepMs) {
        clock.advance(Math.min(stepMs, ms - t));
        await settle();
      }
    },
    async stepUntil(cond: () => boolean, maxMs: number, what: string, stepMs = 10): Promise<void> {
      await settle();
      for (let t = 0; !cond(); t += stepMs) {
        if (t >= maxMs) throw new Error(`${what}: not within ${maxMs} ms of the manual clock`);
        clock.advance(stepMs);
        await settle();
      }
    },
    async receiver(id: string): Promise<TestReceiver> {
      let current: MemoryTransport | undefined;
      let gatewayEnd: MemoryTransport | undefined;
      let frozen = false;
      const core = new ReceiverCore({
        endpointId: id,
        clock,
        reconnect: { nextRetryDelayMs: () => 100 },
        dial: async () => {
          if (frozen) throw new Error('host unreachable');
          const [gatewaySide, receiverSide] = MemoryTransport.pair();
          gateway.accept(gatewaySide, { endpointId: id });
          current = receiverSide;
          gatewayEnd = gatewaySide;
          return hangsWhileFrozen(receiverSide, () => frozen);
        },
      });
      const chunks: Chunk[] = [];
      core.on('chunk', (c) => chunks.push(c));
      const r: TestReceiver = {
        id,
        core,
        chunks,
        link: () => current,
        gatewaySide: () => gatewayEnd,
        freeze: () => {
          frozen = true;
          if (current) current.blackhole = true;
        },
        thaw: () => {
          frozen = false;
        },
        pause: () => {
          if (current) current.paused = true;
        },
        resume: () => {
          if (current) current.paused = false;
        },
      };
      receivers.push(r);
      const connected = core.connect();
      await settle();
      await connected;
      return r;
    },
    async close(): Promise<void> {
      for (const r of receivers) r.core.close();
      await closeOnManualClock(gateway, clock);
    },
  };
  return h;
}

/**
 * The receiver's end as its SDK sees it. The SDK runs on while "frozen" (its silence watch
 * fires, it leaves the link), but nothing gets through a hung path, not even its goodbye:
 * the gateway finds the endpoint dead by itself.
 */
function hangsWhileFrozen(link: MemoryTransport, frozen: () => boolean): FrameLink {
  return {
    get isClosed() {
      return link.isClosed;
    },
    send: (bytes, channel) => link.send(bytes, channel),
    close: (reason) => {
      if (!frozen()) link.close(reason);
    },
    on: (event, listener) => link.on(event, listener),
    off: (event, listener) => link.off(event, listener),
  };
}

/** Seqs of one stream as a receiver got them. */
export function seqsOf(r: TestReceiver, streamId = 's1'): number[] {
  return r.chunks.filter((c) => c.streamId === streamId).map((c) => c.seq);
}

/** True when strictly increasing: in order and no duplicate. */
export function strictlyIncreasing(seqs: readonly number[]): boolean {
  for (let i = 1; i < seqs.length; i++) if ((seqs[i] ?? 0) <= (seqs[i - 1] ?? 0)) return false;
  return true;
}

export function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
