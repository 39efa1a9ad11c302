import { Command, Option } from 'commander';
import { MirrorstreamError } from '@mirrorstream/receiver/protocol';

/**
 * What the client commands (`publish`, `receive`, `streams`, `endpoints`, `token`) share: where
 * the gateway is, the API key, and how an outcome becomes an exit code.
 */

/** The exit codes of every `mirrorstream` command (docs/cli.md). */
export const EXIT = {
  /** Done: everything published was stored, a receiver stopped on a signal or `--count`, a call answered. */
  ok: 0,
  /** The gateway refused (a coded error is printed), or some published lines were not stored. */
  refused: 1,
  /** Bad flags or arguments, or a configuration the gateway's schema refuses. */
  usage: 2,
  /** No gateway could be reached, or every one was unavailable (a retryable error): try again later. */
  unavailable: 3,
} as const;

export const GATEWAY_URL_ENV = 'MIRRORSTREAM_URL';
export const API_KEY_ENV = 'MIRRORSTREAM_API_KEY';
const DEFAULT_GATEWAY = 'http://127.0.0.1:8080';

export interface ClientFlags {
  gateway?: string;
  apiKey?: string;
}

/** Adds `--gateway` and `--api-key` to a client command. */
export function withGatewayOptions(command: Command): Command {
  return command
    .addOption(new Option('--gateway <urls>', `gateway URL, or several instances comma-separated (env ${GATEWAY_URL_ENV}; default ${DEFAULT_GATEWAY})`))
    .addOption(new Option('--api-key <key>', `the gateway's API key (env ${API_KEY_ENV})`));
}

/** A usage problem found after parsing (a missing key, a bad value): exit code 2. */
export class UsageError extends MirrorstreamError {
  constructor(message: string) {
    super('MS_CONFIG_INVALID', message);
  }
}

/** The gateway URLs: `--gateway`, else MIRRORSTREAM_URL, else the local default; each an http(s) URL. */
export function gatewayUrls(flags: ClientFlags, env: Readonly<Record<string, string | undefined>>): string[] {
  const raw = flags.gateway ?? (env[GATEWAY_URL_ENV] || DEFAULT_GATEWAY);
  const urls = raw.split(',').map((u) => u.trim()).filter((u) => u.length > 0);
  const bad = urls.filter((u) => !/^https?:\/\/[^/]/.test(u));
  if (urls.length === 0 || bad.length > 0) throw new UsageError(`--gateway: http(s) URLs, comma-separated${bad.length ? ` (not one: ${bad.join(', ')})` : ''}`);
  return urls;
}

export function apiKeyOf(flags: ClientFlags, env: Readonly<Record<string, string | undefined>>): string {
  const key = flags.apiKey ?? (env[API_KEY_ENV] || undefined);
  if (!key) throw new UsageError(`an API key is needed: --api-key or ${API_KEY_ENV}`);
  return key;
}

/** The exit code of an error a command ended with. */
export function exitCodeOf(error: unknown): number {
  if (error instanceof UsageError || (error instanceof MirrorstreamError && error.code === 'MS_CONFIG_INVALID')) return EXIT.usage;
  if (error instanceof MirrorstreamError) return error.retryable ? EXIT.unavailable : EXIT.refused;
  return EXIT.refused;
}

export function describeError(error: unknown): string {
  if (error instanceof MirrorstreamError) return `${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}

/** Exits once what was written to stdout has gone out (a pipe may still hold it). */
export function exit(code: number): void {
  process.stdout.write('', () => process.exit(code));
}

/**
 * Runs a command's body: its resolved value is the exit code; an error is printed on stderr as
 * `mirrorstream <command>: CODE: message` and exits with its code.
 */
export function action<A extends unknown[]>(name: string, body: (...args: A) => Promise<number>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      exit(await body(...args));
    } catch (error) {
      console.error(`mirrorstream ${name}: ${describeError(error)}`);
      exit(exitCodeOf(error));
    }
  };
}
