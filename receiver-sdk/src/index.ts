/** @mirrorstream/receiver: the wire protocol and the transport-independent receiver. */
export * from './protocol.js';
export * from './errors.js';
export * from './clock.js';
export * from './emitter.js';
export * from './link.js';
export * from './receiver.js';
export * from './transports/webrtc.js';
export * from './webrtc-receiver.js';
export * from './framing.js';
export * from './transports/webtransport.js';
