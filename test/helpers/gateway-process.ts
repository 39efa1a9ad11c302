import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { withDeadline } from './poll.js';

// ha-scenario.ts and soak/ import it from here
export { until } from './poll.js';

/**
 * The gateway as a user runs it: the built CLI in a child process, on 127.0.0.1, with
 * the same API key and token secret for every instance a test starts (instances share
 * them). `npm test` builds the CLI first.
 */
const CLI = fileURLToPath(new URL('../../gateway/dist/cli.js', import.meta.url));
export const API_KEY = 'process-test-api-key-0123';
const TOKEN_SECRET = 'process-test-token-secret-0123456789abcdef';

export interface GatewayProcess {
  readonly proc: ChildProcess;
  readonly url: string;
  readonly exited: Promise<void>;
  /** Everything it printed, stdout and stderr, line by line (stderr is also passed on). */
  readonly output: string[];
}

const running = new Set<GatewayProcess>();

export async function startGateway(port: number, extra: string[] = []): Promise<GatewayProcess> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` (npm test does)`);
  const proc = spawn(
    process.execPath,
    [CLI, '--host', '127.0.0.1', '--port', String(port), '--api-key', API_KEY, '--token-secret', TOKEN_SECRET, '--webrtc-bind-address', '127.0.0.1', '--log-level', 'info', ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const output: string[] = [];
  createInterface({ input: proc.stderr! }).on('line', (line) => {
    output.push(line);
    process.stderr.write(`${line}\n`);
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const listening = withDeadline(
    new Promise<string>((resolve, reject) => {
      proc.once('exit', (code) => reject(new Error(`gateway exited (${code}) before listening`)));
      createInterface({ input: proc.stdout! }).on('line', (line) => {
        output.push(line);
        try {
          const msg = JSON.parse(line) as { url?: string; msg?: string };
          if (msg.url && msg.msg?.startsWith('mirrorstream listening')) resolve(msg.url);
        } catch {
          // not a log line
        }
      });
    }),
    15_000,
    'gateway listening',
  );
  // a gateway that does not come up says why in its last lines
  const url = await listening.catch((error: unknown) => {
    proc.kill('SIGKILL');
    throw new Error(`${String(error)}; its last output:\n${output.slice(-15).join('\n')}`);
  });
  const g = { proc, url, exited, output };
  running.add(g);
  return g;
}

/** SIGKILL, like a crash; resolves once the process is gone. */
export async function kill(g: GatewayProcess): Promise<void> {
  g.proc.kill('SIGKILL');
  await g.exited;
  running.delete(g);
}

/** Kill every gateway a test started and left running (afterEach). */
export async function killAll(): Promise<void> {
  for (const g of [...running]) await kill(g);
}

/** One API call with the key; throws on a status ≥ 300 (with the body). */
export async function api(url: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<unknown> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.json();
}
