import type { Clock } from '@mirrorstream/receiver/protocol';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config.js';
import type { Backend } from './backend.js';
import { JetStreamBackend } from './jetstream/backend.js';
import { memoryBackend } from './memory-log.js';

/** The backend `config.log` names: memory (the default) or NATS JetStream. */
export function createBackend(config: GatewayConfig, clock: Clock, log: Logger): Backend {
  return config.log.kind === 'jetstream'
    ? new JetStreamBackend(config.log.nats, config.idempotencyWindowMs, clock, log)
    : memoryBackend(config.idempotencyWindowMs);
}
