/**
 * The streaming ingest's frames (producer ↔ gateway, `GET /v1/ingest`, a WebSocket of binary
 * msgpack arrays), shared by the gateway and @mirrorstream/producer:
 * - `[BATCH, id, stream_id, idempotency_key | null, [[payload, key?, layer?], ...], after?]`
 *   (producer); `after`: the id of a batch sent before it on this connection, still unanswered,
 *   that must be stored first: the gateway stores this one only once that one is, and refuses
 *   it (MS_PREVIOUS_BATCH_NOT_STORED, retry_after_ms 0) if that one was not. So a producer can
 *   have several batches of one stream in flight and still keep the stream's order;
 * - `[WELCOME, {instance_id, max_chunks_per_batch, max_frame_bytes, max_in_flight, batch_after}]`,
 *   first (`batch_after`: the gateway takes `after`; an older one does not send it);
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
  /** The gateway takes BATCH's `after` (absent: one batch of a stream at a time). */
  batch_after?: boolean;
}
