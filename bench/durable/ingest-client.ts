/**
 * The HTTP producer of the durable bench's ingest section, in a process of its own (so its
 * CPU is not the gateway's event loop): `connections` keep-alive HTTP/1.1 connections, each
 * posting one batch after the other (the next once the previous was answered), for `ms`.
 * The default client writes a prepared request and reads the answer's status line and
 * Content-Length itself (a producer's minimum; on a 2-core machine whatever the client spends
 * is taken from the gateway and NATS); `client: 'node-http'` uses Node's http.Agent instead
 * (about twice the client CPU per request).
 */
import { Agent, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { Producer } from '@mirrorstream/producer';

export type IngestClientKind = 'lean' | 'node-http';
export type ToIngestClient =
  | { cmd: 'run'; url: string; apiKey: string; streamId: string; connections: number; chunks: number; chunkBytes: number; ms: number; client: IngestClientKind }
  /** @mirrorstream/producer: as fast as it goes with `window` publishes unanswered, or paced at `ratePerS`. */
  | { cmd: 'produce'; url: string; apiKey: string; streamId: string; chunkBytes: number; ms: number; window: number; ratePerS?: number };
export type FromIngestClient =
  | { ev: 'ready' }
  | { ev: 'ran'; requests: number; chunks: number; errors: number; firstError: string | undefined; seconds: number; latenciesMs: number[]; cpuUs: number };

const send = (m: FromIngestClient): void => void process.send?.(m);

/** Posts one request and resolves with the answer's HTTP status. */
type Poster = () => Promise<number>;

async function run(m: Extract<ToIngestClient, { cmd: 'run' }>): Promise<FromIngestClient> {
  const payload = 'x'.repeat(m.chunkBytes);
  const body = Buffer.from(JSON.stringify({ chunks: Array.from({ length: m.chunks }, () => ({ payload })) }));
  const url = new URL(`/v1/streams/${encodeURIComponent(m.streamId)}/chunks`, m.url);
  const headers = { authorization: `Bearer ${m.apiKey}`, 'content-type': 'application/json', 'content-length': String(body.length) };
  let close: () => void;
  let posters: Poster[];
  if (m.client === 'node-http') {
    const agent = new Agent({ keepAlive: true, maxSockets: m.connections, maxFreeSockets: m.connections });
    const post: Poster = () =>
      new Promise((resolve, reject) => {
        const req = request(url, { method: 'POST', agent, headers }, (res) => {
          res.on('data', () => undefined);
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end(body);
      });
    posters = Array.from({ length: m.connections }, () => post);
    close = () => agent.destroy();
  } else {
    const head = `POST ${url.pathname} HTTP/1.1\r\nhost: ${url.host}\r\n${Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('')}\r\n`;
    const wire = Buffer.concat([Buffer.from(head), body]);
    const conns = await Promise.all(Array.from({ length: m.connections }, () => LeanConnection.open(url, wire)));
    posters = conns.map((c) => () => c.post());
    close = () => conns.forEach((c) => c.close());
  }
  const tally = new Tally(m.ms);
  await Promise.all(
    posters.map(async (post) => {
      while (performance.now() < tally.until) {
        const s = performance.now();
        try {
          const status = await post();
          if (status !== 200) tally.failed(`HTTP ${status}`);
          else tally.answered(s);
        } catch (error) {
          tally.failed(error);
          return; // this connection is gone
        }
      }
    }),
  );
  const result = tally.result(tally.ok, tally.ok * m.chunks);
  close();
  return result;
}

/** What a run counts: answers and their latencies, errors (the first one kept), its time and CPU. */
class Tally {
  ok = 0;
  errors = 0;
  firstError: string | undefined;
  readonly latenciesMs: number[] = [];
  readonly t0 = performance.now();
  readonly until: number;
  readonly #cpu0 = process.cpuUsage();

  constructor(ms: number) {
    this.until = this.t0 + ms;
  }

  answered(startedAt: number): void {
    this.ok++;
    this.latenciesMs.push(performance.now() - startedAt);
  }

  failed(error: unknown): void {
    this.errors++;
    this.firstError ??= String(error);
  }

  result(requests: number, chunks: number): FromIngestClient {
    const cpu = process.cpuUsage(this.#cpu0);
    return { ev: 'ran', requests, chunks, errors: this.errors, firstError: this.firstError, seconds: (performance.now() - this.t0) / 1000, latenciesMs: this.latenciesMs, cpuUs: cpu.user + cpu.system };
  }
}

const HEAD_END = Buffer.from('\r\n\r\n');

/** One keep-alive connection posting a prepared request; answers are read by status line and Content-Length. */
class LeanConnection {
  readonly #socket: Socket;
  readonly #wire: Buffer;
  #buffer: Buffer = Buffer.alloc(0);
  #waiting: { resolve: (status: number) => void; reject: (e: Error) => void } | undefined;

  private constructor(socket: Socket, wire: Buffer) {
    this.#socket = socket;
    this.#wire = wire;
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.#read(d));
    const fail = (e: Error): void => {
      this.#waiting?.reject(e);
      this.#waiting = undefined;
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('the connection closed')));
  }

  static open(url: URL, wire: Buffer): Promise<LeanConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname, () => {
        socket.off('error', reject);
        resolve(new LeanConnection(socket, wire));
      });
      socket.once('error', reject);
    });
  }

  post(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
      this.#socket.write(this.#wire);
    });
  }

  close(): void {
    this.#socket.destroy();
  }

  #read(d: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? d : Buffer.concat([this.#buffer, d]);
    const end = this.#buffer.indexOf(HEAD_END);
    if (end < 0) return;
    const head = this.#buffer.toString('latin1', 0, end);
    const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? NaN);
    if (!Number.isFinite(length)) {
      this.#waiting?.reject(new Error(`an answer without Content-Length: ${head.slice(0, 80)}`));
      this.#waiting = undefined;
      this.#socket.destroy();
      return;
    }
    const total = end + HEAD_END.length + length;
    if (this.#buffer.length < total) return;
    const status = Number(head.slice(9, 12));
    this.#buffer = this.#buffer.subarray(total);
    const w = this.#waiting;
    this.#waiting = undefined;
    w?.resolve(status);
  }
}

