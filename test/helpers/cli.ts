import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { withDeadline } from './poll.js';

/** The built `mirrorstream` CLI as a shell runs it: a child process, its stdout and stderr kept. */
const CLI = fileURLToPath(new URL('../../gateway/dist/cli.js', import.meta.url));

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end (bounded by `ms`), `input` on its stdin. */
export async function runCli(args: string[], o: { env?: Record<string, string>; input?: string; ms?: number } = {}): Promise<CliRun> {
  const proc = spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...o.env } });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  proc.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  proc.stdin.end(o.input ?? '');
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  try {
    const code = await withDeadline(exited, o.ms ?? 20_000, `mirrorstream ${args.join(' ')}`);
    // the pipes may still hold the last bytes after the exit
    await new Promise((r) => setImmediate(r));
    return { code, stdout, stderr };
  } finally {
    proc.kill('SIGKILL');
  }
}

/** A long-running command (`receive`, `publish` fed over time): its output line by line as it comes. */
export interface CliProcess {
  readonly proc: ChildProcess;
  readonly stdout: string[];
  readonly stderr: string[];
  readonly exited: Promise<number | null>;
}

export function startCli(args: string[], env: Record<string, string> = {}): CliProcess {
  const proc = spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const stdout: string[] = [];
  const stderr: string[] = [];
  createInterface({ input: proc.stdout! }).on('line', (l) => stdout.push(l));
  createInterface({ input: proc.stderr! }).on('line', (l) => stderr.push(l));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))));
  return { proc, stdout, stderr, exited };
}
