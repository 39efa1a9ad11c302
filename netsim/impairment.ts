import { networkInterfaces } from 'node:os';
/**
 * The impairment model shared by the UDP and TCP relays.
 *
 * `ImpairmentModel` is pure: it only decides *whether* and *when* a packet leaves one
 * direction of a link, from an injectable clock and random source, so loss and jitter
 * can be made deterministic in tests. `DelayLine` is the only part that touches timers;
 * it delivers items at the times the model computed, in time order.
 */

/** 'up' = client → target, 'down' = target → client. */
export type Direction = 'up' | 'down';
export type DirectionSelector = Direction | 'both';

export interface Impairment {
  /** Percentage (0-100) of packets dropped at random. UDP only: the TCP relay rejects it. */
  lossPct: number;
  /** Fixed one-way delay added to every packet/chunk. */
  delayMs: number;
  /** Uniform ±jitter added to the delay (never below zero extra delay). */
  jitterMs: number;
  /** Let jitter reorder packets. Off by default: per-direction FIFO is kept. TCP never reorders. */
  reorder: boolean;
  /** Rate cap in bytes per second; 0 = unlimited. */
  rateBytesPerSec: number;
  /** Bytes that may wait for the rate cap: beyond it UDP drops, TCP pauses the sender. */
  queueBytes: number;
  /** Drop everything (UDP) / forward nothing (TCP, stream kept intact and resumed later). */
  blackhole: boolean;
}

export const DEFAULT_QUEUE_BYTES = 256 * 1024;

export const NO_IMPAIRMENT: Readonly<Impairment> = Object.freeze({
  lossPct: 0,
  delayMs: 0,
  jitterMs: 0,
  reorder: false,
  rateBytesPerSec: 0,
  queueBytes: DEFAULT_QUEUE_BYTES,
  blackhole: false,
});

/** Largest delay/jitter: setTimeout cannot wait longer than 2^31-1 ms anyway. */
const MAX_DELAY_MS = 3_600_000;

export interface DirectionStats {
  packetsIn: number;
  bytesIn: number;
  packetsForwarded: number;
  bytesForwarded: number;
  packetsDroppedLoss: number;
  bytesDroppedLoss: number;
  packetsDroppedQueue: number;
  bytesDroppedQueue: number;
  /** UDP: dropped by the blackhole. TCP: held back while the blackhole was on. */
  packetsBlackholed: number;
  bytesBlackholed: number;
}

export interface RelayStats {
  up: DirectionStats;
  down: DirectionStats;
}

function emptyStats(): DirectionStats {
  return {
    packetsIn: 0,
    bytesIn: 0,
    packetsForwarded: 0,
    bytesForwarded: 0,
    packetsDroppedLoss: 0,
    bytesDroppedLoss: 0,
    packetsDroppedQueue: 0,
    bytesDroppedQueue: 0,
    packetsBlackholed: 0,
    bytesBlackholed: 0,
  };
}

// Maps, not object literals: a key like "toString" must not look like a known setting
const NUMERIC = new Map<string, { min: number; max: number }>([
  ['lossPct', { min: 0, max: 100 }],
  ['delayMs', { min: 0, max: MAX_DELAY_MS }],
  ['jitterMs', { min: 0, max: MAX_DELAY_MS }],
  ['rateBytesPerSec', { min: 0, max: Number.MAX_SAFE_INTEGER }],
  ['queueBytes', { min: 1, max: Number.MAX_SAFE_INTEGER }],
]);
const BOOLEAN = new Set(['reorder', 'blackhole']);

/**
 * Check a partial impairment and return a clean copy. Throws a TypeError naming the
 * field, so a typo (`loss` instead of `lossPct`) or a NaN never silently means "no impairment".
 */
export function validateImpairment(partial: unknown): Partial<Impairment> {
  if (typeof partial !== 'object' || partial === null || Array.isArray(partial)) {
    throw new TypeError(`netsim: impairment must be an object, got ${partial === null ? 'null' : typeof partial}`);
  }
  const out: Partial<Impairment> = {};
  for (const [key, value] of Object.entries(partial)) {
    if (value === undefined) continue;
    const range = NUMERIC.get(key);
    if (range) {
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        throw new TypeError(`netsim: ${key} must be a finite number, got ${String(value)}`);
      }
      if (value < range.min || value > range.max) {
        throw new TypeError(`netsim: ${key} must be between ${range.min} and ${range.max}, got ${value}`);
      }
      (out as Record<string, number>)[key] = value;
    } else if (BOOLEAN.has(key)) {
      if (typeof value !== 'boolean') throw new TypeError(`netsim: ${key} must be a boolean, got ${String(value)}`);
      (out as Record<string, boolean>)[key] = value;
    } else {
      throw new TypeError(`netsim: unknown impairment setting "${key}"`);
    }
  }
  return out;
}

/** Throws a TypeError unless `d` is 'up', 'down' or 'both'; returns the directions it selects. */
export function selectDirections(d: unknown): Direction[] {
  if (d === 'both') return ['up', 'down'];
  if (d === 'up' || d === 'down') return [d];
  throw new TypeError(`netsim: direction must be 'up', 'down' or 'both', got ${String(d)}`);
}

