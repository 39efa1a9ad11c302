import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { Command, Option } from 'commander';
import { Producer } from '@mirrorstream/producer';
import { MirrorstreamError } from '@mirrorstream/receiver/protocol';
import { action, apiKeyOf, describeError, EXIT, gatewayUrls, withGatewayOptions, type ClientFlags } from './client.js';

interface PublishFlags extends ClientFlags {
  ndjson?: boolean;
  keyField?: string;
  verbose?: boolean;
}

/** Lines read ahead of their acks; beyond it reading waits (the producer's own queue is 10 000 per stream). */
const MAX_PENDING = 10_000;

export function publishCommand(): Command {
  return withGatewayOptions(new Command('publish'))
    .description('publish stdin into a stream, one chunk per line (UTF-8; empty lines are skipped), batched and retried across the gateway instances until stored')
    .argument('<stream>', 'stream id (it must exist: mirrorstream streams create)')
    .addOption(new Option('--ndjson', 'each line must be a JSON value: a line that is not stops the run (the lines before it are still stored)'))
    .addOption(new Option('--key-field <field>', "the chunk's conflation key: this top-level field of each NDJSON line (a string or a number; implies --ndjson)"))
    .addOption(new Option('--verbose', 'print {"line":n,"seq":s} on stdout for each stored line, in input order, and a summary on stderr'))
    .action(action('publish', (stream: string, flags: PublishFlags) => publish(stream, flags, { input: process.stdin, output: process.stdout, env: process.env })));
}

export interface PublishIo {
  input: Readable;
  output: Writable;
  env: Readonly<Record<string, string | undefined>>;
}

/**
 * Reads lines and publishes each; returns the exit code: 0 when every line was stored, 1 when
 * one was refused (nothing after it is read; what was read before it is still drained), 130 or
 * 143 after SIGINT or SIGTERM (reading stops, what was read is drained).
 */
export async function publish(stream: string, flags: PublishFlags, io: PublishIo): Promise<number> {
  const ndjson = flags.ndjson === true || flags.keyField !== undefined;
  const producer = new Producer({ gatewayUrl: gatewayUrls(flags, io.env), apiKey: apiKeyOf(flags, io.env) });
  const warn = (line: string): void => void process.stderr.write(`mirrorstream publish: ${line}\n`);
  producer.on('connectFailed', (url, e) => warn(`cannot use ${url} (${describeError(e)}); trying the next`));
  producer.on('disconnected', (url, reason) => warn(`left ${url} (${reason}); unanswered batches go again, same idempotency key`));

  const lines = createInterface({ input: io.input, crlfDelay: Infinity });
  let signal: NodeJS.Signals | undefined;
  const onSignal = (s: NodeJS.Signals): void => {
    signal = s;
    lines.close();
  };
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);

  let lineNo = 0;
  let stored = 0;
  let firstSeq: number | undefined;
  let lastSeq: number | undefined;
  let failure: { line: number; error: unknown } | undefined;
  let pending = 0;
  const room: (() => void)[] = [];
  try {
    for await (const line of lines) {
      lineNo++;
      if (failure) break;
      if (line.length === 0) continue;
      let key: string | undefined;
      try {
        key = ndjson ? keyOf(JSON.parse(line) as unknown, flags.keyField) : undefined;
      } catch (error) {
        failure = { line: lineNo, error: new MirrorstreamError('MS_BAD_REQUEST', `line ${lineNo}: ${error instanceof SyntaxError ? 'not JSON' : (error as Error).message}`) };
        break;
      }
      while (pending >= MAX_PENDING) await new Promise<void>((resolve) => room.push(resolve));
      pending++;
      const n = lineNo;
      producer
        .publish(stream, line, key === undefined ? {} : { key })
        .then(({ seq }) => {
          stored++;
          firstSeq ??= seq;
          lastSeq = seq;
          if (flags.verbose) io.output.write(`${JSON.stringify({ line: n, seq })}\n`);
        })
        .catch((error: unknown) => {
          failure ??= { line: n, error };
        })
        .finally(() => {
          pending--;
          room.shift()?.();
        });
    }
    // drain: every line read is answered, stored or refused
    await producer.close();
    while (pending > 0) await new Promise<void>((resolve) => room.push(resolve));
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
  }
  if (flags.verbose || failure) warn(`${stored} line(s) stored${firstSeq === undefined ? '' : ` (seq ${firstSeq}..${lastSeq})`}`);
  if (failure) {
    warn(`line ${failure.line} was not stored: ${describeError(failure.error)}`);
    return EXIT.refused;
  }
  if (signal) return signal === 'SIGINT' ? 130 : 143;
  return EXIT.ok;
}

/** The key of an NDJSON line: its `field` (a string or a number), none without `--key-field`. */
function keyOf(value: unknown, field: string | undefined): string | undefined {
  if (field === undefined) return undefined;
  const key = typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>)[field] : undefined;
  if (typeof key === 'string' && key.length > 0) return key;
  if (typeof key === 'number' && Number.isFinite(key)) return String(key);
  throw new Error(`no field "${field}" holding a string or a number`);
}
