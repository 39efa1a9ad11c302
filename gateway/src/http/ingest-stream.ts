import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { pack, unpack } from 'msgpackr';
import type { Logger } from 'pino';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { z } from 'zod';
import { INGEST_PATH, IngestFrame, MirrorstreamError, type IngestWelcome } from '@mirrorstream/receiver/protocol';
import type { ChunkInput } from '../streams/spec.js';
import type { Gateway } from '../gateway.js';
import { MAX_CHUNKS_PER_BATCH } from './chunks.js';
import { HTTP_STATUS, toHttpError } from './errors.js';
import { rawErrorResponse } from './guards.js';

/** The frames and path: @mirrorstream/receiver/protocol (ingest.ts), shared with the producer client. */
export { INGEST_PATH, IngestFrame } from '@mirrorstream/receiver/protocol';

/** Batches of one connection being stored at once; more are refused (MS_RATE_LIMITED, retry). */
export const MAX_IN_FLIGHT = 1_024;

const chunkSchema = z.union([
  z.tuple([z.union([z.instanceof(Uint8Array), z.string()])]),
  z.tuple([z.union([z.instanceof(Uint8Array), z.string()]), z.string().nullable()]),
  z.tuple([z.union([z.instanceof(Uint8Array), z.string()]), z.string().nullable(), z.number().nullable()]),
]);
const batchId = z.number().int().min(0).max(2 ** 32 - 1);
const batchFields = [z.literal(IngestFrame.BATCH), batchId, z.string().max(256), z.string().max(256).nullable(), z.array(chunkSchema).min(1).max(MAX_CHUNKS_PER_BATCH)] as const;
const batchSchema = z.union([z.tuple(batchFields), z.tuple([...batchFields, batchId.nullable()])]);

/** Ids of this connection's batches not stored, the most recent ones: a batch sent `after` one of them is not stored either. */
const NOT_STORED_KEPT = 4 * MAX_IN_FLIGHT;

/**
 * The gateway's side of the streaming ingest. Each batch goes through `publishBatch`, as a
 * `POST .../chunks` does (the same validation, limits, idempotency and coded errors), and is
 * answered on its own: batches of many streams are in flight at once on one connection. A
 * batch sent `after` another waits for that one and is stored only if that one was: the
 * producer's several batches of one stream keep their order, also when one of them fails.
 */
export class IngestStream {
  readonly #wss: WebSocketServer;
  readonly #gateway: Gateway;
  readonly #log: Logger;
  readonly #sockets = new Set<WebSocket>();
  #goaway: string | undefined;

  constructor(gateway: Gateway, log: Logger) {
    this.#gateway = gateway;
    this.#log = log;
    // a BATCH frame carries at most one HTTP ingest body's worth of chunks, plus its framing
    this.#wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: gateway.config.maxBodyBytes + 64 * 1024 });
    gateway.on('closing', () => this.goawayAll('gateway draining'));
  }

  static isIngestRequest(req: IncomingMessage): boolean {
    return (req.url ?? '').split('?', 1)[0] === INGEST_PATH;
  }

