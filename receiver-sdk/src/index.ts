/**
 * @mirrorstream/receiver: the transport-independent receiver and the browser-safe
 * dialers, plus everything of the wire protocol (also importable alone as
 * `@mirrorstream/receiver/protocol`). Node-only code sits behind `@mirrorstream/receiver/node`.
 */
export * from './protocol/index.js';
export * from './link.js';
export * from './receiver.js';
export * from './transports/webrtc.js';
export * from './transports/webtransport.js';
export * from './webrtc-receiver.js';
export * from './video/frame-chunk.js';
export * from './video/layer-playout.js';
export * from './video/player.js';
