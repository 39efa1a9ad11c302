import fc from 'fast-check';
import { requestArb, send } from '../test/fuzz/bad-requests.js';
import { mulberry32 } from '../test/helpers/random.js';
import { API_KEY, type Gateways, type ReceiverProcess } from './processes.js';

/**
 * The soak's seeded fault injector. A fault starts every `everyMs` (± half), and most
 * undo themselves later (respawn, thaw, re-add), so faults overlap as they do in a real
 * deployment. Bounds keep the run meaningful, not harmless: at most `maxReceiversDown`
 * receivers not serving at once (killed, frozen, or respawned and not connected yet), never
 * the last endpoint of a list removed, never the last gateway instance killed.
 */
export type FaultKind = 'kill' | 'freeze' | 'remove' | 'reorder' | 'bad-burst' | 'instance-kill';

const WEIGHTS: Record<FaultKind, number> = { kill: 3, freeze: 3, remove: 2, reorder: 2, 'bad-burst': 2, 'instance-kill': 1 };

export interface FaultRecord {
  at: number;
  kind: FaultKind;
  target: string;
  /** How long until it was undone (ms), where it undoes itself. */
  forMs?: number;
}

export interface InjectorOptions {
  seed: number;
  everyMs: number;
  maxReceiversDown: number;
  /** Endpoint list per stream, as created. */
  lists: Map<string, string[]>;
  receivers: ReceiverProcess[];
  gateways: Gateways;
  /** An endpoint token for bad bursts that carry one. */
  token: string;
  /** Bad bursts come from this loopback address, another client than the receivers'. */
  badAddress: string;
}

export class FaultInjector {
  readonly log: FaultRecord[] = [];
  /** Answers to the bad bursts by status. */
  readonly badAnswers = new Map<string, number>();
  /** Spec changes the gateway refused (must stay empty). */
  readonly specErrors: string[] = [];
  /** How long each restarted instance took until it listened (ms). */
  readonly instanceStartMs: number[] = [];
  /**
   * Per stream, the longest time (sampled) when no endpoint on its list was serving: the
   * faults alone made delivery impossible then, whatever the gateway did.
   */
  readonly noServingEndpointMs = new Map<string, number>();
  readonly #noServingSince = new Map<string, number>();
  readonly #o: InjectorOptions;
  readonly #rand: () => number;
  readonly #undo = new Set<Promise<void>>();
  /** The lists as the soak last set them; one spec change at a time. */
  readonly #lists: Map<string, string[]>;
  #specs: Promise<void> = Promise.resolve();
  #instanceDown = false;
  #burst = 0;

  constructor(o: InjectorOptions) {
    this.#o = o;
    this.#rand = mulberry32(o.seed);
    this.#lists = new Map([...o.lists].map(([s, l]) => [s, [...l]]));
  }

