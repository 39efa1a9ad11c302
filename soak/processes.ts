import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { API_KEY, startGateway, type GatewayProcess } from '../test/helpers/gateway-process.js';
import { freePort } from '../test/helpers/nats.js';
import type { Delivery } from './check.js';
import type { SoakLine } from './lines.js';

/**
 * The processes a soak runs: gateway instances (the built CLI, fixed ports so a killed
 * one comes back where the receivers look for it) and receivers (soak/receiver.ts on the
 * public SDK). Everything the receivers report lands in `deliveries` per stream.
 */
export { API_KEY };

export class Gateways {
  readonly urls: string[];
  readonly #ports: number[];
  readonly #flags: string[];
  readonly #running: (GatewayProcess | undefined)[];
  /** Spec changes whose answer was lost (instance killed) and whose retry found them stored. */
  retriedChanges = 0;
  /** Log lines at warn level or above from every instance, counted by level and message. */
  readonly warnings = new Map<string, number>();

  private constructor(ports: number[], flags: string[]) {
    this.#ports = ports;
    this.#flags = flags;
    this.urls = ports.map((p) => `http://127.0.0.1:${p}`);
    this.#running = ports.map(() => undefined);
  }

  static async start(count: number, flags: string[]): Promise<Gateways> {
    const g = new Gateways(await Promise.all(Array.from({ length: count }, freePort)), flags);
    for (let i = 0; i < count; i++) await g.restart(i);
    return g;
  }

  isUp(i: number): boolean {
    return this.#running[i] !== undefined;
  }

  upIndexes(): number[] {
    return this.#running.flatMap((g, i) => (g ? [i] : []));
  }

  /** SIGKILL instance i, like a crash. */
  async kill(i: number): Promise<void> {
    const g = this.#running[i];
    this.#running[i] = undefined;
    if (!g) return;
    g.proc.kill('SIGKILL');
    await g.exited;
  }

  /** Start instance i on its port (again). */
  async restart(i: number): Promise<void> {
    const g = await startGateway(this.#ports[i]!, this.#flags);
    // warnings and errors of every instance, for the soak's results
    createInterface({ input: g.proc.stdout! }).on('line', (line) => {
      const m = /"level":([4-6]\d).*?"msg":"([^"]{0,120})/.exec(line);
      if (!m) return;
      const key = `${m[1] === '40' ? 'warn' : 'error'}: ${m[2]}`;
      this.warnings.set(key, (this.warnings.get(key) ?? 0) + 1);
    });
    this.#running[i] = g;
    void g.exited.then(() => {
      if (this.#running[i] === g) this.#running[i] = undefined;
    });
  }

  async close(): Promise<void> {
    for (let i = 0; i < this.#running.length; i++) await this.kill(i);
  }

  /** One API call on an instance that is up, the next one on a connection error (bounded). */
  async api(method: string, path: string, body?: unknown): Promise<unknown> {
    const deadline = Date.now() + 30_000;
    let answerLost = false;
    for (let attempt = 0; ; attempt++) {
      const up = this.upIndexes();
      const url = this.urls[up[attempt % Math.max(1, up.length)] ?? 0]!;
      try {
        const res = await fetch(`${url}${path}`, {
          method,
          headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(10_000),
        });
        const text = await res.text();
        if (res.status < 300) return text ? (JSON.parse(text) as unknown) : undefined;
        // an add or remove retried after a lost answer: the first attempt was stored
        if (answerLost && /ENDPOINT_(EXISTS|NOT_FOUND)/.test(text)) {
          this.retriedChanges++;
          return undefined;
        }
        // 503 (log or lease moving) is worth a retry; any other refusal is the soak's bug
        if (res.status !== 503) throw new SoakApiError(`${method} ${path}: ${res.status} ${text}`);
      } catch (error) {
        if (error instanceof SoakApiError || Date.now() > deadline) throw error;
        answerLost = true;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

class SoakApiError extends Error {}

const RECEIVER = fileURLToPath(new URL('./receiver.ts', import.meta.url));

/** One endpoint's receiver process; `life` counts its respawns. */
export class ReceiverProcess {
  readonly endpoint: string;
  life = -1;
  /** Exits that the soak did not cause (a crash of the SDK or of the receiver). */
  unexpectedExits = 0;
  /** GAPs this endpoint's lives were told of (none may come: retention holds the whole run). */
  readonly gaps: { stream: string; from: number; to: number; reason: string; life: number; at: number }[] = [];
  resets = 0;
  errors = new Map<string, number>();
  #proc: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #killing = false;
  #ready = false;
  frozen = false;
  readonly #urls: string[];
  readonly #token: string;
  readonly #deliveries: Map<string, Delivery[]>;

  constructor(endpoint: string, urls: string[], token: string, deliveries: Map<string, Delivery[]>) {
    this.endpoint = endpoint;
    this.#urls = urls;
    this.#token = token;
    this.#deliveries = deliveries;
  }

  get alive(): boolean {
    return this.#proc !== undefined;
  }

  /** Running, connected once in this life (it printed `ready`), and not frozen. */
  get serving(): boolean {
    return this.#proc !== undefined && this.#ready && !this.frozen;
  }

  spawn(): void {
    this.life++;
    this.#ready = false;
    const life = this.life;
    const proc = spawn(process.execPath, ['--import', 'tsx', RECEIVER], {
      env: { ...process.env, SOAK_URLS: this.#urls.join(','), SOAK_ENDPOINT: this.endpoint, SOAK_TOKEN: this.#token },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    this.#proc = proc;
    this.#exited = new Promise((resolve) =>
      proc.once('exit', () => {
        if (!this.#killing) {
          this.unexpectedExits++;
          this.#proc = undefined;
          this.spawn();
        }
        resolve();
      }),
    );
    createInterface({ input: proc.stdout! }).on('line', (line) => this.#onLine(line, life));
  }

  #onLine(text: string, life: number): void {
    let line: SoakLine;
    try {
      line = JSON.parse(text) as SoakLine;
    } catch {
      return; // not one of ours (a library printing to stdout)
    }
    if (line.e === 'chunk') {
      let list = this.#deliveries.get(line.s);
      if (!list) this.#deliveries.set(line.s, (list = []));
      list.push({ endpoint: this.endpoint, life, seq: line.q, payload: line.p, at: line.t });
    } else if (line.e === 'ready') this.#ready = life === this.life;
    else if (line.e === 'gap') this.gaps.push({ stream: line.s, from: line.from, to: line.to, reason: line.reason, life, at: line.t });
    else if (line.e === 'reset') this.resets++;
    else if (line.e === 'error') this.errors.set(line.code, (this.errors.get(line.code) ?? 0) + 1);
  }

  /** SIGKILL (a frozen one too) and wait until it is gone. */
  async kill(): Promise<void> {
    const proc = this.#proc;
    if (!proc) return;
    this.#killing = true;
    proc.kill('SIGKILL');
    await this.#exited;
    this.#killing = false;
    this.#proc = undefined;
    this.frozen = false;
  }

  freeze(): void {
    if (this.#proc?.kill('SIGSTOP')) this.frozen = true;
  }

  thaw(): void {
    if (this.frozen) this.#proc?.kill('SIGCONT');
    this.frozen = false;
  }
}
