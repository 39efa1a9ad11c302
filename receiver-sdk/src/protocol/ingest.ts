/**
 * The streaming ingest's frames (producer ↔ gateway, `GET /v1/ingest`, a WebSocket of binary
 * msgpack arrays), shared by the gateway and @mirrorstream/producer:
 * - `[BATCH, id, stream_id, idempotency_key | null, [[payload, key?, layer?], ...]]` (producer);
 * - `[WELCOME, {instance_id, max_chunks_per_batch, max_frame_bytes, max_in_flight}]`, first;
 * - `[ACK, id, first_seq, last_seq]`: the batch is stored;
 * - `[ERROR, id | null, code, message, retry_after_ms | null]`: it is not (null id: the frame
 *   was not a batch); `retry_after_ms` 0: send it again at once, to another instance; > 0: after
 *   that long; null: not as it is;
 * - `[GOAWAY, reason]`: the gateway drains; batches in flight are still answered.
 */
export const INGEST_PATH = '/v1/ingest';

export const IngestFrame = { BATCH: 1, ACK: 2, ERROR: 3, GOAWAY: 4, WELCOME: 5 } as const;

/** A chunk in a BATCH frame: the payload (bytes, or text sent as UTF-8), its conflation key and layer. */
export type IngestChunk = [payload: Uint8Array | string, key?: string | null, layer?: number | null];

export interface IngestWelcome {
  instance_id: string;
  max_chunks_per_batch: number;
  max_frame_bytes: number;
  max_in_flight: number;
}