  async run(count: number): Promise<void> {
    const sampler = setInterval(() => this.#sample(), SAMPLE_MS);
    try {
      for (let i = 0; i < count; i++) {
        await sleep(this.#o.everyMs * (0.5 + this.#rand()));
        const kind = this.#pick();
        if (kind) this.#start(kind);
      }
      await this.settle();
    } finally {
      clearInterval(sampler);
    }
  }

  #sample(): void {
    const now = Date.now();
    for (const [stream, list] of this.#lists) {
      const serving = list.some((id) => this.#o.receivers.find((r) => r.endpoint === id)?.serving);
      const since = this.#noServingSince.get(stream);
      if (!serving && since === undefined) this.#noServingSince.set(stream, now);
      if (serving && since !== undefined) {
        this.#noServingSince.delete(stream);
        this.noServingEndpointMs.set(stream, Math.max(this.noServingEndpointMs.get(stream) ?? 0, now - since));
      }
    }
  }

  /** Wait for every fault to be undone and every spec change to be stored. */
  async settle(): Promise<void> {
    while (this.#undo.size > 0) await Promise.all([...this.#undo]);
    await this.#specs;
  }

  #pick(): FaultKind | undefined {
    const down = this.#o.receivers.filter((r) => !r.serving).length;
    const applicable = (Object.keys(WEIGHTS) as FaultKind[]).filter((k) => {
      if (k === 'kill' || k === 'freeze') return down < this.#o.maxReceiversDown;
      if (k === 'remove') return [...this.#lists.values()].some((l) => l.length > 1);
      if (k === 'instance-kill') return !this.#instanceDown && this.#o.gateways.upIndexes().length > 1;
      return true;
    });
    let r = this.#rand() * applicable.reduce((sum, k) => sum + WEIGHTS[k], 0);
    for (const k of applicable) if ((r -= WEIGHTS[k]) < 0) return k;
    return applicable.at(-1);
  }

  #start(kind: FaultKind): void {
    const at = Date.now();
    const record = (target: string, forMs?: number): void => void this.log.push({ at, kind, target, ...(forMs === undefined ? {} : { forMs }) });
    const later = (ms: number, undo: () => Promise<void> | void): void => {
      const p = sleep(ms).then(undo).finally(() => this.#undo.delete(p));
      this.#undo.add(p);
    };
    const rand = this.#rand;
    const choose = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
    switch (kind) {
      case 'kill': {
        const rx = choose(this.#o.receivers.filter((r) => r.serving));
        const ms = 200 + rand() * 2_800;
        record(rx.endpoint, Math.round(ms));
        const killed = rx.kill();
        later(ms, async () => {
          await killed;
          rx.spawn();
        });
        return;
      }
      case 'freeze': {
        const rx = choose(this.#o.receivers.filter((r) => r.serving));
        const ms = 100 + rand() * 2_900;
        record(rx.endpoint, Math.round(ms));
        rx.freeze();
        later(ms, () => rx.thaw());
        return;
      }
      case 'remove': {
        const stream = choose([...this.#lists].filter(([, l]) => l.length > 1).map(([s]) => s));
        const list = this.#lists.get(stream)!;
        const endpoint = choose(list);
        const ms = 300 + rand() * 3_700;
        record(`${stream}/${endpoint}`, Math.round(ms));
        list.splice(list.indexOf(endpoint), 1);
        this.#spec(() => this.#o.gateways.api('DELETE', `/v1/streams/${stream}/endpoints/${endpoint}`));
        later(ms, () => {
          const priority = Math.floor(rand() * (list.length + 1));
          list.splice(priority, 0, endpoint);
          this.#spec(() => this.#o.gateways.api('POST', `/v1/streams/${stream}/endpoints`, { endpoint_id: endpoint, priority }));
        });
        return;
      }
      case 'reorder': {
        const stream = choose([...this.#lists.keys()]);
        const list = this.#lists.get(stream)!;
        for (let i = list.length - 1; i > 0; i--) {
          const j = Math.floor(rand() * (i + 1));
          [list[i], list[j]] = [list[j]!, list[i]!];
        }
        record(`${stream}: ${list.join(',')}`);
        const order = [...list];
        this.#spec(() => this.#o.gateways.api('PUT', `/v1/streams/${stream}/endpoints`, { endpoint_list: order }));
        return;
      }
      case 'bad-burst': {
        const up = this.#o.gateways.upIndexes();
        const instance = choose(up);
        const requests = fc.sample(requestArb, { seed: this.#o.seed * 7919 + this.#burst++, numRuns: 20 + Math.floor(rand() * 80) });
        record(`${requests.length} requests to instance ${instance}`);
        const port = Number(new URL(this.#o.gateways.urls[instance]!).port);
        const target = { port, apiKey: API_KEY, token: this.#o.token, localAddress: this.#o.badAddress };
        const p = (async () => {
          for (const r of requests) {
            // no answer is expected only from an instance killed meanwhile
            const a = await send(target, r).catch(() => ({ status: this.#o.gateways.isUp(instance) ? 'no answer' : 'no answer, instance down' }));
            this.badAnswers.set(String(a.status), (this.badAnswers.get(String(a.status)) ?? 0) + 1);
          }
        })().finally(() => this.#undo.delete(p));
        this.#undo.add(p);
        return;
      }
      case 'instance-kill': {
        const i = choose(this.#o.gateways.upIndexes());
        const ms = 1_000 + rand() * 4_000;
        record(`instance ${i}`, Math.round(ms));
        this.#instanceDown = true;
        const killed = this.#o.gateways.kill(i);
        later(ms, async () => {
          await killed;
          const t0 = Date.now();
          await this.#o.gateways.restart(i);
          this.instanceStartMs.push(Date.now() - t0);
          this.#instanceDown = false;
        });
        return;
      }
    }
  }

  #spec(change: () => Promise<unknown>): void {
    this.#specs = this.#specs.then(change).then(
      () => undefined,
      (error: unknown) => void this.specErrors.push(String(error)),
    );
  }
}

const SAMPLE_MS = 50;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
