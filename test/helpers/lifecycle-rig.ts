import { decodeFrame, encodeFrame, ManualClock, MirrorstreamError, TypedEmitter, type DialHint, type Frame, type FrameLink, type LinkChannel, type LinkEvents } from '../../receiver-sdk/src/index.js';
import { Lifecycle } from '../../receiver-sdk/src/lifecycle.js';

/**
 * The receiver lifecycle's test rig (test/unit/receiver-lifecycle*.test.ts) and a fake link
 * (also test/unit/gateway-rotation.test.ts): dials the test lands or fails, on a manual clock.
 */

/** Lets the dial's promise settle (no time passes on the manual clock). */
export const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A link the test plays the gateway end of: what the receiver sent (decoded), how it was closed, `say` to speak. */
export class FakeLink extends TypedEmitter<LinkEvents> implements FrameLink {
  readonly got: Frame[] = [];
  closedWith: string | undefined;
  constructor(readonly route = '') {
    super();
  }
  get isClosed(): boolean {
    return this.closedWith !== undefined;
  }
  send(bytes: Uint8Array): boolean {
    if (this.isClosed) return false;
    const d = decodeFrame(bytes);
    if (d.ok) this.got.push(d.frame);
    return true;
  }
  close(reason: string): void {
    if (this.isClosed) return;
    this.closedWith = reason;
    this.emit('close', reason);
  }
  say(frame: Frame, channel: LinkChannel = 'control'): void {
    this.emit('message', encodeFrame(frame), channel);
  }
}

export const unreachable = (): MirrorstreamError => new MirrorstreamError('MS_TRANSPORT_CLOSED', 'unreachable', { retryable: true });

export interface Dial {
  hint: DialHint | undefined;
  link: FakeLink;
  settled: boolean;
  landed: boolean;
  land(): Promise<void>;
  fail(error?: unknown): Promise<void>;
}

/** A Lifecycle whose dials the test lands or fails; `delayMs` is the reconnect policy's answer (null: give up). */
export function lifecycleRig(delayMs: number | null = 100) {
  const clock = new ManualClock();
  const dials: Dial[] = [];
  const log: string[] = [];
  const adopted: FrameLink[] = [];
  const lc = new Lifecycle(
    {
      clock,
      reconnect: { nextRetryDelayMs: () => delayMs },
      dial: (hint) =>
        new Promise<FrameLink>((resolve, reject) => {
          const d: Dial = {
            hint,
            link: new FakeLink(),
            settled: false,
            landed: false,
            land: async () => {
              d.settled = d.landed = true;
              resolve(d.link);
              await turn();
            },
            fail: async (error = unreachable()) => {
              d.settled = true;
              reject(error);
              await turn();
            },
          };
          dials.push(d);
        }),
    },
    {
      adopt: (link) => void adopted.push(link),
      leave: (link, flush) => void log.push(`leave ${adopted.indexOf(link)}${flush ? ' + flush' : ''}`),
      status: (status, detail) => void log.push(`${status}: ${detail}`),
    },
  );
  let connected: Promise<void> | undefined;
  const connect = (): Promise<void> => {
    connected = lc.connect();
    connected.catch(() => undefined);
    return connected;
  };
  const last = (): Dial => dials.at(-1) as Dial;
  return {
    clock,
    lc,
    dials,
    log,
    adopted,
    last,
    connect,
    connected: () => connected,
    pending: () => dials.filter((d) => !d.settled),
    async toHandshake(): Promise<void> {
      connect();
      await last().land();
    },
    async toOpen(): Promise<void> {
      await this.toHandshake();
      lc.welcome('session s');
      await connected;
    },
    async toBackoff(): Promise<void> {
      connect();
      await last().fail();
    },
    async toReplacing(): Promise<void> {
      await this.toOpen();
      lc.drop({ kind: 'silent', limitMs: 300 });
    },
  };
}

export type LifecycleRig = ReturnType<typeof lifecycleRig>;