/**
 * The producer client on its streaming ingest, one `publish()` per chunk as an application
 * calls it: as fast as it goes (`window` publishes unanswered; each answer lets the next one
 * go) or paced (`ratePerS`, the chunks due every millisecond). Latency: publish() → resolved,
 * per chunk.
 */
async function produce(m: Extract<ToIngestClient, { cmd: 'produce' }>): Promise<FromIngestClient> {
  const producer = new Producer({ gatewayUrl: m.url, apiKey: m.apiKey });
  const payload = new Uint8Array(m.chunkBytes).fill(120);
  const tally = new Tally(m.ms);
  let outstanding = 0;
  let drained: () => void = () => undefined;
  const next = (): void => {
    outstanding--;
    if (m.ratePerS === undefined && performance.now() < tally.until) one();
    else if (outstanding === 0) drained();
  };
  // one then() per publish and nothing more: the harness as lean as the HTTP client's (its own
  // promises and closures live as long as the publish and would be counted as the producer's cost)
  const one = (): void => {
    outstanding++;
    const s = performance.now();
    producer.publish(m.streamId, payload).then(
      () => {
        tally.answered(s);
        next();
      },
      (error: unknown) => {
        tally.failed(error);
        next();
      },
    );
  };
  const done = new Promise<void>((resolve) => (drained = resolve));
  if (m.ratePerS === undefined) {
    for (let i = 0; i < m.window; i++) one();
  } else {
    let sent = 0;
    while (performance.now() < tally.until) {
      const due = Math.floor(((performance.now() - tally.t0) * m.ratePerS) / 1000);
      for (; sent < due; sent++) one();
      await new Promise((r) => setTimeout(r, 1));
    }
    if (outstanding === 0) drained();
  }
  await done;
  const result = tally.result(producer.stats.batches, tally.ok);
  await producer.close();
  return result;
}

process.on('message', (m: ToIngestClient) => {
  if (m.cmd === 'run') void run(m).then(send);
  else if (m.cmd === 'produce') void produce(m).then(send);
});
process.on('disconnect', () => process.exit(0));
send({ ev: 'ready' });