  /** An upgrade request for INGEST_PATH whose API key the caller has checked (`authorized`). */
  handle(req: IncomingMessage, socket: Duplex, head: Buffer, authorized: boolean): void {
    const refuse = (error: MirrorstreamError): void => {
      const { status, body } = toHttpError(error);
      socket.end(rawErrorResponse(status, body));
    };
    if (req.method !== 'GET' || !/^websocket$/i.test(req.headers.upgrade ?? '')) return refuse(new MirrorstreamError('MS_BAD_REQUEST', `${INGEST_PATH} takes a WebSocket upgrade (GET, Upgrade: websocket)`));
    if (!authorized) return refuse(new MirrorstreamError('MS_UNAUTHORIZED', 'missing or invalid API key (Authorization: Bearer <key>)'));
    if (this.#goaway !== undefined) return refuse(new MirrorstreamError('MS_GATEWAY_CLOSED', 'the gateway is draining: connect to another instance', { retryable: true }));
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#serve(ws));
  }

  /** Tell every producer to move on (a draining gateway); batches in flight are still answered. */
  goawayAll(reason: string): void {
    this.#goaway = reason;
    for (const ws of this.#sockets) send(ws, [IngestFrame.GOAWAY, reason]);
  }

  closeAll(): void {
    for (const ws of this.#sockets) ws.terminate();
  }

  #serve(ws: WebSocket): void {
    this.#sockets.add(ws);
    let inFlight = 0;
    // batch id → whether it was stored, while in flight; then the ids not stored, the latest NOT_STORED_KEPT
    const pending = new Map<number, Promise<boolean>>();
    const notStored = new Set<number>();
    ws.on('close', () => this.#sockets.delete(ws));
    ws.on('error', (error) => this.#log.debug({ err: error }, 'ingest connection error'));
    const welcome: IngestWelcome = { instance_id: this.#gateway.status().instance_id, max_chunks_per_batch: MAX_CHUNKS_PER_BATCH, max_frame_bytes: this.#gateway.config.maxBodyBytes, max_in_flight: MAX_IN_FLIGHT, batch_after: true };
    send(ws, [IngestFrame.WELCOME, welcome]);
    if (this.#goaway !== undefined) send(ws, [IngestFrame.GOAWAY, this.#goaway]);
    // after a malformed frame: batches before it are still answered, then the connection closes;
    // what arrives after it is not stored (it could not be answered)
    let refusing = false;
    const closeIfDone = (): void => {
      if (refusing && inFlight === 0) ws.close(1007, 'malformed frame');
    };
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (refusing || ws.readyState !== ws.OPEN) return;
      let batch: ParsedBatch;
      try {
        batch = parseBatch(data, isBinary);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        send(ws, [IngestFrame.ERROR, null, 'MS_FRAME_MALFORMED', message.slice(0, 500), null]);
        refusing = true;
        closeIfDone();
        return;
      }
      const { id, after } = batch;
      if (inFlight >= MAX_IN_FLIGHT) {
        notStored.add(id);
        return send(ws, errorFrame(id, new MirrorstreamError('MS_RATE_LIMITED', `more than ${MAX_IN_FLIGHT} batches in flight on this connection`, { retryable: true })));
      }
      inFlight++;
      // whether the batch it follows was stored: known, or once that one is answered
      const prior = after === null ? true : (pending.get(after) ?? !notStored.has(after));
      const stored = this.#store(ws, batch, prior);
      pending.set(id, stored);
      void stored.then((ok) => {
        if (pending.get(id) === stored) pending.delete(id);
        if (!ok) {
          notStored.add(id);
          if (notStored.size > NOT_STORED_KEPT) notStored.delete(notStored.values().next().value as number);
        }
        inFlight--;
        closeIfDone();
      });
    });
  }

  /** Store a batch once the one it follows is (`prior`), and answer it; resolves with whether it was stored. */
  async #store(ws: WebSocket, { id, streamId, key, chunks, after }: ParsedBatch, prior: Promise<boolean> | boolean): Promise<boolean> {
    try {
      // (no await when there is nothing to wait for: an unchained batch is stored in arrival order)
      if (prior !== true && !(await prior)) {
        throw new MirrorstreamError('MS_PREVIOUS_BATCH_NOT_STORED', `batch ${after} (sent before this one) was not stored, so this one was not either`, { retryable: true });
      }
      const r = await this.#gateway.publishBatch(streamId, chunks, { waitMs: this.#gateway.config.rate.ingestWaitMs, ...(key === null ? {} : { idempotencyKey: key }) });
      send(ws, [IngestFrame.ACK, id, r.first_seq, r.last_seq]);
      return true;
    } catch (error) {
      if (!(error instanceof MirrorstreamError)) this.#log.error({ err: error, stream: streamId.slice(0, 128) }, 'an ingest batch failed');
      send(ws, errorFrame(id, error instanceof MirrorstreamError ? error : new MirrorstreamError('MS_INTERNAL', 'internal error')));
      return false;
    }
  }
}

/** A BATCH frame, its chunks as `publishBatch` takes them. */
export interface ParsedBatch {
  id: number;
  streamId: string;
  key: string | null;
  chunks: ChunkInput[];
  /** The batch this one must follow (BATCH's `after`), or null. */
  after: number | null;
}

const encoder = new TextEncoder();

function parseBatch(data: RawData, isBinary: boolean): ParsedBatch {
  if (!isBinary) throw new Error('frames are binary msgpack');
  // ws hands over a Buffer of its own per message: read it as it is, no copy
  const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
  let value: unknown;
  try {
    value = unpack(bytes);
  } catch {
    throw new Error('not msgpack');
  }
  return batchFromFrame(value);
}

/** A decoded BATCH frame as publishBatch takes it; a frame that is not one throws, its error worded by the schema. */
export function batchFromFrame(value: unknown): ParsedBatch {
  return plainBatch(value) ?? batchFromFrameSchema(value);
}

/**
 * The batch checked by hand: it accepts only what `batchSchema` accepts, without the schema's
 * cost per chunk (a producer sends 100 000s of chunks a second), as `plainJsonBatch` does for
 * `POST .../chunks`. Anything else is undefined here and goes through the schema, which words
 * the error. Key and layer ranges are checked by publishBatch, as for every ingest path.
 */
function plainBatch(value: unknown): ParsedBatch | undefined {
  if (!Array.isArray(value) || value.length < 5 || value.length > 6) return undefined;
  const [frame, id, streamId, key, entries] = value as unknown[];
  // `after` absent, or null or a batch id (not msgpack's undefined: the schema refuses it)
  const after = value.length === 6 ? (value[5] as unknown) : null;
  if (frame !== IngestFrame.BATCH || !isBatchId(id) || (after !== null && !isBatchId(after))) return undefined;
  if (typeof streamId !== 'string' || streamId.length > 256 || (key !== null && (typeof key !== 'string' || key.length > 256))) return undefined;
  if (!Array.isArray(entries) || entries.length < 1 || entries.length > MAX_CHUNKS_PER_BATCH) return undefined;
  const chunks: ChunkInput[] = [];
  for (const entry of entries as unknown[]) {
    if (!Array.isArray(entry) || entry.length < 1 || entry.length > 3) return undefined;
    const [payload, chunkKey, layer] = entry as unknown[];
    if (!(payload instanceof Uint8Array) && typeof payload !== 'string') return undefined;
    // present means a value or null (msgpack can carry undefined: the schema refuses it)
    if (entry.length > 1 && chunkKey !== null && typeof chunkKey !== 'string') return undefined;
    if (entry.length > 2 && layer !== null && (typeof layer !== 'number' || !Number.isFinite(layer))) return undefined;
    chunks.push(chunkOf(payload, chunkKey as string | null | undefined, layer as number | null | undefined));
  }
  return { id, streamId, key, chunks, after };
}

const isBatchId = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 2 ** 32 - 1;

/** The same through the schema alone (the test holds the hand check to it). */
export function batchFromFrameSchema(value: unknown): ParsedBatch {
  const parsed = batchSchema.safeParse(value);
  if (!parsed.success) throw new Error(`not a batch frame [1, id, stream_id, key | null, [[payload, key?, layer?], ...], after?]: ${z.prettifyError(parsed.error).replace(/\n/g, '; ')}`);
  const [, id, streamId, key, entries, after = null] = parsed.data;
  return { id, streamId, key, chunks: entries.map(([payload, chunkKey, layer]) => chunkOf(payload, chunkKey, layer)), after };
}

function chunkOf(payload: Uint8Array | string, key: string | null | undefined, layer: number | null | undefined): ChunkInput {
  const chunk: ChunkInput = { payload: typeof payload === 'string' ? encoder.encode(payload) : payload };
  // (set only when present, no spread: this runs per chunk)
  if (key != null) chunk.key = key;
  if (layer != null) chunk.layer = layer;
  return chunk;
}

/**
 * A batch not stored: its code, and whether and when the same batch may be sent again:
 * `retry_after_ms` 0 for a closing gateway (at once, to another instance) and for a batch
 * whose `after` was not stored (at once, behind that one), 1 000 for another
 * retryable outage or backpressure (503, 429; like the HTTP API's Retry-After), null otherwise.
 */
function errorFrame(id: number, error: MirrorstreamError): unknown[] {
  const status = HTTP_STATUS[error.code] ?? 500;
  const retryAfterMs = error.code === 'MS_GATEWAY_CLOSED' || error.code === 'MS_PREVIOUS_BATCH_NOT_STORED' ? 0 : error.retryable && (status === 503 || status === 429) ? 1_000 : null;
  return [IngestFrame.ERROR, id, error.code, error.message.slice(0, 1_000), retryAfterMs];
}

function send(ws: WebSocket, frame: unknown[]): void {
  if (ws.readyState === ws.OPEN) ws.send(pack(frame));
}
