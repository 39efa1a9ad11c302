/** @mirrorstream/gateway: public API. */
export { createGateway, Gateway } from './gateway.js';
export type {
  BatchResult,
  EndpointHealthEvent,
  GapEvent,
  GatewayDeps,
  GatewayEvents,
  GatewayOptions,
  GatewayStatus,
  HeartbeatEvent,
  PublishResult,
  RoleChangedEvent,
  SwitchEvent,
} from './gateway.js';
export { parseConfig, ConfigError, gatewayConfigSchema } from './config.js';
export type { GatewayConfig, GatewayConfigInput } from './config.js';
export { PriorityFailoverPolicy } from './failover/policy.js';
export type { FailoverPolicy, Selection, SelectionInput, EndpointState } from './failover/policy.js';
export type { AddEndpointInput, ChunkInput, ChunkOptions, PolicyInput, StreamSpecInput } from './streams/spec.js';
export type { Role, StreamMode, SwitchReason, SwitchRecord } from './streams/stream.js';
export type { EndpointHealth, StreamHealth, StreamInfo } from './telemetry/snapshots.js';
export type { Channel, Measurement, Transport, TransportEvents, TransportStats } from './transports/transport.js';
export { MemoryTransport } from './transports/memory.js';
export { createHttpApp, serve } from './http/server.js';
export type { HttpServerOptions, RunningServer } from './http/server.js';
export { ManualClock, RealClock, MirrorstreamError } from '@mirrorstream/receiver';
export type { Clock } from '@mirrorstream/receiver';
export { createMetrics } from './telemetry/metrics.js';
export type { GatewayMetrics } from './telemetry/metrics.js';