export type Verdict =
  | { readonly kind: 'forward'; readonly at: number }
  | { readonly kind: 'drop'; readonly reason: 'loss' | 'queue' | 'blackhole' };

export interface ModelOptions {
  /** Milliseconds clock; default `performance.now`. */
  now?: () => number;
  /** Uniform [0, 1) source; default `Math.random`. Drawn once per packet for loss (if lossPct > 0) and once for jitter (if jitterMs > 0). */
  random?: () => number;
}

/**
 * One direction of a link. The rate cap is a virtual-time token bucket one packet deep:
 * each packet occupies the link for size/rate, so there is no initial burst and the
 * backlog (bytes not yet "on the wire") is known exactly from the clock.
 */
export class ImpairmentModel {
  #settings: Impairment;
  #now: () => number;
  #random: () => number;
  #nextFree = -Infinity;
  #lastAt = -Infinity;
  #stats = emptyStats();

  constructor(initial: Partial<Impairment> = {}, opts: ModelOptions = {}) {
    this.#settings = { ...NO_IMPAIRMENT, ...validateImpairment(initial) };
    this.#now = opts.now ?? (() => performance.now());
    this.#random = opts.random ?? Math.random;
  }

  get settings(): Readonly<Impairment> {
    return { ...this.#settings };
  }

  now(): number {
    return this.#now();
  }

  /** Apply a partial change to packets offered from now on. */
  update(partial: Partial<Impairment>): void {
    const clean = validateImpairment(partial);
    const oldRate = this.#settings.rateBytesPerSec;
    if (clean.rateBytesPerSec !== undefined && clean.rateBytesPerSec !== oldRate) {
      // keep the queued bytes, drain them at the new rate
      const backlog = this.backlogBytes();
      const now = this.#now();
      this.#nextFree = clean.rateBytesPerSec > 0 && backlog > 0 ? now + (backlog * 1000) / clean.rateBytesPerSec : -Infinity;
    }
    this.#settings = { ...this.#settings, ...clean };
  }

  /** Bytes accepted but still waiting for the rate cap. */
  backlogBytes(): number {
    const rate = this.#settings.rateBytesPerSec;
    if (rate <= 0) return 0;
    return (Math.max(0, this.#nextFree - this.#now()) * rate) / 1000;
  }

  /** Milliseconds until the backlog falls to `bytes` (0 if it already is). */
  msUntilBacklog(bytes: number): number {
    const rate = this.#settings.rateBytesPerSec;
    if (rate <= 0) return 0;
    return Math.max(0, this.#nextFree - (bytes * 1000) / rate - this.#now());
  }

  /** Datagram semantics: counts the packet, then blackhole, loss and queue may drop it. */
  offer(bytes: number): Verdict {
    const s = this.#settings;
    this.recordIn(bytes);
    if (s.blackhole) {
      this.recordBlackholed(bytes);
      return { kind: 'drop', reason: 'blackhole' };
    }
    if (s.lossPct > 0 && this.#random() * 100 < s.lossPct) {
      this.#stats.packetsDroppedLoss++;
      this.#stats.bytesDroppedLoss += bytes;
      return { kind: 'drop', reason: 'loss' };
    }
    if (s.rateBytesPerSec > 0 && this.backlogBytes() + bytes > s.queueBytes) {
      this.#stats.packetsDroppedQueue++;
      this.#stats.bytesDroppedQueue += bytes;
      return { kind: 'drop', reason: 'queue' };
    }
    return { kind: 'forward', at: this.schedule(bytes) };
  }

  /**
   * Delivery time of `bytes` sent now: rate cap, then delay ± jitter. Never drops and
   * never counts, so a stream can use it (and re-use it for data held by a blackhole).
   */
  schedule(bytes: number, allowReorder = this.#settings.reorder): number {
    const s = this.#settings;
    const now = this.#now();
    let depart = now;
    if (s.rateBytesPerSec > 0) {
      depart = Math.max(now, this.#nextFree);
      this.#nextFree = depart + (bytes * 1000) / s.rateBytesPerSec;
    }
    let at = depart + s.delayMs;
    if (s.jitterMs > 0) at = Math.max(depart, at + (this.#random() * 2 - 1) * s.jitterMs);
    if (!allowReorder) at = Math.max(at, this.#lastAt);
    this.#lastAt = Math.max(this.#lastAt, at);
    return at;
  }

  recordIn(bytes: number): void {
    this.#stats.packetsIn++;
    this.#stats.bytesIn += bytes;
  }

  recordForwarded(bytes: number): void {
    this.#stats.packetsForwarded++;
    this.#stats.bytesForwarded += bytes;
  }

  recordBlackholed(bytes: number): void {
    this.#stats.packetsBlackholed++;
    this.#stats.bytesBlackholed += bytes;
  }

  stats(): DirectionStats {
    return { ...this.#stats };
  }
}

export interface DelayLineOptions {
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

/**
 * Delivers items at given times, in time order (ties keep insertion order), with a
 * single timer. Items already due are delivered synchronously if nothing is queued
 * ahead of them, so an unimpaired link adds no timer hop.
 */
export class DelayLine<T> {
  #items: { at: number; item: T }[] = [];
  #deliver: (item: T) => void;
  #now: () => number;
  #setTimer: (fn: () => void, ms: number) => unknown;
  #clearTimer: (handle: unknown) => void;
  #timer: unknown = undefined;
  #timerAt = Infinity;
  #closed = false;

  constructor(deliver: (item: T) => void, opts: DelayLineOptions = {}) {
    this.#deliver = deliver;
    this.#now = opts.now ?? (() => performance.now());
    this.#setTimer = opts.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.#clearTimer = opts.clearTimer ?? ((h) => clearTimeout(h as ReturnType<typeof setTimeout>));
  }

  get size(): number {
    return this.#items.length;
  }

  push(at: number, item: T): void {
    if (this.#closed) return;
    if (this.#items.length === 0 && at <= this.#now()) {
      this.#deliver(item);
      return;
    }
    // binary search for the first item due strictly later: stable for equal times
    let lo = 0;
    let hi = this.#items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#items[mid] as { at: number }).at <= at) lo = mid + 1;
      else hi = mid;
    }
    this.#items.splice(lo, 0, { at, item });
    this.#arm();
  }

  /** Remove and return everything still queued, in delivery order. */
  take(): T[] {
    const out = this.#items.map((e) => e.item);
    this.#items = [];
    this.#disarm();
    return out;
  }

  close(): void {
    this.#closed = true;
    this.#items = [];
    this.#disarm();
  }

  #arm(): void {
    const head = this.#items[0];
    if (!head) return this.#disarm();
    if (this.#timer !== undefined && this.#timerAt <= head.at) return;
    this.#disarm();
    this.#timerAt = head.at;
    this.#timer = this.#setTimer(() => this.#fire(), Math.max(0, Math.ceil(head.at - this.#now())));
  }

  #disarm(): void {
    if (this.#timer !== undefined) this.#clearTimer(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  #fire(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    // timers can fire a little early against performance.now; #arm waits out the rest,
    // so nothing is ever delivered before its time
    const now = this.#now();
    while (!this.#closed) {
      const head = this.#items[0];
      if (!head || head.at > now) break;
      this.#items.shift();
      this.#deliver(head.item);
    }
    if (!this.#closed) this.#arm();
  }
}

export interface RelayTarget {
  host: string;
  port: number;
}

/** Options common to both relays. */
export interface RelayOptions {
  /** Where traffic goes. Must be a loopback address: netsim never sends off the machine. */
  target: RelayTarget;
  /** Address to listen on: loopback or one of this machine's own (ownAddresses); default 127.0.0.1. The port is always ephemeral. */
  listenHost?: string;
  /** Initial impairment for both directions. */
  impairment?: Partial<Impairment>;
  /** Uniform [0, 1) source for loss and jitter; inject a seeded PRNG for reproducible runs. */
  random?: () => number;
  /** Socket errors that the relay absorbs (send failures, refused upstream connections). */
  onError?: (err: Error) => void;
}

/** True for 127.0.0.0/8 and ::1 literals; host names are refused so nothing resolves elsewhere. */
export function isLoopback(host: string): boolean {
  if (host === '::1') return true;
  const m = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  return m !== null && m.slice(1).every((o) => Number(o) <= 255);
}

/**
 * An address of one of this machine's own interfaces (IPv4, not loopback): a relay may listen
 * there for a browser whose only host candidates are on it (Firefox pairs no loopback remote
 * candidate with them). Packets to it never leave the machine.
 */
export function ownAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .flatMap((i) => (i && i.family === 'IPv4' && !i.internal ? [i.address] : []));
}

/** Validate relay options; throws a TypeError with the offending field. */
export function checkRelayOptions(opts: RelayOptions): { listenHost: string; target: RelayTarget } {
  if (typeof opts !== 'object' || opts === null) throw new TypeError('netsim: relay options must be an object');
  const { target } = opts;
  if (typeof target !== 'object' || target === null) throw new TypeError('netsim: target { host, port } is required');
  if (typeof target.host !== 'string' || !isLoopback(target.host)) {
    throw new TypeError(`netsim: target.host must be a loopback IP literal (127.x.x.x or ::1), got ${String(target.host)}`);
  }
  if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535) {
    throw new TypeError(`netsim: target.port must be an integer 1-65535, got ${String(target.port)}`);
  }
  const listenHost = opts.listenHost ?? '127.0.0.1';
  if (typeof listenHost !== 'string' || !(isLoopback(listenHost) || ownAddresses().includes(listenHost))) {
    throw new TypeError(`netsim: listenHost must be a loopback IP literal or an address of this machine, got ${String(listenHost)}`);
  }
  if (opts.random !== undefined && typeof opts.random !== 'function') throw new TypeError('netsim: random must be a function');
  return { listenHost, target: { host: target.host, port: target.port } };
}
