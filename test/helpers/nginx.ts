import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestCertificate } from './certs.js';
import { until } from './poll.js';

const DEPLOY = join(dirname(fileURLToPath(import.meta.url)), '../../deploy/nginx');

/**
 * deploy/nginx/nginx.conf with a test's addresses: /gw1 and /gw2 to the two gateway ports (the
 * same port twice for one gateway), nginx on 127.0.0.1:`nginxPort` with the test certificate.
 * Each swap must find its line, so the file cannot drift from the tests.
 */
export function renderDeployConfig(gatewayPorts: [number, number], nginxPort: number, cert: Pick<TestCertificate, 'certFile' | 'keyFile'>): string {
  let config = readFileSync(join(DEPLOY, 'nginx.conf'), 'utf8');
  const swaps: [string, string][] = [
    ['gateway1:8080', `127.0.0.1:${gatewayPorts[0]}`],
    ['gateway2:8080', `127.0.0.1:${gatewayPorts[1]}`],
    ['listen 443 ssl;', `listen 127.0.0.1:${nginxPort} ssl;`],
    ['/etc/nginx/certs/fullchain.pem', cert.certFile],
    ['/etc/nginx/certs/privkey.pem', cert.keyFile],
    ['include mirrorstream-proxy.conf;', `include ${join(DEPLOY, 'mirrorstream-proxy.conf')};`],
  ];
  for (const [from, to] of swaps) {
    if (!config.includes(from)) throw new Error(`deploy/nginx/nginx.conf has no "${from}"`);
    config = config.replaceAll(from, to);
  }
  return config;
}

/** NGINX, else Debian's (/usr/sbin, which a user's PATH may lack). */
const BIN = process.env.NGINX ?? ['/usr/sbin/nginx', '/usr/bin/nginx', '/usr/local/sbin/nginx'].find((p) => existsSync(p));

export interface Nginx {
  /** Lines of the access log so far. */
  accessLog(): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * Debian's nginx in the foreground with `config` (a whole nginx.conf) in `dir`: its pid,
 * logs and temp files stay in `dir`, so it needs no system paths; ready once `port` accepts.
 */
export async function startNginx(dir: string, config: string, port: number): Promise<Nginx> {
  if (!BIN) throw new Error('nginx is not installed: apt-get install -y nginx (or set NGINX)');
  await mkdir(join(dir, 'temp'), { recursive: true });
  const accessLogPath = join(dir, 'access.log');
  // temp paths and the access log go into the http block; the main-context lines come with -g
  const temps = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${join(dir, 'temp', t)};`).join('\n');
  const rendered = config.replace(/^http \{$/m, `http {\n  access_log ${accessLogPath};\n${temps}`);
  if (rendered === config) throw new Error('nginx config has no "http {" line');
  const file = join(dir, 'nginx.conf');
  await writeFile(file, rendered);
  // as root the workers would drop to nobody, who cannot write a test's temp directory
  const main = `daemon off; pid ${join(dir, 'nginx.pid')}; error_log ${join(dir, 'error.log')} warn;${process.getuid?.() === 0 ? ' user root root;' : ''}`;
  const args = ['-p', dir, '-c', file, '-g', main];
  const check = spawnSync(BIN, ['-t', ...args], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`nginx -t refused the config:\n${check.stderr}`);
  const proc = spawn(BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    await untilAccepting(port, proc, 10_000);
  } catch (error) {
    proc.kill('SIGKILL');
    throw new Error(`${(error as Error).message}\n${stderr}${await readFile(join(dir, 'error.log'), 'utf8').catch(() => '')}`);
  }
  return {
    accessLog: async () => (await readFile(accessLogPath, 'utf8').catch(() => '')).split('\n').filter((l) => l.length > 0),
    close: () => stop(proc),
  };
}

function untilAccepting(port: number, proc: ChildProcess, timeoutMs: number): Promise<void> {
  const accepting = async (): Promise<boolean> => {
    if (proc.exitCode !== null) throw new Error(`nginx exited with ${proc.exitCode}`);
    return new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
  };
  return until(accepting, timeoutMs, `nginx accepting on port ${port}`, { everyMs: 50 });
}

/** SIGTERM (fast shutdown: open tunnels need not finish), SIGKILL after 5 s. */
function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => proc.kill('SIGKILL'), 5_000);
    proc.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    proc.kill('SIGTERM');
  });
}
