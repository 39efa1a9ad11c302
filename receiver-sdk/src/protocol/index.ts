/**
 * @mirrorstream/receiver/protocol: what the gateway and every receiver share — the wire
 * format and its decoder, stream framing, the error registry, the Clock and the emitter —
 * the producers' streaming-ingest frames (@mirrorstream/producer imports this entry only) and
 * the SDP handling both WebRTC ends need.
 * Browser- and Node-safe: no Node built-ins, no native modules.
 */
export * from './frames.js';
export * from './decode.js';
export * from './version.js';
export * from './framing.js';
export * from './errors.js';
export * from './clock.js';
export * from './emitter.js';
export * from './quiet-import.js';
export * from './ingest.js';
export * from './sdp.js';
