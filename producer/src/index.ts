/**
 * @mirrorstream/producer: publish into a mirrorstream gateway over its streaming ingest
 * (batching, a bounded window, idempotent retries across instances), and administer streams,
 * endpoints and tokens. Node ≥ 20, no native dependency.
 */
export { Producer, type BatchResult, type ChunkOptions, type ProducerEvents, type ProducerOptions, type PublishInput } from './producer.js';
export { AdminClient, type EndpointEntry, type IssuedToken, type OverflowPolicy, type StreamInfo, type StreamSpec } from './admin.js';
export { MirrorstreamError, type ErrorCode } from '@mirrorstream/receiver/protocol';
