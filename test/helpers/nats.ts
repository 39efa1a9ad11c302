import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { until } from './poll.js';

/**
 * A nats-server of a test's own: JetStream on, 127.0.0.1, a free port (-p -1) the ports file
 * names, its own store directory; stopped by PID. `restart()` brings it back on the same
 * port with the same store (a crash and restart).
 */
export interface NatsServer {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  /** SIGKILL, like a crash. */
  kill(): Promise<void>;
  /** Start again on the same port and store. */
  restart(): Promise<void>;
  /** Stop and remove the store. */
  close(): Promise<void>;
}

/** NATS_SERVER, else Debian's (in /usr/sbin, which a user's PATH may lack), else whatever PATH finds. */
const BIN = process.env.NATS_SERVER ?? ['/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server'].find((p) => existsSync(p));

export async function startNats(): Promise<NatsServer> {
  const dir = await mkdtemp(join(tmpdir(), 'ms-nats-'));
  const storeDir = join(dir, 'store');
  let proc = await launch(dir, storeDir, -1);
  const first = await portsOf(dir, proc);
  const port = Number(new URL(first).port);
  const server: NatsServer = {
    url: first,
    port,
    storeDir,
    async kill() {
      await stop(proc, 'SIGKILL');
    },
    async restart() {
      await stop(proc, 'SIGKILL');
      proc = await launch(dir, storeDir, port);
      await portsOf(dir, proc);
    },
    async close() {
      await stop(proc, 'SIGTERM');
      await rm(dir, { recursive: true, force: true });
    },
  };
  return server;
}

async function launch(dir: string, storeDir: string, port: number): Promise<ChildProcess> {
  return run(['-a', '127.0.0.1', '-p', String(port), '-m', '-1', '-js', '-sd', storeDir, '--ports_file_dir', dir]);
}

function run(args: string[]): ChildProcess {
  if (!BIN) throw new Error('nats-server is not installed: apt-get install -y nats-server (or set NATS_SERVER)');
  const proc = spawn(BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  proc.stderr?.resume();
  return proc;
}

/** A free TCP port on 127.0.0.1 (bound and released: cluster routes must be known before the nodes start). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** A 3-node JetStream cluster on loopback; nodes are named n1..n3. */
export interface NatsCluster {
  readonly urls: string[];
  readonly names: string[];
  /** SIGKILL one node by its server name. */
  kill(name: string): Promise<void>;
  /** Start a killed node again (same ports, same store). */
  restart(name: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Ports are picked free and released before the nodes bind them, so another socket can take one
 * meanwhile (the nodes' own route dials use ephemeral ports): a node that exits before it listens
 * makes the whole cluster start again on fresh ports (at most 3 tries).
 */
export async function startNatsCluster(size = 3): Promise<NatsCluster> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await tryStartNatsCluster(size);
    } catch (error) {
      if (attempt >= 3 || !(error instanceof NodeExited)) throw error;
    }
  }
}

class NodeExited extends Error {}

async function tryStartNatsCluster(size: number): Promise<NatsCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'ms-natsc-'));
  const routes = await Promise.all(Array.from({ length: size }, () => freePort()));
  const clients = await Promise.all(Array.from({ length: size }, () => freePort()));
  const names = routes.map((_, i) => `n${i + 1}`);
  const procs = new Map<string, ChildProcess>();
  const start = async (i: number): Promise<void> => {
    const name = names[i] as string;
    const conf = join(dir, `${name}.conf`);
    await writeFile(
      conf,
      [
        `server_name: ${name}`,
        `listen: 127.0.0.1:${clients[i]}`,
        `ports_file_dir: "${dir}"`,
        `jetstream { store_dir: "${join(dir, name)}" }`,
        `cluster { name: ms-test, listen: 127.0.0.1:${routes[i]}, routes: [${routes.map((p) => `nats-route://127.0.0.1:${p}`).join(', ')}] }`,
      ].join('\n'),
    );
    const proc = run(['-c', conf]);
    procs.set(name, proc);
    // listening once it wrote its ports file
    await portsOf(dir, proc);
  };
  try {
    for (let i = 0; i < size; i++) await start(i);
  } catch (error) {
    // gone before it listened: a port was taken
    for (const p of procs.values()) await stop(p, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw new NodeExited(`a nats-server of the cluster did not listen: ${String(error)}`);
  }
  const stopNode = async (name: string, signal: NodeJS.Signals): Promise<void> => {
    const p = procs.get(name);
    if (p) await stop(p, signal);
  };
  return {
    urls: clients.map((p) => `nats://127.0.0.1:${p}`),
    names,
    kill: (name) => stopNode(name, 'SIGKILL'),
    restart: async (name) => {
      await stopNode(name, 'SIGKILL');
      await start(names.indexOf(name));
    },
    async close() {
      for (const name of names) await stopNode(name, 'SIGTERM');
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The client URL from the server's ports file (bounded wait). */
async function portsOf(dir: string, proc: ChildProcess): Promise<string> {
  const file = `nats-server_${proc.pid}.ports`;
  let url: string | undefined;
  await until(
    async () => {
      if (proc.exitCode !== null) throw new Error(`nats-server exited (${proc.exitCode}) before it listened`);
      if (!(await readdir(dir)).includes(file)) return false;
      try {
        url = (JSON.parse(await readFile(join(dir, file), 'utf8')) as { nats?: string[] }).nats?.[0];
      } catch {
        // written in parts: read it again
      }
      return url !== undefined;
    },
    10_000,
    'nats-server writes its ports file',
    { everyMs: 20 },
  );
  return url!;
}

async function stop(proc: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill(signal);
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([exited, new Promise<void>((resolve) => (timer = setTimeout(() => (proc.kill('SIGKILL'), resolve()), 5_000)))]);
  clearTimeout(timer);
}
